"""Manipulation cues: copy-move (localised), and splice / in-paint (noise-residual inconsistency).

Copy-move, two detectors whose candidates share one verification:

* **Block matching** (translation; works where keypoints are few): every 8 x 8 window of the 640-px grey copy
  is described by its mean and five low-frequency DCT coefficients, quantised twice (two grids half a step
  apart) into hash keys; windows with equal keys are paired, pairs vote for their shift vector, and shifts
  with enough votes become candidates. Windows without texture (std < 5 grey levels) are left out: in flat
  paint everything matches everything.
* **Keypoints** (rotation and scale): SIFT keypoints of a 480-px copy matched against themselves with the
  generalised 2-nearest-neighbour test (g2NN), matches closer than the minimum shift dropped, isolated
  matches dropped (a copied region gives a bundle of matches whose sources and targets lie together), then
  RANSAC similarity transforms, up to six clusters. (ORB, used before, found half of the rotated copies of
  the blurry, upscaled suite content; SIFT at this size finds most and costs ~50 ms.)
* **Verification** (both): for a candidate transform T, the dense difference |I(x) - I(T x)| is computed,
  smoothed, and the pixels where it is small, that are textured and that lie near the supporting matches
  form the copied region; T maps it to the pasted one. A candidate is kept when the region is large enough
  (>= 0.25 % of the picture), does not overlap its own copy much (a periodic texture - a grille, a fence -
  matches itself shifted by one period), stops matching when T slides 4 px (an edge along itself), does not
  continue one more step (rows of printed characters), and shares its sensor noise with its source.
* **Score**: a logistic on the kept candidate's evidence (support, region size, dense similarity, one piece,
  continuation, slide, detector), fitted on the calibration split (``SCORE_WEIGHTS``). A candidate that fails
  the slide or the noise gate only by a little is *weak*: it gets a capped score below the operating
  threshold (ranking only, never a finding).

Splice / in-paint: the noise floor of each cell (mean |Immerkaer residual| at native resolution, the 25th
percentile of 8 x 8 sub-cells, so edges do not count) is compared with the rest of the photo among cells of
similar brightness; a compact group of cells whose noise is far off (a pasted region from another camera, a
region smoothed by in-painting) raises the splice score. This cue is weak on denoised phone photos and on
generative in-painting that synthesises noise: it is calibrated to stay quiet (false alarms <= 1 % on the
generated authentic photos), so it misses much (see docs/integrity.md).

Cost on a 12 MP photo: the 640-px grey copy (shared), ~70-90 ms for copy-move (SIFT ~50) and ~40 ms for the native-
resolution residual; independent of the size otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

if TYPE_CHECKING:
    from claimlens.vision.decode import DecodedPhoto

WORK_SIDE = 640
BLOCK = 8
MIN_BLOCK_STD = 5.0
MAX_COHERENCE = 0.75  # windows with one dominant gradient direction (straight edges) are not matched
MIN_VOTES = 8
MAX_SLIDE_MATCH = 0.5  # share of a region still matching when the transform slides 4 px
MAX_CONTINUATION = 0.35  # share of a region that still matches one more step along the transform
MAX_NOISE_RATIO = 1.22  # residual difference / residual size; ~1.41 for independent noise
# A candidate that fails the slide or the noise gate by a little (up to these) is "weak": its score, capped at
# WEAK_SCORE_CAP ** 2 (below the operating threshold), ranks the photo above ones with no candidate at all
# (a subpixel-shifted copy decorrelates part of its noise; blurry content slides), but raises no finding.
WEAK_SLIDE_MATCH = 0.7
WEAK_NOISE_RATIO = 1.6
WEAK_SCORE_CAP = 0.75
MAX_BUCKET = 6  # keys shared by more windows are texture, not a copy
MIN_REGION_FRAC = 0.0025  # copied region at least 0.25 % of the picture
MAX_SELF_OVERLAP = 0.25

# Operating thresholds on the scores (docs/integrity.md: chosen on the calibration split so that <= 1 % of
# authentic generated photos, and <= 2 % of the real damage photos, are flagged).
# Copy-move: chosen on the dev half of the real genuine photos (docs/integrity.md, "False-alarm budget"):
# on 610 genuine dev photos the copy-move score reached 0.97 once (a periodic wallpaper), then 0.87, 0.86, ...
COPY_MOVE_THRESHOLD = 0.87  # LOW from here
COPY_MOVE_MEDIUM = 0.9  # MEDIUM from here (HIGH: checks.integrity.COPY_MOVE_HIGH)
# Splice: the noise-floor cue scores 1.0 on >= 10 of 610 genuine dev photos and ranks CASIA splices at chance
# (AUC 0.56): it raises no finding (None); its score and region stay in the analysis data for sorting.
SPLICE_THRESHOLD: float | None = None


@dataclass
class CopyMoveRegion:
    transform: list[list[float]]  # 2x3 affine source -> target, in work-image pixels
    source_box: tuple[int, int, int, int]  # x1, y1, x2, y2 in original-image pixels
    target_box: tuple[int, int, int, int]
    area_fraction: float  # of the picture, source + target
    support: int  # matched windows / keypoints behind the transform
    method: str  # "blocks" | "keypoints"
    noise_ratio: float | None  # residual difference between copy and source over residual size
    rotation_deg: float
    scale: float

    def to_json(self) -> dict[str, Any]:
        return {"transform": [[round(v, 4) for v in row] for row in self.transform],
                "source_box": list(self.source_box), "target_box": list(self.target_box),
                "area_fraction": round(self.area_fraction, 5), "support": self.support, "method": self.method,
                "rotation_deg": round(self.rotation_deg, 1), "scale": round(self.scale, 3),
                "noise_ratio": None if self.noise_ratio is None else round(self.noise_ratio, 3)}


@dataclass
class TamperResult:
    copy_move_score: float
    splice_score: float
    regions: list[CopyMoveRegion] = field(default_factory=list)
    copy_move_mask: np.ndarray | None = field(default=None, repr=False)  # work res, 1 = source, 2 = target
    splice_map: np.ndarray | None = field(default=None, repr=False)  # work res, 0..1 anomaly
    splice: dict[str, Any] = field(default_factory=dict)
    work_shape: tuple[int, int] = (0, 0)

    @property
    def score(self) -> float:
        return max(self.copy_move_score, self.splice_score)

    def mask(self) -> np.ndarray:
        """Binary tampering mask at work resolution (copy-move source+target, or the splice map)."""
        h, w = self.work_shape
        m = np.zeros((h, w), bool)
        if self.copy_move_mask is not None and self.copy_move_score >= COPY_MOVE_THRESHOLD:
            m |= self.copy_move_mask > 0
        if self.splice_map is not None and SPLICE_THRESHOLD is not None and self.splice_score >= SPLICE_THRESHOLD:
            m |= self.splice_map >= 0.5
        return m

    def heatmap(self) -> np.ndarray:
        """0..1 tampering likelihood at work resolution (for pixel-level metrics and overlays)."""
        h, w = self.work_shape
        out = np.zeros((h, w), np.float32)
        if self.copy_move_mask is not None:
            out = np.maximum(out, (self.copy_move_mask > 0).astype(np.float32) * self.copy_move_score)
        if self.splice_map is not None:
            out = np.maximum(out, self.splice_map * self.splice_score)
        return out

    def to_json(self) -> dict[str, Any]:
        return {"copy_move_score": round(self.copy_move_score, 4), "splice_score": round(self.splice_score, 4),
                "regions": [r.to_json() for r in self.regions], "splice": self.splice,
                "work_size": [self.work_shape[1], self.work_shape[0]]}


# ---------------------------------------------------------------------------------------- block matching


def _dct_kernels(b: int) -> list[np.ndarray]:
    x = np.arange(b)
    c = [np.cos(np.pi * (2 * x + 1) * u / (2 * b)) for u in range(3)]
    c = [v / np.linalg.norm(v) for v in c]
    pairs = [(0, 1), (1, 0), (1, 1), (0, 2), (2, 0)]
    return [np.outer(c[u], c[v]).astype(np.float32) for u, v in pairs]


_KERNELS = _dct_kernels(BLOCK)


def _block_candidates(g: np.ndarray, min_shift: float) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """Candidate shifts from block matching: [(shift (dy, dx), source positions (N, 2) as (y, x), votes)]."""
    f = g.astype(np.float32)
    h, w = f.shape
    vh, vw = h - BLOCK + 1, w - BLOCK + 1
    box = (BLOCK, BLOCK)

    def window_mean(a: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(a, -1, box, anchor=(0, 0), normalize=True, borderType=cv2.BORDER_CONSTANT)[:vh, :vw]

    mean = window_mean(f)
    std = np.sqrt(np.maximum(window_mean(f * f) - mean * mean, 0))
    # edge-like windows (one dominant gradient direction) match themselves shifted along the edge: skip them
    gx = cv2.Sobel(f, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(f, cv2.CV_32F, 0, 1, ksize=3)
    jxx, jyy, jxy = window_mean(gx * gx), window_mean(gy * gy), window_mean(gx * gy)
    coherence = np.sqrt((jxx - jyy) ** 2 + 4 * jxy * jxy) / (jxx + jyy + 1e-3)
    textured = (std >= MIN_BLOCK_STD) & (coherence < MAX_COHERENCE)
    ys, xs = np.nonzero(textured)
    if ys.size < 50:
        return []
    cols = [mean[ys, xs] * 0.25]
    for k in _KERNELS:
        cols.append(cv2.filter2D(f, -1, k, anchor=(0, 0), borderType=cv2.BORDER_CONSTANT)[ys, xs] * 0.1)
    feats = np.stack(cols, 1) + 256.0  # all positive: astype truncation == floor
    pos = np.stack([ys, xs], 1).astype(np.int32)
    weights = (1 << (9 * np.arange(feats.shape[1] - 1, -1, -1))).astype(np.int64)
    shifts_d, shifts_src = [], []
    for offset in (0.0, 0.5):
        key = (feats + offset).astype(np.int64) @ weights
        order = np.argsort(key)
        ks = key[order]
        change = np.flatnonzero(ks[1:] != ks[:-1]) + 1
        starts = np.concatenate([[0], change])
        sizes = np.diff(np.concatenate([starts, [len(ks)]]))
        size_of = np.repeat(sizes, sizes)
        ok = (ks[1:] == ks[:-1]) & (size_of[1:] <= MAX_BUCKET)
        a, b = order[:-1][ok], order[1:][ok]
        d = pos[b] - pos[a]
        flip = (d[:, 0] < 0) | ((d[:, 0] == 0) & (d[:, 1] < 0))
        d[flip] *= -1
        src = np.where(flip[:, None], pos[b], pos[a])
        far = (d[:, 0].astype(np.float32) ** 2 + d[:, 1].astype(np.float32) ** 2) >= min_shift ** 2
        shifts_d.append(d[far])
        shifts_src.append(src[far])
    d = np.concatenate(shifts_d)
    src = np.concatenate(shifts_src)
    if len(d) == 0:
        return []
    code = (d[:, 0].astype(np.int64) + h) * (2 * w + 1) + (d[:, 1] + w)
    order = np.argsort(code)
    cs = code[order]
    change = np.flatnonzero(cs[1:] != cs[:-1]) + 1
    starts = np.concatenate([[0], change])
    counts = np.diff(np.concatenate([starts, [len(cs)]]))
    top = np.argsort(-counts)[:12]
    out: list[tuple[np.ndarray, np.ndarray, int]] = []
    taken: list[np.ndarray] = []
    for t in top:
        if counts[t] < MIN_VOTES:
            break
        dy, dx = divmod(int(cs[starts[t]]), 2 * w + 1)
        shift = np.array([dy - h, dx - w])
        if any(np.abs(shift - s_).max() <= 2 for s_ in taken):
            continue
        taken.append(shift)
        near = (np.abs(d[:, 0] - shift[0]) <= 1) & (np.abs(d[:, 1] - shift[1]) <= 1)
        out.append((shift, src[near], int(near.sum())))
        if len(out) >= 4:
            break
    return out


# ------------------------------------------------------------------------------------------- keypoints

_SIFT = None
KP_SIDE = 480  # keypoints on a copy with this long side (the 640-px copy reduced: SIFT doubles its first octave)
KP_RATIO = 0.8  # g2NN: keep the k-th match while d_k / d_(k+1) < this
KP_MIN_INLIERS = 5
KP_CLUSTERS = 6
KP_NEIGHBOUR_RADIUS = 48.0  # work pixels
KP_MIN_NEIGHBOURS = 2


def _sift():  # type: ignore[no-untyped-def]
    global _SIFT
    if _SIFT is None:
        _SIFT = cv2.SIFT_create(nfeatures=1500, contrastThreshold=0.01)
    return _SIFT


def _keypoint_candidates(g: np.ndarray, min_shift: float) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """Candidate affine transforms (2x3, source -> target, work pixels) with their inlier source points (N, 2)
    as (x, y): SIFT keypoints of a reduced copy matched against themselves with the generalised 2-nearest-
    neighbour test (g2NN: every match k kept while d_k < ratio * d_(k+1), so a region copied twice yields
    both), matches closer than ``min_shift`` dropped, then RANSAC similarity transforms, up to
    ``KP_CLUSTERS`` clusters (each found cluster and its reversed twins removed before the next)."""
    s = min(1.0, KP_SIDE / max(g.shape))
    gs = cv2.resize(g, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1.0 else g
    kps, des = _sift().detectAndCompute(gs, None)
    if des is None or len(kps) < 20:
        return []
    pts = np.float32([k.pt for k in kps])
    knn = cv2.BFMatcher(cv2.NORM_L2).knnMatch(des, des, k=5)
    k = 5
    idx = np.full((len(kps), k), -1, np.int64)
    dist = np.full((len(kps), k), np.inf, np.float32)
    for i, ms in enumerate(knn):
        for c, m in enumerate(ms):
            idx[i, c], dist[i, c] = m.trainIdx, m.distance
    valid = idx >= 0
    far_self = np.zeros_like(valid)
    far_self[valid] = np.hypot(*(pts[idx[valid]] - np.repeat(pts, k, 0).reshape(-1, k, 2)[valid]).T) > 3
    # drop the self match (and keypoints at the same place: SIFT repeats a point with two orientations)
    order = np.argsort(~far_self, axis=1, kind="stable")
    idx = np.take_along_axis(np.where(far_self, idx, -1), order, 1)
    dist = np.take_along_axis(np.where(far_self, dist, np.inf), order, 1)
    nxt = np.concatenate([dist[:, 1:], np.full((len(kps), 1), np.inf, np.float32)], 1)
    ok = np.cumprod(dist < KP_RATIO * nxt, axis=1).astype(bool) & (idx >= 0)
    ii, cc = np.nonzero(ok)
    jj = idx[ii, cc]
    A, B = pts[ii], pts[jj]
    far = np.hypot(*(A - B).T) >= min_shift * s
    keep = far & (ii < jj)
    pairs = {(int(a), int(b)) for a, b in zip(ii[keep], jj[keep])}
    pairs |= {(int(b), int(a)) for a, b in zip(ii[far & (ii > jj)], jj[far & (ii > jj)])}
    if len(pairs) < KP_MIN_INLIERS:
        return []
    pa = np.array(sorted(pairs))
    A, B = pts[pa[:, 0]], pts[pa[:, 1]]
    # a copied region gives a bundle of matches (sources together, targets together); a chance match of
    # two look-alike corners is alone: keep pairs with at least KP_MIN_NEIGHBOURS such neighbours
    if len(A) > 1:
        r2 = (KP_NEIGHBOUR_RADIUS * s) ** 2

        def d2(P: np.ndarray, Q: np.ndarray) -> np.ndarray:
            return ((P[:, None, :] - Q[None, :, :]) ** 2).sum(-1)

        near = ((d2(A, A) < r2) & (d2(B, B) < r2)) | ((d2(A, B) < r2) & (d2(B, A) < r2))
        coherent = near.sum(1) - 1 >= KP_MIN_NEIGHBOURS
        A, B = A[coherent], B[coherent]
        if len(A) < KP_MIN_INLIERS:
            return []
    # both orientations: RANSAC picks one transform, the reversed pairs are its outliers
    src, dst = np.concatenate([A, B]), np.concatenate([B, A])
    out = []
    for _ in range(KP_CLUSTERS):
        if len(src) < KP_MIN_INLIERS:
            break
        M, inl = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=2.5,
                                             maxIters=2000, confidence=0.995, refineIters=10)
        if M is None:
            break
        inl = inl.ravel().astype(bool)
        n_in = int(inl.sum())
        if n_in < KP_MIN_INLIERS:
            break
        scale = math.hypot(M[0, 0], M[1, 0])
        if 0.6 < scale < 1.6 and math.hypot(M[0, 2], M[1, 2]) > 1:
            W = M.astype(np.float64).copy()
            W[:, 2] /= s  # to work-image pixels
            out.append((W, src[inl] / s, n_in))
        # drop the inliers and their reversed twins before looking for another cluster
        drop = inl | np.concatenate([inl[len(A):], inl[:len(A)]])
        src, dst = src[~drop], dst[~drop]
    return out


# ---------------------------------------------------------------------------------------- verification


def _verify(g: np.ndarray, M: np.ndarray, seeds_xy: np.ndarray, seed_radius: int,
            local_std: np.ndarray) -> tuple[np.ndarray, np.ndarray, float] | None:
    """Dense check of transform M (2x3, source -> target): (source mask, target mask, mean similarity)."""
    h, w = g.shape
    f = g.astype(np.float32)
    # with WARP_INVERSE_MAP, dst(x) = src(M x): the pixel each source pixel was copied to
    fwd = cv2.warpAffine(f, M, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=-1000)
    diff = np.abs(f - fwd)
    diff = cv2.blur(diff, (5, 5))
    tol = 4.0 + 0.15 * local_std
    similar = (diff < tol) & (local_std >= 2.5) & (fwd > -500)
    seed = np.zeros((h, w), np.uint8)
    sx, sy = seeds_xy[:, 0].astype(int), seeds_xy[:, 1].astype(int)
    inside = (sx >= 0) & (sx < w) & (sy >= 0) & (sy < h)
    seed[sy[inside], sx[inside]] = 1
    near = cv2.dilate(seed, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * seed_radius + 1,) * 2))
    region = (similar & (near > 0)).astype(np.uint8)
    region = cv2.morphologyEx(region, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))  # no thin strips
    region = cv2.morphologyEx(region, cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8))
    n, lab, stats, _ = cv2.connectedComponentsWithStats(region, connectivity=8)
    if n <= 1:
        return None
    keep = np.zeros(n, bool)
    min_px = MIN_REGION_FRAC * h * w / 2
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_px / 3
    src = keep[lab].astype(np.uint8)
    if src.sum() < min_px:
        return None
    dst = cv2.warpAffine(src, M, (w, h), flags=cv2.INTER_NEAREST)
    sim = float(1.0 - np.clip(diff[src > 0] / (tol[src > 0] + 1e-6), 0, 1).mean())
    return src, dst, sim


def _slides(f: np.ndarray, M: np.ndarray, src: np.ndarray, local_std: np.ndarray) -> float:
    """Largest share of the source region that still matches after sliding M by 4 px along / across its
    shift (1.0 for an edge sliding along itself, low for a true copy)."""
    h, w = f.shape
    ys, xs = np.nonzero(src)
    if ys.size == 0:
        return 1.0
    x0, x1, y0, y1 = max(0, xs.min() - 8), min(w, xs.max() + 9), max(0, ys.min() - 8), min(h, ys.max() + 9)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    tx = M[0, 0] * cx + M[0, 1] * cy + M[0, 2] - cx
    ty = M[1, 0] * cx + M[1, 1] * cy + M[1, 2] - cy
    n = math.hypot(tx, ty) or 1.0
    ux, uy = tx / n, ty / n
    sub = src[y0:y1, x0:x1] > 0
    tol = 4.0 + 0.15 * local_std[y0:y1, x0:x1]
    worst = 0.0
    for dx, dy in ((4 * ux, 4 * uy), (-4 * ux, -4 * uy), (-4 * uy, 4 * ux), (4 * uy, -4 * ux)):
        M2 = M.copy()
        M2[0, 2] += dx
        M2[1, 2] += dy
        # shift the map so the crop's origin is (x0, y0): dst(x) = f(M2 (x + o))
        M2c = M2.copy()
        M2c[:, 2] += M2[:, :2] @ np.array([x0, y0], np.float64)
        moved = cv2.warpAffine(f, M2c, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=-1000)
        diff = cv2.blur(np.abs(f[y0:y1, x0:x1] - moved), (5, 5))
        worst = max(worst, float((diff[sub] < tol[sub]).mean()))
    return worst


def _match_fraction(f: np.ndarray, A: np.ndarray, B: np.ndarray, mask: np.ndarray, local_std: np.ndarray) -> float:
    """Share of ``mask`` pixels x where f(A x) ~ f(B x) (A, B: 2x3 affine maps)."""
    h, w = f.shape
    fa = cv2.warpAffine(f, A, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                        borderMode=cv2.BORDER_CONSTANT, borderValue=-1000)
    fb = cv2.warpAffine(f, B, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                        borderMode=cv2.BORDER_CONSTANT, borderValue=-3000)
    diff = cv2.blur(np.abs(fa - fb), (5, 5))
    sel = mask > 0
    tol = 4.0 + 0.15 * local_std
    return float((diff[sel] < tol[sel]).mean()) if sel.any() else 0.0


def _compose(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """2x3 affine A o B (apply B first)."""
    A3 = np.vstack([A, [0, 0, 1]])
    B3 = np.vstack([B, [0, 0, 1]])
    return (A3 @ B3)[:2]


def _continues(f: np.ndarray, M: np.ndarray, src: np.ndarray, local_std: np.ndarray) -> float:
    """How much of the copy relation continues one step further on either side: f(M x) ~ f(M M x) over the
    source region, or f(x) ~ f(M^-1 x). High for periodic patterns, low for a copy-move."""
    ident = np.array([[1, 0, 0], [0, 1, 0]], np.float64)
    forward = _match_fraction(f, M, _compose(M, M), src, local_std)
    backward = _match_fraction(f, ident, cv2.invertAffineTransform(M), src, local_std)
    return max(forward, backward)


def _noise_ratio(f: np.ndarray, M: np.ndarray, src: np.ndarray) -> float | None:
    """Do source and copy share their *noise*? Mean |r(x) - r(M x)| over mean |r| for the high-pass residual
    r in the smoother pixels of the (dilated) region: ~sqrt(2) for two separately photographed look-alike
    objects (independent sensor noise), well below 1 for pixels copied with their noise. None when the
    region has no usable smooth pixels (denoised or fully textured)."""
    h, w = f.shape
    res = f - cv2.GaussianBlur(f, (0, 0), 1.0)
    moved = cv2.warpAffine(res, M, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    region = cv2.dilate(src, np.ones((9, 9), np.uint8)) > 0
    grad = cv2.blur(np.abs(cv2.Laplacian(cv2.GaussianBlur(f, (0, 0), 1.5), cv2.CV_32F)), (5, 5))
    sel = region & (grad < np.percentile(grad[region], 50)) if region.any() else region
    if sel.sum() < 50:
        return None
    mag = 0.5 * (np.abs(res[sel]).mean() + np.abs(moved[sel]).mean())
    if mag < 0.3:
        return None
    return float(np.abs(res[sel] - moved[sel]).mean() / mag)


def _affine_params(M: np.ndarray) -> tuple[float, float]:
    return math.degrees(math.atan2(M[1, 0], M[0, 0])), math.hypot(M[0, 0], M[1, 0])


# Candidate score: a logistic on the verified candidate's evidence, fitted (L2 = 3, Newton) on the calibration
# split of the generated suite: candidates of authentic photos (negatives) vs candidates that land on the
# forged region (positives), among those passing the gates above (docs/integrity.md, "Copy-move score").
SCORE_BIAS = -4.09
SCORE_WEIGHTS = {"log_support": 0.28, "log_area": 0.99, "similarity": 6.16, "largest_piece": 1.99,
                 "continuation": -10.62, "slide": 0.56, "keypoints": -1.08}


def _candidate_score(support: int, area: float, sim: float, largest: float, continuation: float, slide: float,
                     method: str) -> float:
    w = SCORE_WEIGHTS
    z = (SCORE_BIAS + w["log_support"] * math.log(max(support, 1)) + w["log_area"] * math.log(area / MIN_REGION_FRAC)
         + w["similarity"] * sim + w["largest_piece"] * largest + w["continuation"] * continuation
         + w["slide"] * slide + w["keypoints"] * (method == "keypoints"))
    return 1.0 / (1.0 + math.exp(-z))


def detect_copy_move(g: np.ndarray, scale_to_original: float) -> tuple[float, list[CopyMoveRegion], np.ndarray]:
    """(score 0..1, regions, label mask 1 = source / 2 = target) on a grey work image."""
    h, w = g.shape
    min_shift = max(12.0, 0.04 * max(h, w))
    f = g.astype(np.float32)
    mu = cv2.blur(f, (7, 7))
    local_std = np.sqrt(np.maximum(cv2.blur(f * f, (7, 7)) - mu * mu, 0))
    candidates: list[tuple[np.ndarray, np.ndarray, int, str]] = []
    for shift, src_pos, votes in _block_candidates(g, min_shift):
        M = np.array([[1, 0, shift[1]], [0, 1, shift[0]]], np.float64)
        seeds = src_pos[:, ::-1].astype(np.float32) + BLOCK / 2  # (x, y) window centres
        candidates.append((M, seeds, votes, "blocks"))
    for M, seeds, n_in in _keypoint_candidates(g, min_shift):
        candidates.append((M, seeds, n_in, "keypoints"))
    label = np.zeros((h, w), np.uint8)
    regions: list[CopyMoveRegion] = []
    best = 0.0
    for M, seeds, support, method in candidates:
        res = _verify(g, M, seeds, seed_radius=BLOCK * 2 if method == "blocks" else 14, local_std=local_std)
        if res is None:
            continue
        src, dst, sim = res
        a_src, a_dst = int(src.sum()), int(dst.sum())
        overlap = int((src & dst).sum()) / max(1, min(a_src, a_dst))
        if overlap > MAX_SELF_OVERLAP:
            continue  # periodic texture
        # an edge (or a stripe pattern) matches itself shifted along its direction: a copy matches at
        # exactly one offset, so the region must stop matching when the transform slides a few pixels
        slide = _slides(f, M, src, local_std)
        if slide > WEAK_SLIDE_MATCH:
            continue
        weak = slide > MAX_SLIDE_MATCH
        # a periodic pattern (frit dots, a grille, rows of printed characters) goes on matching one more
        # period further; a copied region does not
        cont = _continues(f, M, src, local_std)
        if cont > MAX_CONTINUATION:
            continue
        if ((label > 0) & (src > 0)).sum() > 0.5 * a_src:
            continue  # the same region found by the other detector
        # pixels copied carry their sensor noise along; two look-alike objects photographed apart do not
        nr = _noise_ratio(f, M, src)
        if nr is not None and nr > WEAK_NOISE_RATIO:
            continue
        weak |= nr is not None and nr > MAX_NOISE_RATIO
        # a copied region is one piece; repeated printed characters are many small ones
        n_cc, _, cc_stats, _ = cv2.connectedComponentsWithStats(src, connectivity=8)
        largest = float(cc_stats[1:, cv2.CC_STAT_AREA].max()) / a_src if n_cc > 1 else 0.0
        area = (a_src + a_dst) / (h * w)
        score = _candidate_score(support, area, sim, largest, cont, slide, method)
        if weak:
            # failed a gate by a little: kept as a ranking score below the operating threshold, never a finding
            best = max(best, min(score, WEAK_SCORE_CAP) * WEAK_SCORE_CAP)
            continue
        if score < 0.2:
            continue
        best = max(best, score)
        label[src > 0] = np.where(label[src > 0] == 0, 1, label[src > 0])
        label[dst > 0] = 2
        rot, sc = _affine_params(M)
        regions.append(CopyMoveRegion(
            transform=M.tolist(), source_box=_box(src, scale_to_original), target_box=_box(dst, scale_to_original),
            area_fraction=area, support=int(support), method=method, noise_ratio=nr, rotation_deg=rot, scale=sc))
    regions.sort(key=lambda r: -r.area_fraction)
    return best, regions, label


def _box(mask: np.ndarray, s: float) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return (0, 0, 0, 0)
    return (int(xs.min() * s), int(ys.min() * s), int((xs.max() + 1) * s), int((ys.max() + 1) * s))


# ------------------------------------------------------------------------------------ splice / in-paint

_IMMERKAER_INT = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)


def _native_luma(photo: DecodedPhoto) -> np.ndarray:
    if max(photo.height, photo.width) <= WORK_SIDE:
        return photo.gray(WORK_SIDE)
    return cv2.cvtColor(photo.rgb, cv2.COLOR_RGB2GRAY)


def detect_splice(photo: DecodedPhoto, work_shape: tuple[int, int]) -> tuple[float, np.ndarray, dict[str, Any]]:
    """Noise-floor inconsistency: (score 0..1, anomaly map 0..1 at work resolution, evidence)."""
    y = _native_luma(photo)
    H, W = y.shape
    # |Immerkaer residual| straight from uint8 (16-bit signed, then saturated to 8 bits: noise is far below)
    r = cv2.convertScaleAbs(cv2.filter2D(y, cv2.CV_16S, _IMMERKAER_INT))
    sub = 8
    gh, gw = H // sub, W // sub
    if gh < 16 or gw < 16:
        return 0.0, np.zeros(work_shape, np.float32), {}
    sub_noise = cv2.resize(r[:gh * sub, :gw * sub], (gw, gh), interpolation=cv2.INTER_AREA).astype(np.float32) \
        * (math.sqrt(math.pi / 2) / 6.0)
    sub_mean = cv2.resize(y[:gh * sub, :gw * sub], (gw, gh), interpolation=cv2.INTER_AREA).astype(np.float32)
    # cells: ~48 along the long side; noise floor = 25th percentile of the 8x8 sub-cells inside
    c = max(2, round(max(gh, gw) / 48))
    ch, cw = gh // c, gw // c
    blocks = sub_noise[:ch * c, :cw * c].reshape(ch, c, cw, c).transpose(0, 2, 1, 3).reshape(ch, cw, c * c)
    floor = np.percentile(blocks, 25, axis=2).astype(np.float32)
    bright = sub_mean[:ch * c, :cw * c].reshape(ch, c, cw, c).mean(axis=(1, 3))
    usable = (bright > 20) & (bright < 235)
    if usable.sum() < 30:
        return 0.0, np.zeros(work_shape, np.float32), {}
    lf = np.log(floor + 0.05)
    # expected noise given brightness: median of usable cells in 8 brightness bins
    bins = np.clip((bright / 32).astype(int), 0, 7)
    expected = np.full_like(lf, np.median(lf[usable]))
    for b_ in range(8):
        sel = usable & (bins == b_)
        if sel.sum() >= 10:
            expected[bins == b_] = np.median(lf[sel])
    dev = lf - expected
    spread = 1.4826 * np.median(np.abs(dev[usable])) + 0.05
    z = np.where(usable, dev / spread, 0.0)
    # anomalous cells, grouped; the strongest compact group sets the score
    anomalous = (np.abs(z) > 2.5).astype(np.uint8)
    anomalous = cv2.morphologyEx(anomalous, cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
    n, lab, stats, _ = cv2.connectedComponentsWithStats(anomalous, connectivity=4)
    best, best_i = 0.0, 0
    for i in range(1, n):
        area = stats[i, cv2.CC_STAT_AREA] / float(ch * cw)
        if area < 0.005 or area > 0.3:
            continue
        zi = float(np.abs(z[lab == i]).mean())
        sign = float(np.sign(z[lab == i].mean()))
        # compactness: a pasted/in-painted region is a blob, denoised flat areas are large and ragged
        bw_, bh_ = stats[i, cv2.CC_STAT_WIDTH], stats[i, cv2.CC_STAT_HEIGHT]
        fill = stats[i, cv2.CC_STAT_AREA] / float(bw_ * bh_)
        s = zi * (0.5 + fill) * (1.0 if sign < 0 else 0.8)
        if s > best:
            best, best_i = s, i
    score = 1.0 / (1.0 + math.exp(-(best - 6.0) * 1.2)) if best_i else 0.0
    amap = np.zeros((ch, cw), np.float32)
    if best_i:
        amap[lab == best_i] = 1.0
    heat = cv2.resize(amap, (work_shape[1], work_shape[0]), interpolation=cv2.INTER_LINEAR)
    ev = {"cells": [int(ch), int(cw)], "noise_spread": round(float(spread), 3), "strength": round(best, 3)}
    if best_i:
        x, y0, bw_, bh_ = (int(v) for v in stats[best_i, :4])
        sx, sy = W / cw, H / ch
        ev["region_box"] = [int(x * sx), int(y0 * sy), int((x + bw_) * sx), int((y0 + bh_) * sy)]
        ev["noise_ratio"] = round(float(np.exp(dev[lab == best_i].mean())), 3)
    return score, heat, ev


# -------------------------------------------------------------------------------------------- analysis


def analyse(photo: DecodedPhoto, *, splice: bool = True) -> TamperResult:
    g = photo.gray(WORK_SIDE)
    s = photo.height / g.shape[0]
    cm_score, regions, label = detect_copy_move(g, s)
    res = TamperResult(copy_move_score=cm_score, splice_score=0.0, regions=regions, copy_move_mask=label,
                       work_shape=g.shape)
    if splice:
        sp_score, sp_map, sp_ev = detect_splice(photo, g.shape)
        res.splice_score, res.splice_map, res.splice = sp_score, sp_map, sp_ev
    else:  # say so in the analysis data: a 0.0 there is "not measured", not "no sign of a splice"
        res.splice = {"computed": False}
    return res


def evidence_image(photo: DecodedPhoto, res: TamperResult, kind: str = "copy_move") -> bytes:
    """The photo with the tampering heatmap overlaid (copy-move: source green, target red, arrows)."""
    g = photo.gray(WORK_SIDE)
    base = cv2.cvtColor(g, cv2.COLOR_GRAY2BGR)
    if kind == "copy_move" and res.copy_move_mask is not None:
        over = base.copy()
        over[res.copy_move_mask == 1] = (0, 200, 0)
        over[res.copy_move_mask == 2] = (0, 0, 255)
        img = cv2.addWeighted(base, 0.55, over, 0.45, 0)
        s = g.shape[0] / photo.height
        for r in res.regions:
            a = ((r.source_box[0] + r.source_box[2]) / 2 * s, (r.source_box[1] + r.source_box[3]) / 2 * s)
            b = ((r.target_box[0] + r.target_box[2]) / 2 * s, (r.target_box[1] + r.target_box[3]) / 2 * s)
            cv2.arrowedLine(img, tuple(map(int, a)), tuple(map(int, b)), (255, 255, 0), 2, tipLength=0.05)
        caption = f"copy-move score {res.copy_move_score:.2f}: copied (green) -> pasted (red)"
    else:
        heat = np.clip((res.splice_map if res.splice_map is not None else np.zeros(g.shape)) * 255, 0, 255)
        img = cv2.addWeighted(base, 0.6, cv2.applyColorMap(heat.astype(np.uint8), cv2.COLORMAP_JET), 0.4, 0)
        caption = f"noise-inconsistency score {res.splice_score:.2f}"
    bar = np.full((26, img.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, caption[:80], (4, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    ok, buf = cv2.imencode(".jpg", np.vstack([bar, img]), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return buf.tobytes() if ok else b""
