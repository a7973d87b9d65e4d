"""Finding the references in pixels: plate corners (the Chinese plate localiser, refined on the plate's
edges), wheels seen from the side (dark tyre ring around a brighter rim: ellipse fit, ground contact and top)
and tyres seen from the front or back (dark blobs under the bumper or beside the face; their ground contact
is the tangent from the car's long-axis vanishing point, :func:`ground_contact`, once the pose is known).
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
    # front tyres: the blob's lower envelope (lowest pixel of every column, full resolution, N x 2), from which
    # the contact is re-found once the camera pose is known (:func:`ground_contact`)
    outline: np.ndarray | None = field(default=None, repr=False, compare=False)

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


def find_wheels(rgb: np.ndarray, max_wheels: int = 4, ring: bool = False) -> list[Wheel]:
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
            return [refine_contact(small, s, w) for w in found]
        if kind == "abs" and len(found) > len(best) and len(found) < 2:
            best = found  # relative darkness alone is too loose for a single-wheel reference
    if not ring:  # opt-in: on front views and skirted cars it can pair non-wheels (heights suite seed 1)
        return best
    pair = find_wheels_ring(rgb)
    return [refine_contact(small, s, w) for w in pair] if len(pair) == 2 else best


CONTACT_STEP_REL = 0.4  # a step >= this x the strongest one below the wheel centre can be the ground contact
CONTACT_MIN_STEP = 12.0  # grey levels (colour distance)


def refine_contact(small: np.ndarray, s: float, w: Wheel) -> Wheel:
    """Move a side wheel's ground contact to the *lowest* strong colour step on its centre columns, between
    0.6 and 1.6 (dark-ring) radii below the centre: silt covers a tyre's bottom, so the dark ring ends at the silt
    line, above the real contact (the silted tyre bottom against the ground is the last step). The top is
    re-mirrored through the centre."""
    cx, cy = w.centre[0] * s, w.centre[1] * s
    r = abs(w.bottom[1] - w.centre[1]) * s
    if r < 4:
        return w
    img = small.astype(np.float32)
    c0, c1 = int(max(0, cx - 0.15 * r)), int(min(img.shape[1], cx + 0.15 * r + 1))
    y0, y1 = int(cy + 0.6 * r), int(min(img.shape[0] - 3, cy + 1.6 * r))
    if c1 <= c0 or y1 <= y0 + 2 or y0 < 2:
        return w
    prof = cv2.GaussianBlur(img[:, c0:c1].mean(1).reshape(-1, 1, 3), (1, 5), 1.0).reshape(-1, 3)
    steps = np.linalg.norm(prof[y0 + 2: y1 + 2] - prof[y0 - 2: y1 - 2], axis=1)
    if not len(steps) or steps.max() < CONTACT_MIN_STEP:
        return w
    ok = np.nonzero(steps >= max(CONTACT_MIN_STEP, CONTACT_STEP_REL * steps.max()))[0]
    k = int(ok.max())
    while k + 1 < len(steps) and steps[k + 1] >= steps[k]:
        k += 1
    while k - 1 >= 0 and steps[k - 1] > steps[k]:
        k -= 1
    by = (y0 + k + 0.5) / s
    if by <= w.bottom[1]:
        return w  # only ever moves the contact down (a dark ring cannot end below the tyre)
    return Wheel(w.centre, w.axes, w.angle, (w.bottom[0], by), (w.top[0], 2 * w.centre[1] - by), w.rim_fraction,
                 w.kind, w.score, (w.box[0], w.box[1], w.box[2], by))


RING_SIDE = 384  # the ring search runs on a copy this wide
RING_MIN_CONTRAST = 18.0  # grey levels: rim (inner disk) brighter than the lightest quarter of the tyre ring


def _rect_means(ii: np.ndarray, shape: tuple[int, int], x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """Mean over the rectangle [x0, x1) x [y0, y1) relative to every pixel (integral image ``ii`` of an
    edge-padded copy, pad = the largest offset)."""
    h, w = shape
    pad = (ii.shape[0] - 1 - h) // 2
    ys, xs = pad + y0, pad + x0
    ye, xe = pad + y1, pad + x1
    s = ii[ye:ye + h, xe:xe + w] - ii[ys:ys + h, xe:xe + w] - ii[ye:ye + h, xs:xs + w] + ii[ys:ys + h, xs:xs + w]
    return (s / float((x1 - x0) * (y1 - y0))).astype(np.float32)


def find_wheels_ring(rgb: np.ndarray) -> list[Wheel]:
    """Wheels under silt or dust, whatever their darkness relative to the body: the rim is a disk *brighter*
    than the tyre ring around it (silt mixes into both, so the contrast survives at a fraction). Box filters
    on an integral image (inner square +-0.35 r vs the four bands of the tyre ring at 0.72-0.95 r above,
    below, left and right, the lightest band counts) over a range of radii; the best pair of one car (similar
    radius, side by side) is refined on the work copy: centre = the rim blob's centroid, contact = the
    strongest colour step below the rim on the centre columns (the tyre's lower edge against the ground), top
    = the contact mirrored through the centre."""
    big, sb = _work(rgb)
    h0, w0 = big.shape[:2]
    s = RING_SIDE / max(h0, w0)
    small = cv2.resize(big, (round(w0 * s), round(h0 * s)), interpolation=cv2.INTER_AREA)
    g = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)
    hs, ws = g.shape
    pad = int(0.16 * ws) + 2
    ii = cv2.integral(cv2.copyMakeBorder(g, pad, pad, pad, pad, cv2.BORDER_REPLICATE), sdepth=cv2.CV_64F)
    best = np.full(g.shape, -1e9, np.float32)
    best_r = np.zeros(g.shape, np.float32)
    r = 0.025 * ws
    while r <= 0.15 * ws:
        a, b, c, e = (max(1, round(f * r)) for f in (0.35, 0.5, 0.72, 0.95))
        c = min(c, e - 1)
        inner = _rect_means(ii, g.shape, -a, -a, a + 1, a + 1)
        bands = [_rect_means(ii, g.shape, -b, -e, b + 1, -c + 1), _rect_means(ii, g.shape, -b, c, b + 1, e + 1),
                 _rect_means(ii, g.shape, -e, -b, -c + 1, b + 1), _rect_means(ii, g.shape, c, -b, e + 1, b + 1)]
        resp = inner - np.max(bands, axis=0)
        upd = resp > best
        best[upd], best_r[upd] = resp[upd], r
        r *= 1.12
    best[: int(0.25 * hs)] = -1e9  # wheels are in the lower part of a side view
    peaks = []
    work = best.copy()
    for _ in range(8):
        y, x = np.unravel_index(int(np.argmax(work)), work.shape)
        v = float(work[y, x])
        if v < RING_MIN_CONTRAST:
            break
        rr = float(best_r[y, x])
        peaks.append((v, x, y, rr))
        cv2.circle(work, (int(x), int(y)), int(1.2 * rr) + 1, -1e9, -1)
    pair, pscore = None, 0.0
    for i in range(len(peaks)):
        for j in range(i + 1, len(peaks)):
            a, b = peaks[i], peaks[j]
            ratio = a[3] / b[3]
            dx, dy = abs(a[1] - b[1]), abs(a[2] - b[2])
            if 0.65 <= ratio <= 1.55 and dx > 2.4 * max(a[3], b[3]) and dy < 0.35 * dx \
                    and a[0] + b[0] > pscore:
                pair, pscore = (a, b), a[0] + b[0]
    if pair is None:
        return []
    out = []
    for v, x, y, rr in sorted(pair, key=lambda p: p[1]):
        w = _refine_ring_wheel(big, x / s, y / s, rr / s, v)
        if w is None:
            return []
        cx, cy, by = w
        out.append(Wheel((cx / sb, cy / sb), (2 * (by - cy) / sb, 2 * (by - cy) / sb), 0.0, (cx / sb, by / sb),
                         (cx / sb, (2 * cy - by) / sb), 0.38, "side", float(v),
                         ((cx - (by - cy)) / sb, (2 * cy - by) / sb, (cx + (by - cy)) / sb, by / sb)))
    return out if _plausible_pair(out) else []


def _refine_ring_wheel(img: np.ndarray, x: float, y: float, r: float, contrast: float):
    """Centre (rim blob centroid) and ground contact row of a ring-detected wheel on the work copy."""
    hh, ww = img.shape[:2]
    x1, y1 = int(max(0, x - 1.3 * r)), int(max(0, y - 1.3 * r))
    x2, y2 = int(min(ww, x + 1.3 * r)), int(min(hh, y + 1.6 * r))
    crop = img[y1:y2, x1:x2].astype(np.float32)
    if crop.shape[0] < 8 or crop.shape[1] < 8:
        return None
    g = cv2.GaussianBlur(cv2.cvtColor(crop.astype(np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), 1.0)
    lx, ly = x - x1, y - y1
    yy, xx = np.mgrid[:g.shape[0], :g.shape[1]]
    d = np.hypot(xx - lx, yy - ly)
    inner = float(np.median(g[d < 0.4 * r]))
    ring = float(np.median(g[(d > 0.75 * r) & (d < 0.92 * r)]))
    if inner - ring < 0.5 * contrast:
        return None
    bright = ((g > (inner + ring) / 2) & (d < 0.8 * r)).astype(np.uint8)
    n, lab, st, cen = cv2.connectedComponentsWithStats(bright, 8)
    if n <= 1:
        return None
    k = lab[round(min(ly, g.shape[0] - 1)), round(min(lx, g.shape[1] - 1))]
    if k == 0:
        k = 1 + int(np.argmax(st[1:, cv2.CC_STAT_AREA]))
    cx, cy = float(cen[k][0]), float(cen[k][1])
    rim_r = 0.5 * (st[k, cv2.CC_STAT_HEIGHT] + st[k, cv2.CC_STAT_WIDTH]) / 2
    # the tyre's lower edge: the strongest colour step on the centre columns, between 1.2 and 2.0 rim radii
    c0, c1 = int(max(0, cx - 0.25 * rim_r)), int(min(g.shape[1], cx + 0.25 * rim_r + 1))
    prof = cv2.GaussianBlur(crop[:, c0:c1].mean(1), (1, 0), 1.0) if c1 > c0 else None
    if prof is None:
        return None
    prof = prof.reshape(-1, 3)
    lo, hi = int(cy + 1.2 * rim_r), int(min(len(prof) - 3, cy + 2.0 * rim_r))
    if hi <= lo + 2:
        return None
    steps = np.linalg.norm(prof[lo + 2: hi + 2] - prof[lo - 2: hi - 2], axis=1)
    by = lo + int(np.argmax(steps)) + 0.5
    return cx + x1, cy + y1, by + y1


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
        outline = (lower_envelope(comp) + [x, y]) / s
        cands.append(Wheel((bx / s, (y + bh / 2) / s), (bw / s, bh / s), 0.0, (bx / s, bottom_y / s),
                           (bx / s, y / s), 0.0, "front", float(area), (x / s, y / s, (x + bw) / s, (y + bh) / s),
                           outline))
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
        sub = subpixel_plate_corners(rgb, b.corners)
        out.append({"corners": b.corners.astype(np.float64), "refined": refined, "score": float(b.score),
                    "subpixel": None if sub is None else sub[0]})
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
    out = refit_quad(cnt, q, 0.25 * min(np.linalg.norm(q[1] - q[2]), np.linalg.norm(q[0] - q[1])), 5)
    if out is None:
        return None
    out = out / up + [X1, Y1]
    if np.max(np.linalg.norm(out - c, axis=1)) > 0.5 * (y2 - y1) + 3:
        return None
    # the contour lies on the inside boundary pixels: push out by half a pixel (of the crop) on average
    return out


def refit_quad(outline: np.ndarray, quad: np.ndarray, max_dist: float, min_points: int) -> np.ndarray | None:
    """A rough quadrilateral's four sides refitted to the outline points near each (its middle 70 %, within
    ``max_dist`` of it; Huber line fit) and intersected (:func:`corners_from_sides`); None when a side has fewer
    than ``min_points`` points."""
    pts = np.asarray(outline, np.float64).reshape(-1, 2)
    lines = []
    for k in range(4):
        a, b = quad[k], quad[(k + 1) % 4]
        d = b - a
        length = max(float(np.linalg.norm(d)), 1e-9)
        rel = pts - a
        along = rel @ (d / length)
        dist = rel @ (np.array([-d[1], d[0]]) / length)
        sel = (along > 0.15 * length) & (along < 0.85 * length) & (np.abs(dist) < max_dist)
        if sel.sum() < min_points:
            return None
        vx, vy, x0, y0 = cv2.fitLine(pts[sel].astype(np.float32), cv2.DIST_HUBER, 0, 0.01, 0.01).ravel()
        lines.append(np.cross([x0, y0, 1.0], [x0 + vx, y0 + vy, 1.0]))
    return corners_from_sides(lines)


def corners_from_sides(lines: list[np.ndarray]) -> np.ndarray | None:
    """Corner k = the intersection of side k-1 (corner k-1 -> k) and side k (homogeneous lines); None when two
    adjacent sides are parallel."""
    out = []
    for k in range(4):
        p = np.cross(lines[k - 1], lines[k])
        if abs(p[2]) < 1e-9:
            return None
        out.append(p[:2] / p[2])
    return np.array(out)


SUBPIX_MIN_GRAD = 20.0  # colour-gradient floor of a plate border edge point


def subpixel_plate_corners(rgb: np.ndarray, corners: np.ndarray, iters: int = 3) -> tuple[np.ndarray, float] | None:
    """Sub-pixel plate corners: along each side, colour-gradient edge points on profiles normal to the side
    (bilinear sampling, 0.25 px steps, parabolic peak), the outermost strong edge (the plate's outer border
    against the body), a Huber line fit (cv2.fitLine) per side, the corners = intersections of adjacent
    sides. Returns (corners, corner_sigma_px) or None."""
    img = rgb.astype(np.float32)
    q = np.asarray(corners, np.float64).reshape(4, 2).copy()
    ph = float(np.mean([np.linalg.norm(q[3] - q[0]), np.linalg.norm(q[2] - q[1])]))
    cen = q.mean(0)
    res_all = []
    for it in range(iters):
        R = max(3.0, (0.2 if it == 0 else 0.1) * ph)
        lines, resid = [], []
        for k in range(4):
            a, b = q[k], q[(k + 1) % 4]
            d = b - a
            L = float(np.linalg.norm(d))
            u = d / max(L, 1e-9)
            nrm = np.array([-u[1], u[0]])
            if np.dot((a + b) / 2 - cen, nrm) < 0:
                nrm = -nrm  # outward
            n = int(np.clip(L / 1.0, 8, 200))
            ts = np.linspace(0.12, 0.88, n)
            ss = np.arange(-R, R + 0.25, 0.25)
            P = a[None, None] + (ts[:, None, None] * d[None, None]) + ss[None, :, None] * nrm[None, None]
            mx, my = P[..., 0].astype(np.float32), P[..., 1].astype(np.float32)
            prof = cv2.remap(img, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)  # n x m x 3
            k4 = 4  # 1 px
            g = np.linalg.norm(prof[:, 2 * k4:] - prof[:, :-2 * k4], axis=2)  # centred at ss[k4:-k4]
            pts = []
            for i in range(n):
                gi = g[i]
                if gi.max() < SUBPIX_MIN_GRAD:
                    continue
                thr = 0.3 * gi.max()
                locmax = [j for j in range(1, len(gi) - 1) if gi[j] >= thr and gi[j] >= gi[j - 1] and gi[j] > gi[j + 1]]
                j = None
                for jj in locmax[::-1]:  # outermost edge with a uniform outside (the body around the plate)
                    o0 = k4 + jj + 10
                    seg = prof[i, o0:o0 + 12]
                    if len(seg) >= 6 and float(seg.std(0).mean()) < min(15.0, 0.25 * gi[jj]):
                        j = jj
                        break
                if j is None:
                    continue
                off = 0.0
                if 0 < j < len(gi) - 1:
                    den = gi[j - 1] - 2 * gi[j] + gi[j + 1]
                    if den < 0:
                        off = 0.5 * (gi[j - 1] - gi[j + 1]) / den
                s = ss[k4 + j] + off * 0.25
                pts.append(a + ts[i] * d + s * nrm)
            if len(pts) < 6:
                return None
            pts = np.array(pts, np.float32)
            vx, vy, x0, y0 = cv2.fitLine(pts, cv2.DIST_HUBER, 0, 0.01, 0.01).ravel()
            r = (pts[:, 0] - x0) * vy - (pts[:, 1] - y0) * vx
            # drop outliers and refit
            keep = np.abs(r) < max(0.75, 2.5 * np.median(np.abs(r)) * 1.4826)
            if keep.sum() >= 6:
                vx, vy, x0, y0 = cv2.fitLine(pts[keep], cv2.DIST_HUBER, 0, 0.01, 0.01).ravel()
                r = (pts[keep, 0] - x0) * vy - (pts[keep, 1] - y0) * vx
            resid.append((float(np.std(r)), len(r)))
            lines.append(np.cross([x0, y0, 1.0], [x0 + vx, y0 + vy, 1.0]))
        new = corners_from_sides(lines)
        if new is None:
            return None
        if np.max(np.linalg.norm(new - np.asarray(corners), axis=1)) > 0.6 * ph + 3:
            return None
        q = new
        res_all = resid
    # corner sigma: line offset uncertainty std/sqrt(n) (x ~2 for the ends) per side, combined
    sig = float(np.sqrt(np.mean([(s / np.sqrt(max(m, 1))) ** 2 for s, m in res_all]))) * 2.0
    return q, sig


VP_MAX_DEV_DEG = 12.0  # near-vertical: within this of the plate's vertical sides' direction (image)
VP_MIN_LEN_PH = 2.0  # segments at least this x the plate's height in pixels
VP_INLIER_DEG = 0.6  # a segment agrees with a vanishing point when its direction is within this
VP_MIN_LEN_PW_H = 0.8  # horizontal segments at least this x the plate's width
VP_AXIS_SEARCH_DEG = 8.0  # long-axis segments: pointing within this of the plate pose's prediction
VP_AXIS_MAX_DEV_DEG = 4.0  # ... and their vanishing point's direction within this of the predicted one
VP_MIN_SPREAD_PW = 0.25  # the agreeing segments must be spread over this x the plate width (conditioning)


def vertical_segments(rgb: np.ndarray, plate_corners: np.ndarray, horizontal: bool = False,
                      segs_all: np.ndarray | None = None) -> np.ndarray:
    """Long near-vertical line segments (LSD, sub-pixel endpoints) around a plate: the car's and the scene's
    vertical edges (face corners, tyre and wheel-arch sides, the body's end, posts, building edges). With
    ``horizontal``: long segments near the direction of the plate's horizontal edges (bumper, grille, the
    face's top and bottom edges). N x 4 (x1, y1, x2, y2), full-resolution pixels."""
    pc = np.asarray(plate_corners, np.float64).reshape(4, 2)
    pw = float(np.mean([np.linalg.norm(pc[1] - pc[0]), np.linalg.norm(pc[2] - pc[3])]))
    ph = float(np.mean([np.linalg.norm(pc[3] - pc[0]), np.linalg.norm(pc[2] - pc[1])]))
    cx, cy = pc.mean(0)
    h, w = rgb.shape[:2]
    x0, x1 = int(max(0, cx - 5 * pw)), int(min(w, cx + 5 * pw))
    y0, y1 = int(max(0, cy - 4 * pw)), int(min(h, cy + 3 * pw))
    if x1 - x0 < 16 or y1 - y0 < 16:
        return np.zeros((0, 4))
    segs = segs_all if segs_all is not None else lsd_segments(rgb, (x0, y0, x1, y1))
    if not len(segs):
        return np.zeros((0, 4))
    if horizontal:
        ref = (pc[1] - pc[0]) + (pc[2] - pc[3])
        min_len = max(VP_MIN_LEN_PW_H * pw, 25.0)
    else:
        ref = (pc[3] - pc[0]) + (pc[2] - pc[1])
        min_len = max(VP_MIN_LEN_PH * ph, 25.0)
    ref /= np.linalg.norm(ref)
    d = segs[:, 2:] - segs[:, :2]
    length = np.linalg.norm(d, axis=1)
    cosang = np.abs(d @ ref) / np.maximum(length, 1e-9)
    keep = (length >= min_len) & (cosang >= np.cos(np.radians(VP_MAX_DEV_DEG)))
    return segs[keep]


def lsd_segments(rgb: np.ndarray, roi: tuple[int, int, int, int]) -> np.ndarray:
    x0, y0, x1, y1 = roi
    g = cv2.cvtColor(np.ascontiguousarray(rgb[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)
    segs = cv2.createLineSegmentDetector().detect(g)[0]
    if segs is None:
        return np.zeros((0, 4))
    return segs.reshape(-1, 4).astype(np.float64) + [x0, y0, x0, y0]


def _seg_lines(segs: np.ndarray) -> np.ndarray:
    p = np.c_[segs[:, :2], np.ones(len(segs))]
    q = np.c_[segs[:, 2:], np.ones(len(segs))]
    ln = np.cross(p, q)
    return ln / np.linalg.norm(ln[:, :2], axis=1, keepdims=True)


def _seg_dev(segs: np.ndarray, vp: np.ndarray) -> np.ndarray:
    """Angle (rad) between each segment and the line from its midpoint to the vanishing point (homogeneous)."""
    mid = (segs[:, :2] + segs[:, 2:]) / 2
    d = segs[:, 2:] - segs[:, :2]
    to = vp[:2][None] - mid * vp[2] if abs(vp[2]) > 1e-12 else np.repeat(vp[None, :2], len(segs), 0)
    cr = np.abs(d[:, 0] * to[:, 1] - d[:, 1] * to[:, 0])
    dt = np.abs((d * to).sum(1))
    return np.arctan2(cr, dt)


def _plate_edges_agree(pc: np.ndarray, vp: np.ndarray) -> bool:
    """The plate's top and bottom edges point at a horizontal vanishing point candidate (within 2 px at
    their ends): the lines of the car's side (another direction) do not."""
    edges = np.array([[*pc[0], *pc[1]], [*pc[3], *pc[2]]])
    ln = np.linalg.norm(edges[:, 2:] - edges[:, :2], axis=1)
    return bool((_seg_dev(edges, vp) < np.maximum(np.radians(1.0), 2.0 / np.maximum(ln, 1.0))).all())


def fit_vanishing_point(segs: np.ndarray) -> np.ndarray:
    """Least-squares vanishing point (homogeneous, unit) of segments: weighted by length."""
    ln = _seg_lines(segs) * np.sqrt(np.linalg.norm(segs[:, 2:] - segs[:, :2], axis=1))[:, None]
    # conditioning: points scaled by s (p' = diag(s, s, 1) p), so lines l' = l @ diag(1/s, 1/s, 1)
    s = 1e-3
    _u, _s, vt = np.linalg.svd(ln @ np.diag([1 / s, 1 / s, 1.0]))
    v = vt[-1]
    v = np.array([v[0], v[1], v[2] * s])  # back to pixels: diag(1/s, 1/s, 1) v', times s
    return v / np.linalg.norm(v)


def vertical_vanishing_point(rgb: np.ndarray, plate_corners: np.ndarray, horizontal: bool = False,
                             segs_all: np.ndarray | None = None) -> dict | None:
    """The vertical (``horizontal``: the plate's horizontal) vanishing point from long segments in that
    direction (RANSAC over pairs, least squares on the inliers). None without >= 2 agreeing segments spread
    over >= VP_MIN_SPREAD_PW plate widths (horizontal: plate heights, across the lines)."""
    segs = vertical_segments(rgb, plate_corners, horizontal, segs_all)
    if len(segs) < 2:
        return None
    pc = np.asarray(plate_corners, np.float64).reshape(4, 2)
    pw = float(np.mean([np.linalg.norm(pc[1] - pc[0]), np.linalg.norm(pc[2] - pc[3])]))
    if horizontal:
        pw = float(np.mean([np.linalg.norm(pc[3] - pc[0]), np.linalg.norm(pc[2] - pc[1])]))
    best = _vp_consensus(segs, (lambda vp: _plate_edges_agree(pc, vp)) if horizontal else None)
    if best is None:
        return None
    ins = segs[best]
    mids = (ins[:, 1] + ins[:, 3]) / 2 if horizontal else (ins[:, 0] + ins[:, 2]) / 2
    return _vp_result(ins, float(mids.max() - mids.min()), VP_MIN_SPREAD_PW * pw)


def long_axis_vanishing_point(plate_corners: np.ndarray, k: np.ndarray, predicted: np.ndarray,
                              segs_all: np.ndarray) -> dict | None:
    """The vanishing point of the car's long axis (the plate's normal) from the long lines of the body's side
    (sill, belt and roof lines), seen in 3/4 views: segments pointing within VP_AXIS_SEARCH_DEG of the
    ``predicted`` direction (camera frame, from the plate's own pose; ``k`` the intrinsics), RANSAC over
    pairs as for the vertical; the result must point within VP_AXIS_MAX_DEV_DEG of the prediction (two
    stray lines can agree on a point anywhere). With the face's horizontal direction it gives the camera's
    tilt when no vertical edge is found (the plate's keystone conditions tilt badly close up). None without
    >= 2 agreeing segments spread over >= VP_MIN_SPREAD_PW plate widths across the lines."""
    pc = np.asarray(plate_corners, np.float64).reshape(4, 2)
    pw = float(np.mean([np.linalg.norm(pc[1] - pc[0]), np.linalg.norm(pc[2] - pc[3])]))
    if not len(segs_all):
        return None
    length = np.linalg.norm(segs_all[:, 2:] - segs_all[:, :2], axis=1)
    pred_dir = np.asarray(predicted, np.float64) / np.linalg.norm(predicted)
    pred = k @ pred_dir
    segs = segs_all[(length >= max(VP_MIN_LEN_PW_H * pw, 25.0)) &
                    (_seg_dev(segs_all, pred / np.linalg.norm(pred)) < np.radians(VP_AXIS_SEARCH_DEG))]
    if len(segs) < 2:
        return None
    best = _vp_consensus(segs, lambda vp: not _plate_edges_agree(pc, vp))
    if best is None:
        return None
    ins = segs[best]
    vp = fit_vanishing_point(ins)
    d = np.linalg.inv(k) @ vp
    if np.degrees(np.arccos(min(1.0, abs(d @ pred_dir) / np.linalg.norm(d)))) > VP_AXIS_MAX_DEV_DEG:
        return None
    centre = pc.mean(0)
    to = vp[:2] - centre * vp[2] if abs(vp[2]) > 1e-12 else vp[:2]
    across = np.array([-to[1], to[0]]) / max(np.linalg.norm(to), 1e-12)
    mids = ((ins[:, :2] + ins[:, 2:]) / 2) @ across
    return _vp_result(ins, float(mids.max() - mids.min()), VP_MIN_SPREAD_PW * pw)


def _vp_consensus(segs: np.ndarray, accept=None) -> np.ndarray | None:
    """Inlier mask of the vanishing point (RANSAC over segment pairs, score = inlier length) that ``accept``
    allows, or None without two agreeing segments."""
    lines = _seg_lines(segs)
    length = np.linalg.norm(segs[:, 2:] - segs[:, :2], axis=1)
    best, best_score = None, 0.0
    for i in range(len(segs)):
        for j in range(i + 1, len(segs)):
            vp = np.cross(lines[i], lines[j])
            nv = np.linalg.norm(vp)
            if nv < 1e-12:
                continue
            inl = _seg_dev(segs, vp / nv) < np.maximum(np.radians(VP_INLIER_DEG), 1.5 / length)
            if accept is not None and not accept(vp / nv):
                continue
            score = float(length[inl].sum())
            if score > best_score:
                best, best_score = inl, score
    return None if best is None or best.sum() < 2 else best


def _vp_result(ins: np.ndarray, spread_px: float, min_spread_px: float) -> dict | None:
    if spread_px < min_spread_px:
        return None
    vp = fit_vanishing_point(ins)
    dev = _seg_dev(ins, vp)
    return {"vp": vp, "segments": ins, "n": len(ins), "spread_px": spread_px,
            "rms_deg": float(np.degrees(np.sqrt(np.mean(dev ** 2))))}


def lower_envelope(mask: np.ndarray) -> np.ndarray:
    """The bottom edge (x centre, y bottom) of the lowest pixel of every column of a binary mask (N x 2).
    Only the envelope, not the whole outline: the whole outline lets a contact found with a noisy pose
    (the keystone's) slide up a steep side of the tyre (1-2 m suite, seed 1: 1 cm worse median)."""
    cols = np.nonzero(mask.any(axis=0))[0]
    low = mask.shape[0] - 1 - np.argmax(mask[::-1, cols], axis=0)
    return np.c_[cols + 0.5, low + 1.0]


def ground_contact(outline: np.ndarray, along: np.ndarray, down: np.ndarray) -> np.ndarray:
    """The ground contact of a tyre from its outline (or lower envelope), given the image of the car's long axis.

    A wheel touches the ground where the ground line of its plane (a line along the car's long axis, whose
    image passes through that axis' vanishing point ``along``, homogeneous) is tangent to it; all of the tyre
    lies above that line. So the contact is the envelope point at the extreme angle seen from ``along`` on
    the ground side (``down``: an image direction pointing to the ground at the tyre). Exact for a round
    tyre under any yaw, where the lowest row is not: a tyre seen obliquely is a tilted ellipse whose lowest
    pixel lies off the contact (the contact may even sit on its steep side), and the median of the lowest
    rows of its central columns lies halfway up that side."""
    pts = np.asarray(outline, np.float64).reshape(-1, 2)
    v = np.asarray(along, np.float64)
    c = pts.mean(0)
    if abs(v[2]) > 1e-9 * np.linalg.norm(v[:2]) and v[2] > 0:
        vp = v[:2] / v[2]
        axis = c - vp
        axis /= max(np.linalg.norm(axis), 1e-12)
        rel = pts - vp
        # sine of each point's angle off the axis vp -> centroid, signed towards the ground side
        normal = np.array([-axis[1], axis[0]])
        sgn = 1.0 if normal @ down >= 0 else -1.0
        score = sgn * (rel @ normal) / np.maximum(np.linalg.norm(rel, axis=1), 1e-9)
    else:  # vanishing point at infinity (or behind the camera): the lines are parallel
        axis = v[:2] / max(np.linalg.norm(v[:2]), 1e-12)
        normal = np.array([-axis[1], axis[0]])
        sgn = 1.0 if normal @ down >= 0 else -1.0
        score = sgn * ((pts - c) @ normal)
    return pts[int(np.argmax(score))]
