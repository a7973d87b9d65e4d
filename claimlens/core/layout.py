"""Where everything about a claim lives in the bucket: one prefix per claim, ``claims/{claim_id}/``."""

from __future__ import annotations

import re

_EXT = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "HEIF": ".heic", "TIFF": ".tif", "BMP": ".bmp"}
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def claim_prefix(claim_id: str) -> str:
    return f"claims/{claim_id}/"


def claim_record_key(claim_id: str) -> str:
    return f"claims/{claim_id}/claim.json"


def original_key(claim_id: str, photo_id: str, filename: str | None = None) -> str:
    """The untouched original; the extension is kept from the upload name for people browsing the bucket."""
    ext = ""
    if filename and "." in filename:
        ext = "." + _SAFE.sub("", filename.rsplit(".", 1)[1].lower())[:8]
    return f"claims/{claim_id}/photos/{photo_id}/original{ext}"


def thumbnail_key(claim_id: str, photo_id: str) -> str:
    return f"claims/{claim_id}/photos/{photo_id}/thumb.jpg"


def analysis_key(claim_id: str, photo_id: str) -> str:
    return f"claims/{claim_id}/photos/{photo_id}/analysis.json"


def artifact_key(claim_id: str, photo_id: str, check: str, name: str) -> str:
    return f"claims/{claim_id}/photos/{photo_id}/artifacts/{check}/{_SAFE.sub('_', name)}"


def evidence_key(claim_id: str, revision: int, name: str) -> str:
    return f"claims/{claim_id}/evidence/r{revision}/{_SAFE.sub('_', name)}"


def report_json_key(claim_id: str) -> str:
    return f"claims/{claim_id}/report.json"


def report_html_key(claim_id: str) -> str:
    return f"claims/{claim_id}/report.html"
