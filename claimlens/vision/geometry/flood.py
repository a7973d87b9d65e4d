"""The water / silt line on a car's body and its height, in the reference plane of a measurement.

The photo is rectified into the reference plane (``Measurement.ground_h``: X mm, height mm above the ground)
at 5 mm per pixel, so a water line (level in the world) becomes one row. For every row the step between a
window below and a window above is scored per column: more texture below (silt speckle), more yellow-brown
(b*) below, darker below; the row whose 70th-percentile step over the columns is highest is the line (a
robust horizontal-line fit: a line spanning the car beats the car's own edges, which are short or change
only brightness). Its height maps to the six levels of :data:`references.FLOOD_LEVELS`.
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
WINDOW = 4  # rows (2 cm) each side of a candidate line
GAP = 3
PERCENTILE = 60  # of the per-column steps: the line must show on ~40 % of the columns at least
MIN_SCORE = 1.2  # below: no line found (measured on the generated flood suite's calibration seed)


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
    lab = cv2.cvtColor(rect, cv2.COLOR_RGB2LAB).astype(np.float32)
    bb = lab[..., 2]
    # texture on the grey level (not Lab L*, whose slope amplifies sensor noise in dark paint and glass)
    g = rect.astype(np.float32).mean(2)
    mean = cv2.blur(g, (5, 5))
    tex = np.sqrt(np.maximum(cv2.blur(g * g, (5, 5)) - mean * mean, 0))
    k = np.ones((WINDOW, 1), np.float32) / WINDOW
    # mean over the WINDOW rows above row r (rows r-WINDOW .. r-1) and below (r .. r+WINDOW-1)
    # a gap of GAP rows each side keeps the texture of an edge itself (the 5 x 5 window) out of both sides
    def above(x):
        return np.roll(cv2.filter2D(x, -1, k, anchor=(0, WINDOW - 1), borderType=cv2.BORDER_REPLICATE), 1 + GAP, 0)

    def below(x):
        return np.roll(cv2.filter2D(x, -1, k, anchor=(0, 0), borderType=cv2.BORDER_REPLICATE), -GAP, 0)

    t_b, t_a = below(tex), above(tex)

    # silt: below the line every surface (paint, glass, rim, tyre) is pulled towards the mud's yellow-brown
    # (b* up) and mud-coloured pixels become frequent; an edge of the car's own shape (window against door,
    # roof against sky) changes colour in no fixed direction and only over part of the car's length
    aa = lab[..., 1]
    mud = ((bb > 133) & (aa > 122) & (aa < 150) & (lab[..., 0] > 40)).astype(np.float32)
    s = 0.5 * np.maximum(below(bb) - above(bb), 0) + 6.0 * (below(mud) - above(mud)) + \
        0.15 * np.maximum(t_b - t_a, 0) / (t_a + 3.0)
    v = valid & np.roll(valid, WINDOW + GAP, 0) & np.roll(valid, -WINDOW - GAP, 0)
    s = np.where(v, s, np.nan)
    rows = s.shape[0]
    cols_ok = np.isfinite(s).sum(1) >= 0.2 * s.shape[1]
    prof = np.full(rows, 0.0)
    with np.errstate(all="ignore"):
        q = np.nanpercentile(np.where(cols_ok[:, None], s, np.nan), PERCENTILE, axis=1)
    prof[cols_ok] = np.nan_to_num(q[cols_ok])
    prof[: WINDOW + GAP + 1] = 0
    prof[-WINDOW - GAP - 1:] = 0
    r = int(np.argmax(prof))
    score = float(prof[r])
    if score < MIN_SCORE:
        return FloodLine(False, score=score, profile=prof.tolist())
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
