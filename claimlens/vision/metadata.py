"""Photo metadata (EXIF) as the checks need it. Extraction is tolerant: malformed EXIF yields fields set
to None plus a note in ``problems``, never an exception.

Where the values come from (Pillow's ``Image.getexif()``, which also serves PNG ``eXIf``/raw-profile
chunks, WebP, TIFF and, through pillow-heif, HEIC/HEIF):

* ``capture_time``: Exif IFD DateTimeOriginal (0x9003) + SubSecTimeOriginal (0x9291) + OffsetTimeOriginal
  (0x9011); else DateTimeDigitized (0x9004) + SubSecTimeDigitized + OffsetTimeDigitized; else IFD0
  DateTime (0x0132) + SubSecTime + OffsetTime. The first one that parses wins and is named in
  ``capture_time_source``. With a valid offset the datetime is tz-aware (``capture_time_has_offset``);
  without one it stays naive (wall-clock time of an unknown zone) and the checks decide what to assume.
* GPS: GPSLatitude/GPSLongitude as degree-minute-second rationals with N/S/E/W refs, to signed decimal
  degrees. Out-of-range values and the 0,0 "no fix" placeholder are dropped with a note. GPSDateStamp +
  GPSTimeStamp (UTC) is kept as ``gps_time`` (informative only: it may be the time of a stale fix).
* Make, Model, LensModel, Software: text with NULs and surrounding whitespace removed; UTF-8 text that
  Pillow decoded as Latin-1 (Chinese app names such as 美图秀秀) is repaired.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from PIL import Image

EXIF_IFD = 0x8769
GPS_IFD = 0x8825

TAG_MAKE = 0x010F
TAG_MODEL = 0x0110
TAG_SOFTWARE = 0x0131
TAG_DATETIME = 0x0132
TAG_DATETIME_ORIGINAL = 0x9003
TAG_DATETIME_DIGITIZED = 0x9004
TAG_OFFSET_TIME = 0x9010
TAG_OFFSET_TIME_ORIGINAL = 0x9011
TAG_OFFSET_TIME_DIGITIZED = 0x9012
TAG_SUBSEC_TIME = 0x9290
TAG_SUBSEC_TIME_ORIGINAL = 0x9291
TAG_SUBSEC_TIME_DIGITIZED = 0x9292
TAG_LENS_MODEL = 0xA434
TAG_PIXEL_X = 0xA002
TAG_PIXEL_Y = 0xA003

# (name, datetime tag, subsec tag, offset tag, offset tag name), in order of preference
_TIME_SOURCES = (
    ("DateTimeOriginal", TAG_DATETIME_ORIGINAL, TAG_SUBSEC_TIME_ORIGINAL, TAG_OFFSET_TIME_ORIGINAL,
     "OffsetTimeOriginal"),
    ("DateTimeDigitized", TAG_DATETIME_DIGITIZED, TAG_SUBSEC_TIME_DIGITIZED, TAG_OFFSET_TIME_DIGITIZED,
     "OffsetTimeDigitized"),
    ("DateTime", TAG_DATETIME, TAG_SUBSEC_TIME, TAG_OFFSET_TIME, "OffsetTime"),
)

# Years outside this range cannot come from a digital camera; treated as malformed.
MIN_YEAR = 1980
MAX_YEAR = 2100
MAX_TEXT = 200  # longer strings are cut (a Make tag is never that long; keeps the JSON small)
MAX_PROBLEMS = 20

_DT_RE = re.compile(
    r"^(\d{4})[:\-/.](\d{1,2})[:\-/.](\d{1,2})[ T]+(\d{1,2}):(\d{2}):(\d{2})"
    r"(?:[.,](\d{1,9}))?\s*(Z|[+-]\d{2}:?\d{2})?$"
)
_OFFSET_RE = re.compile(r"^([+-])(\d{2}):?(\d{2})$")


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
    # where the UTC offset came from ('OffsetTimeOriginal' | 'OffsetTimeDigitized' | 'OffsetTime' | None)
    offset_source: str | None = None
    gps_time: datetime | None = None  # GPSDateStamp + GPSTimeStamp, UTC (tz-aware)
    width_exif: int | None = None  # PixelXDimension as recorded by the camera
    height_exif: int | None = None  # PixelYDimension

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["capture_time"] = self.capture_time.isoformat() if self.capture_time else None
        d["gps_time"] = self.gps_time.isoformat() if self.gps_time else None
        return d

    def note(self, problem: str) -> None:
        if len(self.problems) < MAX_PROBLEMS and problem not in self.problems:
            self.problems.append(problem)


# ----------------------------------------------------------------------------------------- value helpers


class _Bad(ValueError):
    """A tag value that is present but unusable; the message becomes a note in ``problems``."""


def _text(value: Any) -> str | None:
    """EXIF text to a clean str (None when empty). Raises _Bad on a non-text value."""
    if value is None:
        return None
    if isinstance(value, (tuple, list)) and len(value) == 1:
        value = value[0]
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            value = value.decode("latin-1")
    elif isinstance(value, str):
        # Pillow decodes EXIF ASCII as Latin-1; phones write UTF-8 there anyway (e.g. 美图秀秀).
        if any(ord(c) > 0x7F for c in value):
            try:
                value = value.encode("latin-1").decode("utf-8")
            except (UnicodeEncodeError, UnicodeDecodeError):
                pass
    else:
        raise _Bad(f"not text ({type(value).__name__})")
    value = value.replace("\x00", " ").strip()
    value = "".join(c for c in value if c.isprintable())
    return value[:MAX_TEXT] or None


def _parse_offset(text: str | None) -> timezone | None:
    """'+08:00' -> timezone; None for empty; _Bad for nonsense or out of -12:00..+14:00."""
    if text is None or text.strip(" :") == "":
        return None
    if text in ("Z", "z"):
        return UTC
    m = _OFFSET_RE.match(text)
    if not m:
        raise _Bad(f"unreadable offset {text!r}")
    sign, hh, mm = m.groups()
    minutes = int(hh) * 60 + int(mm)
    if int(mm) >= 60 or minutes > 14 * 60 or (sign == "-" and minutes > 12 * 60):
        raise _Bad(f"impossible offset {text!r}")
    return timezone(timedelta(minutes=minutes if sign == "+" else -minutes))


def _parse_subsec(text: str | None) -> int | None:
    """SubSecTime digits ('123' = 0.123 s) to microseconds."""
    if text is None:
        return None
    text = text.strip()
    if not text:
        return None
    if not text.isdigit() or not text.isascii():
        raise _Bad(f"unreadable sub-seconds {text!r}")
    return int(text[:6].ljust(6, "0"))


def _parse_datetime(text: str) -> tuple[datetime, timezone | None]:
    """EXIF 'YYYY:MM:DD HH:MM:SS' (lenient about separators, fractions, an inline offset)."""
    if set(text) <= set(" :0-./T"):
        raise _Bad("zero or blank date")
    m = _DT_RE.match(text)
    if not m:
        raise _Bad(f"unreadable date {text[:40]!r}")
    y, mo, d, h, mi, s, frac, off = m.groups()
    if not MIN_YEAR <= int(y) <= MAX_YEAR:
        raise _Bad(f"implausible year {y}")
    try:
        dt = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s))
    except ValueError as exc:
        raise _Bad(f"impossible date {text[:40]!r}") from exc
    if frac:
        dt = dt.replace(microsecond=int(frac[:6].ljust(6, "0")))
    return dt, _parse_offset(off) if off else None


def _rational(value: Any) -> float:
    """One EXIF rational (IFDRational, int, float, (num, den) pair) to a finite float."""
    if isinstance(value, (tuple, list)) and len(value) == 2:
        num, den = value
        if float(den) == 0:
            raise _Bad("zero denominator")
        value = float(num) / float(den)
    f = float(value)
    if not math.isfinite(f):
        raise _Bad("not a finite number")
    return f


def _dms(value: Any) -> float:
    """GPS (degrees, minutes, seconds) rationals to decimal degrees (unsigned)."""
    if isinstance(value, (tuple, list)):
        parts = [_rational(v) for v in value]
    else:
        parts = [_rational(value)]
    if not 1 <= len(parts) <= 3:
        raise _Bad(f"{len(parts)} components")
    while len(parts) < 3:
        parts.append(0.0)
    deg, minutes, seconds = parts
    if deg < 0 or minutes < 0 or seconds < 0 or minutes >= 60 or seconds >= 60:
        raise _Bad(f"impossible DMS {deg:g} {minutes:g} {seconds:g}")
    return deg + minutes / 60.0 + seconds / 3600.0


def _ref(value: Any, allowed: str) -> str | None:
    text = _text(value)
    if text is None:
        return None
    text = text.upper()[:1]
    if text not in allowed:
        raise _Bad(f"unknown reference {text!r}")
    return text


# ------------------------------------------------------------------------------------------- extraction


def _load_exif(img: Image.Image, md: PhotoMetadata) -> tuple[Any, dict[int, Any], dict[int, Any]]:
    """(IFD0, Exif IFD, GPS IFD); empty mappings where unreadable."""
    ifd0: Any = {}
    exif_ifd: dict[int, Any] = {}
    gps_ifd: dict[int, Any] = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ifd0 = img.getexif()
        except Exception as exc:  # noqa: BLE001 - any parser failure means "no usable EXIF"
            md.note(f"EXIF unreadable: {type(exc).__name__}")
            ifd0 = {}
        for tag, name, target in ((EXIF_IFD, "Exif", exif_ifd), (GPS_IFD, "GPS", gps_ifd)):
            try:
                if tag in ifd0 and hasattr(ifd0, "get_ifd"):
                    target.update(ifd0.get_ifd(tag))
            except Exception as exc:  # noqa: BLE001
                md.note(f"{name} IFD unreadable: {type(exc).__name__}")
    for w in caught:
        msg = str(w.message).strip().split("\n")[0][:80]
        if "exif" in msg.lower() or issubclass(w.category, UserWarning):
            md.note(f"EXIF warning: {msg}")
    raw = img.info.get("exif")
    if isinstance(raw, (bytes, bytearray)) and len(raw) > 8 and len(ifd0) == 0:
        md.note("EXIF block present but no tag could be read")
    return ifd0, exif_ifd, gps_ifd


def _get(md: PhotoMetadata, name: str, convert: Any, *mappings: Any) -> Any:
    """First present value of a tag across mappings (tag, mapping) converted; None + a note if bad."""
    for tag, mapping in mappings:
        try:
            value = mapping.get(tag)
        except Exception:  # noqa: BLE001
            value = None
        if value is None:
            continue
        try:
            return convert(value)
        except (_Bad, TypeError, ValueError, ZeroDivisionError, OverflowError) as exc:
            md.note(f"{name}: {exc}" if isinstance(exc, _Bad) else f"{name}: bad value")
            return None
    return None


def _capture_time(md: PhotoMetadata, ifd0: Any, exif_ifd: dict[int, Any]) -> None:
    for name, dt_tag, subsec_tag, off_tag, off_name in _TIME_SOURCES:
        # DateTime lives in IFD0; the others in the Exif IFD (some writers put them in IFD0)
        where = [(dt_tag, ifd0)] if dt_tag == TAG_DATETIME else [(dt_tag, exif_ifd), (dt_tag, ifd0)]
        text = _get(md, name, _text, *where)
        if text is None:
            continue
        try:
            dt, inline_tz = _parse_datetime(text)
        except _Bad as exc:
            md.note(f"{name}: {exc}")
            continue
        sub_where = [(subsec_tag, exif_ifd), (subsec_tag, ifd0)]
        subsec = _get(md, name.replace("DateTime", "SubSecTime"), lambda v: _parse_subsec(_text(v)),
                      *sub_where)
        if subsec is not None and dt.microsecond == 0:
            dt = dt.replace(microsecond=subsec)
        tz = _get(md, off_name, lambda v: _parse_offset(_text(v)), (off_tag, exif_ifd), (off_tag, ifd0))
        source = off_name
        if tz is None and inline_tz is not None:
            tz, source = inline_tz, name
        if tz is not None:
            dt = dt.replace(tzinfo=tz)
            md.capture_time_has_offset = True
            md.offset_source = source
        md.capture_time = dt
        md.capture_time_source = name
        return


def _gps(md: PhotoMetadata, gps_ifd: dict[int, Any]) -> None:
    if not gps_ifd:
        return
    lat = _get(md, "GPSLatitude", _dms, (2, gps_ifd))
    lon = _get(md, "GPSLongitude", _dms, (4, gps_ifd))
    lat_ref = _get(md, "GPSLatitudeRef", lambda v: _ref(v, "NS"), (1, gps_ifd))
    lon_ref = _get(md, "GPSLongitudeRef", lambda v: _ref(v, "EW"), (3, gps_ifd))
    if lat is not None and lon is not None:
        lat = -lat if lat_ref == "S" else lat
        lon = -lon if lon_ref == "W" else lon
        if lat_ref is None or lon_ref is None:  # the sign is unknown: a guess could land anywhere
            md.note("GPS: hemisphere reference (N/S/E/W) missing or unreadable, position ignored")
        elif abs(lat) > 90 or abs(lon) > 180:
            md.note(f"GPS: impossible position {lat:.6f},{lon:.6f}")
        elif lat == 0 and lon == 0:
            md.note("GPS: 0,0 placeholder (no fix) ignored")
        else:
            md.gps_lat, md.gps_lon = round(lat, 7), round(lon, 7)
    elif lat is not None or lon is not None:
        md.note("GPS: only one coordinate present")
    # GPS time (UTC): GPSDateStamp 'YYYY:MM:DD' + GPSTimeStamp (h, m, s)
    date_text = _get(md, "GPSDateStamp", _text, (29, gps_ifd))
    hms = _get(md, "GPSTimeStamp", lambda v: [_rational(x) for x in v], (7, gps_ifd))
    if date_text and hms and len(hms) == 3:
        try:
            day, _ = _parse_datetime(f"{date_text} 00:00:00")
            h, m, s = hms
            if not (0 <= h < 24 and 0 <= m < 60 and 0 <= s < 61):
                raise _Bad("impossible time")
            md.gps_time = (day + timedelta(hours=h, minutes=m, seconds=s)).replace(tzinfo=UTC)
        except (_Bad, OverflowError, ValueError) as exc:
            md.note(f"GPS time: {exc}" if isinstance(exc, _Bad) else "GPS time: bad value")


def _dimension(value: Any) -> int:
    if isinstance(value, (tuple, list)) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad("not an integer")
    if not 0 < value < 1_000_000:
        raise _Bad(f"impossible size {value}")
    return value


def extract_metadata(img: Image.Image) -> PhotoMetadata:
    """Read the EXIF fields of an opened (not necessarily decoded) Pillow image. Never raises."""
    md = PhotoMetadata()
    try:
        ifd0, exif_ifd, gps_ifd = _load_exif(img, md)
        md.has_exif = bool(len(ifd0) or exif_ifd or gps_ifd)
        if not md.has_exif:
            return md
        _capture_time(md, ifd0, exif_ifd)
        md.make = _get(md, "Make", _text, (TAG_MAKE, ifd0))
        md.model = _get(md, "Model", _text, (TAG_MODEL, ifd0))
        md.lens = _get(md, "LensModel", _text, (TAG_LENS_MODEL, exif_ifd), (TAG_LENS_MODEL, ifd0))
        md.software = _get(md, "Software", _text, (TAG_SOFTWARE, ifd0))
        md.width_exif = _get(md, "PixelXDimension", _dimension, (TAG_PIXEL_X, exif_ifd))
        md.height_exif = _get(md, "PixelYDimension", _dimension, (TAG_PIXEL_Y, exif_ifd))
        _gps(md, gps_ifd)
    except Exception as exc:  # noqa: BLE001 - last resort: metadata must never break decoding
        md.note(f"metadata extraction failed: {type(exc).__name__}")
    return md
