"""Reading the tyre size code (``205/55 R16``) off the sidewall of a wheel seen from the side.

Why: the wheel is the scale reference of side views, and its diameter comes from the size code (``205/55
R16`` -> 632 mm, :func:`references.tyre_diameter_mm`); without it the typical 650 +- 30 mm is used, a 5 %
scale uncertainty. The code is moulded into the sidewall along the circumference, letter tops towards the
tread.

How: the sidewall annulus of the found wheel (between the rim and the tyre's outer ellipse) is unwrapped into
a straight strip, outer edge on top and the angle running clockwise on screen, so the moulded text reads left
to right whatever its position around the wheel (:func:`unwrap_sidewall`); the strip is contrast-normalised
(CLAHE: the text is rubber on rubber, only its relief catches the light) and read in overlapping windows by the
project's PP-OCRv6 recogniser (greedy CTC); a read counts only when it contains a complete, valid size code
(width 125-355 in steps of 5 mm, aspect 25-85 in steps of 5, rim 12-24 inches; O/I/l/S/B read as digits where
a digit must be; the R may be missing). No read, no code: the caller keeps its fallback. Measured on generated wheels only (no
photo with a legible sidewall exists offline): docs/heights.md.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import cv2
import numpy as np

from claimlens.vision.geometry.references import tyre_diameter_mm

STRIP_HEIGHT = 48
"""Rows of the unwrapped sidewall (the recogniser's input height)."""
INNER_FLOOR = 0.55
"""The band starts at the rim (its measured radius fraction) but never inside this fraction of the tyre."""
OUTER = 0.97
MIN_BAND = 0.2
WINDOW_ASPECT = 14.0
"""Window width / height over the strip (a size code is ~9 characters); windows overlap by half."""
_CODE = re.compile(r"(\d{3})/(\d{2})R?(\d{2})")
"""The R (radial) is often dropped by the recogniser (moulded, it is just another ridge): optional; the
validity rules (steps of 5, rim 12-24) keep stray digit runs out."""
_DIGIT_LOOKALIKES = str.maketrans({"O": "0", "Q": "0", "D": "0", "I": "1", "L": "1", "l": "1", "|": "1",
                                   "S": "5", "B": "8", "Z": "2", "G": "6"})


@dataclass(frozen=True)
class TyreCode:
    code: str  # normalised, e.g. "205/55 R16"
    diameter_mm: float
    text: str  # what the recogniser read in that window
    window: int


def unwrap_sidewall(rgb: np.ndarray, centre: tuple[float, float], axes: tuple[float, float], angle_deg: float,
                    rim_fraction: float, height: int = STRIP_HEIGHT) -> np.ndarray:
    """The sidewall annulus as a straight grey strip (``height`` rows, outer edge first; columns = the angle
    clockwise on screen from the top, one full turn plus a quarter so a code across the seam stays whole).
    ``axes``: full axes of the tyre's outer ellipse (as cv2.fitEllipse), ``angle_deg`` its rotation,
    ``rim_fraction`` the rim's share of the ellipse's area."""
    a, b = axes[0] / 2.0, axes[1] / 2.0
    # a rim that fills the ellipse (a hubcap, a wrong "wheel") leaves no sidewall: keep a band of 20 % anyway,
    # which also bounds the strip's length (~5 x pi x its height)
    inner = min(OUTER - MIN_BAND, max(INNER_FLOOR, math.sqrt(max(rim_fraction, 0.0)) + 0.03))
    rho = np.linspace(OUTER, inner, height)
    mean_r = (a + b) / 2.0
    px_per_col = (OUTER - inner) * mean_r / height  # square-ish pixels at the band's scale
    width = max(16, int(2.5 * math.pi * (OUTER + inner) / 2 * mean_r / max(px_per_col, 1e-6)))
    theta = -math.pi / 2 + np.linspace(0, 2.5 * math.pi, width, endpoint=False)
    ca, sa = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    ex = rho[:, None] * a * np.cos(theta)[None]
    ey = rho[:, None] * b * np.sin(theta)[None]
    mx = (centre[0] + ca * ex - sa * ey).astype(np.float32)
    my = (centre[1] + sa * ex + ca * ey).astype(np.float32)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    strip = cv2.remap(grey, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.createCLAHE(clipLimit=3.0, tileGridSize=(1, max(1, width // (4 * height)))).apply(strip)


def parse_code(text: str) -> tuple[str, float] | None:
    """(normalised code, diameter mm) of the first valid size code in recognised text, or None."""
    squeezed = re.sub(r"[\s.,·_-]", "", text.upper()).replace("ZR", "R")  # ZR: the speed-rating form
    for cand in (squeezed, squeezed.translate(_DIGIT_LOOKALIKES)):
        for m in _CODE.finditer(cand):
            code = f"{m.group(1)}/{m.group(2)} R{m.group(3)}"
            dia = tyre_diameter_mm(code)
            if dia is not None and int(m.group(1)) % 5 == 0 and int(m.group(2)) % 5 == 0:
                return code, dia
    return None


def read_tyre_code(rgb: np.ndarray, centre: tuple[float, float], axes: tuple[float, float], angle_deg: float,
                   rim_fraction: float, recognizer=None) -> TyreCode | None:
    """The size code moulded on this wheel's sidewall, or None (see the module doc)."""
    from claimlens.vision.plates.ocr import greedy_decode, shared_recognizer

    rec = recognizer or shared_recognizer()
    strip = unwrap_sidewall(rgb, centre, axes, angle_deg, rim_fraction)
    h, w = strip.shape
    win = int(WINDOW_ASPECT * h)
    starts = list(range(0, max(1, w - win // 2), win // 2)) or [0]
    for k, s in enumerate(starts):
        crop = strip[:, s:s + win]
        for img in (crop, 255 - crop):  # moulded text may catch the light or sit in shadow
            # one window at a time: a batch of wide windows grows ONNX Runtime's arena by ~200 MB for good
            text = greedy_decode(rec.probs([cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)])[0], rec.chars)
            got = parse_code(text)
            if got:
                return TyreCode(code=got[0], diameter_mm=got[1], text=text, window=k)
    return None
