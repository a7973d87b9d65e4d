"""Finding the references in pixels: plate corners (the Chinese plate localiser, refined on the plate's
edges), wheels seen from the side (dark tyre ring around a brighter rim: ellipse fit, ground contact and top)
and tyres seen from the front or back (dark blobs under the bumper: their lowest row is the ground contact).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

WORK_SIDE = 1024  # references are searched on a copy whose longer side is at most this


@dataclass
class Wheel:
    centre: tuple[float, float]
    axes: tuple[float, float]  # full axes of the fitted ellipse (px)
    angle: float
    bottom: tuple[float, float]  # ground contact (px, full resolution)
    top: tuple[float, float]  # side wheels: mirrored contact through the rim centre (the wheel's top)
    rim_fraction: float
    kind: str = "side"  # side: tyre + rim ellipse; front: tyre seen end-on (only the bottom is used)
    score: float = 0.0
    box: tuple[float, float, float, float] = field(default=(0, 0, 0, 0))

    def as_json(self) -> dict:
        r = lambda v: round(float(v), 1)
        return {"kind": self.kind, "centre": [r(v) for v in self.centre], "axes": [r(v) for v in self.axes],
                "bottom": [r(v) for v in self.bottom], "top": [r(v) for v in self.top],
                "box": [r(v) for v in self.box], "rim_fraction": round(self.rim_fraction, 3),
                "score": round(self.score, 3)}


def _work(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    s = min(1.0, WORK_SIDE / max(rgb.shape[:2]))
    if s < 1:
        rgb = cv2.resize(rgb, (round(rgb.shape[1] * s), round(rgb.shape[0] * s)), interpolation=cv2.INTER_AREA)
    return rgb, s


DARK_LEVELS = (55, 75, 95)  # tyre-dark thresholds tried in turn (muddy or dusty tyres are lighter)


def dark_mask(rgb_small: np.ndarray, level: int = 55) -> np.ndarray:
    """Tyre-dark pixels: low value and low saturation (rubber is near-black and grey)."""
    hsv = cv2.cvtColor(rgb_small, cv2.COLOR_RGB2HSV)
    v, s = hsv[..., 2].astype(np.int16), hsv[..., 1].astype(np.int16)
    m = ((v < level) & (s < 110 + (level - 55))).astype(np.uint8)
    return cv2.morphologyEx(m, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))


def relative_dark_mask(rgb_small: np.ndarray, contrast: float) -> np.ndarray:
    """Pixels darker than their neighbourhood (a window ~1/6 of the image) by ``contrast`` x its mean: a
    tyre under silt or dust is no longer near-black, but it stays darker than the rim and the body."""
    g = cv2.cvtColor(rgb_small, cv2.COLOR_RGB2GRAY).astype(np.float32)
    k = max(15, (max(g.shape) // 6) | 1)
    mean = cv2.blur(g, (k, k))
    m = (g < mean * (1 - contrast) - 6).astype(np.uint8)
    return cv2.morphologyEx(m, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))


def _plausible_pair(ws: list[Wheel]) -> bool:
    """Two side wheels of one car: similar heights in pixels (perspective at most ~2x) and both bigger than
    a sliver."""
    if len(ws) < 2:
        return False
    a, b = sorted(sorted(ws, key=lambda w: -w.axes[0] * w.axes[1])[:2], key=lambda w: w.centre[0])
    ha, hb = abs(a.bottom[1] - a.top[1]), abs(b.bottom[1] - b.top[1])
    return 0.5 <= ha / max(hb, 1e-6) <= 2.0 and abs(a.centre[0] - b.centre[0]) > 1.2 * max(ha, hb)


def find_wheels(rgb: np.ndarray, max_wheels: int = 4) -> list[Wheel]:
    """Side-view wheels: dark, roughly elliptical blobs with a brighter rim inside, in the lower image.
    Darkness thresholds are tried from strict to loose, then relative darkness (silted tyres), until two
    wheels of one car (similar size) are found."""
    small, s = _work(rgb)
    best: list[Wheel] = []
    masks = [("abs", lv) for lv in DARK_LEVELS] + [("rel", c) for c in (0.25, 0.15)]
    for kind, lv in masks:
        m = dark_mask(small, lv) if kind == "abs" else relative_dark_mask(small, lv)
        found = _find_wheels(small, s, m, max_wheels)
        if _plausible_pair(found):
            return found
        if kind == "abs" and len(found) > len(best) and len(found) < 2:
            best = found  # relative darkness alone is too loose for a single-wheel reference
    return best


def _find_wheels(small: np.ndarray, s: float, m: np.ndarray, max_wheels: int) -> list[Wheel]:
    h, w = small.shape[:2]
    n, lab, stats, _c = cv2.connectedComponentsWithStats(m, 8)
    out: list[Wheel] = []
    for i in range(1, n):
        x, y, bw, bh, area = stats[i]
        if bh < 0.05 * h or bw < 0.02 * w or y + bh < 0.3 * h:
            continue
        if not (0.75 <= bh / max(bw, 1) <= 2.6):
            continue
        comp = (lab[y:y + bh, x:x + bw] == i).astype(np.uint8)
        cnts, _ = cv2.findContours(comp, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cnt = max(cnts, key=cv2.contourArea)
        if len(cnt) < 20:
            continue
        filled = np.zeros_like(comp)
        # the convex hull closes a tyre ring that mud or a kerb breaks at the bottom
        cv2.drawContours(filled, [cv2.convexHull(cnt)], -1, 1, -1)
        fill_area = float(filled.sum())
        ellipse_fill = fill_area / (np.pi / 4 * bw * bh)
        rim = 1.0 - area / max(fill_area, 1.0)
        if not (0.8 <= ellipse_fill <= 1.15) or rim < 0.12:
            continue
        (_ex, _ey), (ea, eb), ang = cv2.fitEllipse(cnt.astype(np.float32) + np.array([x, y], np.float32))
        # the rim (the brighter hole in the dark ring) marks the wheel centre; the arch gap around a tyre is
        # often as dark as the tyre, so the outer outline is not trusted for the top, only for the contact
        hole = (filled > 0) & (comp == 0)
        hn, _hl, hs, hc = cv2.connectedComponentsWithStats(hole.astype(np.uint8), 8)
        if hn <= 1:
            continue
        j = 1 + int(np.argmax(hs[1:, cv2.CC_STAT_AREA]))
        hcx, hcy = hc[j][0] + x, hc[j][1] + y
        pts = cnt.reshape(-1, 2).astype(np.float64) + [x, y]
        near = pts[np.abs(pts[:, 0] - hcx) < 0.08 * bw + 1]
        if not len(near):
            continue
        by = float(near[:, 1].max()) + 0.5
        if by <= hcy:
            continue
        score = float(min(1.0, rim / 0.3) * (1 - abs(ellipse_fill - 1)))
        out.append(Wheel((hcx / s, hcy / s), (ea / s, eb / s), float(ang), (hcx / s, by / s),
                         (hcx / s, (2 * hcy - by) / s), float(rim), "side", score,
                         (x / s, y / s, (x + bw) / s, (y + bh) / s)))
    out.sort(key=lambda wl: -wl.score * (wl.axes[0] * wl.axes[1]))
    out = out[:max_wheels]
    out.sort(key=lambda wl: wl.centre[0])
    return out


def find_front_tyres(rgb: np.ndarray, plate_corners: np.ndarray | None) -> list[Wheel]:
    """Tyres seen end-on under the bumper: dark blobs whose top is below the plate, left and right of it.
    Their ground contact is the median lowest row over their central columns."""
    small, s = _work(rgb)
    h, w = small.shape[:2]
    m = dark_mask(small)
    n, lab, stats, _c = cv2.connectedComponentsWithStats(m, 8)
    below = 0.4 * h
    pw = w * 0.15
    cx = w / 2
    if plate_corners is not None:
        pc = np.asarray(plate_corners) * s
        below = float(pc[:, 1].max())
        pw = float(pc[:, 0].max() - pc[:, 0].min())
        cx = float(pc[:, 0].mean())
    cands = []
    for i in range(1, n):
        x, y, bw, bh, area = stats[i]
        if area < max(20, 0.002 * pw * pw) or y + bh < below + 0.1 * pw:
            continue
        if bw > 2.5 * pw or bh > 3 * pw or bw < 0.08 * pw:
            continue
        if abs(x + bw / 2 - cx) < 0.6 * pw:  # under the plate: not a tyre
            continue
        if abs(x + bw / 2 - cx) > 6 * pw:
            continue
        comp = lab[y:y + bh, x:x + bw] == i
        cols = np.arange(int(bw * 0.2), max(int(bw * 0.8), int(bw * 0.2) + 1))
        lows = [y + np.nonzero(comp[:, c])[0].max() + 1.0 for c in cols if comp[:, c].any()]
        if not lows:
            continue
        bottom_y = float(np.median(lows))
        bx = x + bw / 2
        cands.append(Wheel((bx / s, (y + bh / 2) / s), (bw / s, bh / s), 0.0, (bx / s, bottom_y / s),
                           (bx / s, y / s), 0.0, "front", float(area), (x / s, y / s, (x + bw) / s, (y + bh) / s)))
    left = [c for c in cands if c.centre[0] < cx / s]
    right = [c for c in cands if c.centre[0] >= cx / s]
    out = []
    for side in (left, right):
        if side:
            out.append(max(side, key=lambda c: c.score))
    return out


def detect_plates(rgb: np.ndarray) -> list[dict]:
    """Plate corners from the Chinese plate localiser (TL, TR, BR, BL), refined on the plate edges."""

    det = _detector()
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    side = max(rgb.shape[:2])
    boxes = det.detect(bgr, max_side=min(1280, max(640, side // 2)))
    out = []
    for b in boxes:
        refined = refine_plate_corners(rgb, b.corners)
        out.append({"corners": b.corners.astype(np.float64), "refined": refined, "score": float(b.score)})
    return out


_DET = None


def _detector():
    global _DET
    if _DET is None:
        from claimlens.vision.plates.detector import PlateDetector

        _DET = PlateDetector(threads=1)
    return _DET


def refine_plate_corners(rgb: np.ndarray, corners: np.ndarray) -> np.ndarray | None:
    """Fit the four sides of a blue/green plate to its colour edge near the detected quadrilateral and
    intersect them; None when the plate colour does not fill the quadrilateral (keep the detector's)."""
    c = np.asarray(corners, np.float64)
    x1, y1 = c.min(0)
    x2, y2 = c.max(0)
    mx, my = 0.25 * (x2 - x1) + 4, 0.6 * (y2 - y1) + 4
    X1, Y1 = int(max(0, x1 - mx)), int(max(0, y1 - my))
    X2, Y2 = int(min(rgb.shape[1], x2 + mx)), int(min(rgb.shape[0], y2 + my))
    crop = rgb[Y1:Y2, X1:X2]
    if crop.size == 0 or min(crop.shape[:2]) < 8:
        return None
    up = 1.0
    if crop.shape[0] < 120:
        up = 120 / crop.shape[0]
        crop = cv2.resize(crop, None, fx=up, fy=up, interpolation=cv2.INTER_CUBIC)
    hsv = cv2.cvtColor(crop, cv2.COLOR_RGB2HSV)
    hue, sat, val = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    blue = (hue >= 95) & (hue <= 130) & (sat > 70) & (val > 40)
    green = (hue >= 40) & (hue < 95) & (sat > 50) & (val > 60)
    quad = np.zeros(crop.shape[:2], np.uint8)
    cv2.fillConvexPoly(quad, np.round((c - [X1, Y1]) * up).astype(np.int32), 1)
    qa = quad.sum()
    best = None
    for mask in (blue, green):
        m = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
        n, lab, _stats, _ = cv2.connectedComponentsWithStats(m, 8)
        if n <= 1:
            continue
        overlaps = [((lab == i) & (quad > 0)).sum() for i in range(1, n)]
        i = int(np.argmax(overlaps)) + 1
        comp = (lab == i).astype(np.uint8)
        comp = cv2.morphologyEx(comp, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8))
        ratio = comp.sum() / max(qa, 1)
        if 0.7 <= ratio <= 1.35 and (best is None or abs(ratio - 1) < abs(best[1] - 1)):
            best = (comp, ratio)
    if best is None:
        return None
    comp = best[0]
    cnts, _ = cv2.findContours(comp, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cnt = max(cnts, key=cv2.contourArea).reshape(-1, 2).astype(np.float64)
    q = (c - [X1, Y1]) * up
    lines = []
    for k in range(4):
        a, b = q[k], q[(k + 1) % 4]
        d = b - a
        L = np.linalg.norm(d)
        nrm = np.array([-d[1], d[0]]) / max(L, 1e-9)
        rel = cnt - a
        along = rel @ (d / max(L, 1e-9))
        dist = rel @ nrm
        tol = 0.25 * min(np.linalg.norm(q[1] - q[2]), np.linalg.norm(q[0] - q[1]))
        sel = (along > 0.15 * L) & (along < 0.85 * L) & (np.abs(dist) < tol)
        if sel.sum() < 5:
            return None
        vx, vy, x0, y0 = cv2.fitLine(cnt[sel].astype(np.float32), cv2.DIST_HUBER, 0, 0.01, 0.01).ravel()
        lines.append(np.cross([x0, y0, 1.0], [x0 + vx, y0 + vy, 1.0]))
    out = []
    for k in range(4):
        p = np.cross(lines[k - 1], lines[k])
        if abs(p[2]) < 1e-9:
            return None
        out.append(p[:2] / p[2])
    out = np.array(out) / up + [X1, Y1]
    # sides: line k-1 is the side (k-1 -> k), so the intersection of lines k-1 and k is corner k
    if np.max(np.linalg.norm(out - c, axis=1)) > 0.5 * (y2 - y1) + 3:
        return None
    # the contour lies on the inside boundary pixels: push out by half a pixel (of the crop) on average
    return out
