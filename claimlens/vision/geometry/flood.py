"""The water / silt line on a car's body and its height, in the reference plane of a measurement.

The photo is rectified into the reference plane (``Measurement.ground_h``: X mm, height mm above the ground)
at 5 mm per pixel, so a water line (level in the world) becomes one row. Per column and row, the mean colour
of a window below is tested against the window above for a silt mix: below = (1 - a) above + a mud with
0.15 < a < 0.9 and a small residual (the step points at a brown mud prior, whatever the paint, glass, tyre
or rim above it). A row's support is the fraction of columns passing (a consensus / RANSAC-like fit of a
horizontal line in the plane); the highest peak with at least 0.6 x the best support is the line (inside the
silt, the car's own edges can pass too). Its height maps to the six levels of
:data:`references.FLOOD_LEVELS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from claimlens.vision.geometry.measure import Measurement
from claimlens.vision.geometry.references import flood_level, level_interval

MM_PER_PX = 5.0
TOP_MM = 1600.0
WINDOW = 6  # rows (3 cm) each side of a candidate line
GAP = 3  # rows skipped each side (an edge's own blur)
MUD_RGB = np.array([118, 95, 62], np.float32)  # silt brown (prior)
ALPHA_RANGE = (0.15, 0.9)
MAX_RESIDUAL = 0.4  # |d - a u| / |d|: the step must point at the mud colour
MIN_STEP = 8.0  # grey levels
MIN_SUPPORT = 0.2  # fraction of the columns that must show the step
PEAK_RELATIVE = 0.6  # candidates: peaks >= 0.6 x the best; the highest wins (tuned on flood suite seed 0)


@dataclass
class FloodLine:
    found: bool
    height_cm: float | None = None
    sigma_cm: float | None = None
    level: int | None = None
    confident: bool = False
    score: float = 0.0
    profile: list[float] | None = None

    def as_json(self) -> dict[str, Any]:
        return {"found": self.found, "height_cm": self.height_cm, "sigma_cm": self.sigma_cm, "level": self.level,
                "confident": self.confident, "score": round(self.score, 3)}


def rectify(rgb: np.ndarray, m: Measurement) -> tuple[np.ndarray, np.ndarray, float]:
    x0, x1 = m.plane_extent_mm or (-1000.0, 1000.0)
    w = int((x1 - x0) / MM_PER_PX)
    h = int(TOP_MM / MM_PER_PX)
    # rectified pixel (u, v) -> plane (x0 + u*s, TOP - v*s) -> image
    a = np.array([[MM_PER_PX, 0, x0], [0, -MM_PER_PX, TOP_MM], [0, 0, 1.0]])
    mtx = m.ground_h @ a
    out = cv2.warpPerspective(rgb, mtx, (w, h), flags=cv2.INTER_AREA | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    valid = cv2.warpPerspective(np.full(rgb.shape[:2], 255, np.uint8), mtx, (w, h),
                                flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP, borderValue=0) > 0
    return out, valid, x0


def detect_flood_line(rgb: np.ndarray, m: Measurement) -> FloodLine:
    if m.ground_h is None:
        return FloodLine(False)
    rect, valid, _x0 = rectify(rgb, m)
    x = rect.astype(np.float32)
    k = np.ones((WINDOW, 1), np.float32) / WINDOW
    # mean colour of WINDOW rows above and below row r, GAP rows away from it (an edge's own blur is skipped)
    above = np.roll(cv2.filter2D(x, -1, k, anchor=(0, WINDOW - 1), borderType=cv2.BORDER_REPLICATE), 1 + GAP, 0)
    below = np.roll(cv2.filter2D(x, -1, k, anchor=(0, 0), borderType=cv2.BORDER_REPLICATE), -GAP, 0)
    # silt mixes every surface with the mud's colour: below = (1 - a) * above + a * mud, 0 < a < 1
    d = below - above
    u = MUD_RGB - above
    alpha = (d * u).sum(2) / ((u * u).sum(2) + 1e-6)
    dn = np.linalg.norm(d, axis=2)
    resid = np.linalg.norm(d - alpha[..., None] * u, axis=2) / (dn + 1e-6)
    ok = (alpha > ALPHA_RANGE[0]) & (alpha < ALPHA_RANGE[1]) & (resid < MAX_RESIDUAL) & (dn > MIN_STEP)
    v = valid & np.roll(valid, WINDOW + GAP, 0) & np.roll(valid, -WINDOW - GAP, 0)
    prof = (ok & v).sum(1) / np.maximum(v.sum(1), 1)
    prof[: WINDOW + GAP + 1] = 0
    prof[-WINDOW - GAP - 1:] = 0
    prof = np.convolve(prof, np.ones(3) / 3, "same")
    rows = len(prof)
    best = float(prof.max())
    if best < MIN_SUPPORT:
        return FloodLine(False, score=best, profile=prof.tolist())
    # the water line is the top of the silt: inside the silt the car's own edges can also pass the mix test,
    # so take the highest strong peak rather than the strongest
    peaks = [i for i in range(1, rows - 1) if prof[i] >= prof[i - 1] and prof[i] >= prof[i + 1]
             and prof[i] >= max(MIN_SUPPORT, PEAK_RELATIVE * best)]
    r = min(peaks) if peaks else int(np.argmax(prof))
    score = float(prof[r])
    # sub-row: parabola through the peak
    if 0 < r < rows - 1:
        a, b, c = prof[r - 1], prof[r], prof[r + 1]
        den = a - 2 * b + c
        off = 0.5 * (a - c) / den if abs(den) > 1e-9 else 0.0
    else:
        off = 0.0
    height_mm = TOP_MM - (r + np.clip(off, -0.5, 0.5)) * MM_PER_PX
    # uncertainty: the reference's scale error at that height (relative sigma of the marks) + 1 cm
    rel = 0.0
    for mk in m.marks:
        if mk.get("top_cm"):
            rel = max(rel, mk.get("top_sigma_cm", 0) / max(abs(mk["top_cm"]), 1))
    rel = rel or 0.04
    sigma_cm = float(np.hypot(height_mm / 10 * rel, 1.0))
    hcm = float(height_mm / 10)
    level = flood_level(hcm)
    lo, hi = level_interval(level)
    confident = (hcm - 2 * sigma_cm) >= lo and (hcm + 2 * sigma_cm) < hi
    return FloodLine(True, round(hcm, 1), round(sigma_cm, 1), level, bool(confident), score, prof.tolist())
