"""Photo metadata (EXIF) as the checks need it. Extraction is tolerant: malformed EXIF yields fields set
to None plus a note in ``problems``, never an exception."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from PIL import Image


@dataclass
class PhotoMetadata:
    """The metadata fields the checks use; every field may be missing (None)."""

    capture_time: datetime | None = None  # DateTimeOriginal, tz-aware when an offset was recorded
    capture_time_has_offset: bool = False
    capture_time_source: str | None = None  # 'DateTimeOriginal' | 'DateTimeDigitized' | 'DateTime'
    make: str | None = None
    model: str | None = None
    lens: str | None = None
    software: str | None = None
    gps_lat: float | None = None
    gps_lon: float | None = None
    has_exif: bool = False
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["capture_time"] = self.capture_time.isoformat() if self.capture_time else None
        return d


def extract_metadata(img: Image.Image) -> PhotoMetadata:
    """Read the EXIF fields of an opened (not necessarily decoded) Pillow image."""
    raise NotImplementedError  # implemented by the metadata module owner
