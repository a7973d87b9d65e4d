"""How photos travel: the re-encoding a messenger (WhatsApp, WeChat) applies before an adjuster forwards a photo.

``messenger_copy`` makes the copy the integrity benches measure with ``--opt messenger=1``: upright pixels,
long side reduced to 1600 px when larger (never enlarged), JPEG quality 70-85 chosen by a seed (so a run is
reproducible and every photo gets its own quality), 4:2:0, no metadata at all (no EXIF, no ICC, no
Photoshop / Adobe segments: the container shortcut of a set like CASIA is gone too).
"""

from __future__ import annotations

import cv2
import numpy as np

from claimlens.vision.decode import decode_photo

LONG_SIDE = 1600
QUALITY_RANGE = (70, 85)


def messenger_quality(seed: int) -> int:
    lo, hi = QUALITY_RANGE
    return lo + int(seed) % (hi - lo + 1)


def messenger_copy(data: bytes, seed: int = 0, long_side: int = LONG_SIDE) -> bytes:
    """JPEG bytes of ``data`` as a messenger would forward it (see module doc)."""
    rgb = decode_photo(data).rgb
    h, w = rgb.shape[:2]
    s = long_side / max(h, w)
    if s < 1.0:
        rgb = cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    return reencode(rgb, messenger_quality(seed))


def reencode(rgb: np.ndarray, quality: int) -> bytes:
    """Plain baseline JPEG (4:2:0, IJG tables at ``quality``) with no metadata segment."""
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()
