"""Verify a candidate pair with local features and a geometric model; say what kind of copy it is.

Why a geometric check: the hash stage only says two photos look alike overall, which is also true of two
different photos of the same car model in the same workshop. A copy, however edited, keeps the *same*
keypoints in the *same* spatial arrangement up to one global transform; RANSAC finds that transform and the
number of keypoint matches consistent with it (inliers) is the evidence. Different photos of similar scenes
get a handful of chance inliers; copies get tens to hundreds.

The query is also matched mirrored (descriptor permutation, see :mod:`.features`), and the better of the two
models wins.

Scores: ``score`` is a logistic function of the inlier count and the dense agreement, fitted on a
calibration suite (seed 1 of the transform suite; the reported numbers use seed 0), so it reads as the
probability that the pair is a copy under that suite's mix of pairs. See :data:`SCORE_COEFFS` and
docs/duplicates.md.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import cv2
import numpy as np

from claimlens.vision.duplicates.features import LocalFeatures

RATIO = 0.8
"""Lowe's ratio test on RootSIFT distances."""

MIN_MATCHES = 5
"""Fewer tentative matches than this: no model is fitted, score 0."""

MIN_INLIERS = 6
"""Below this many inliers the score is 0 whatever the agreement (a model on 5 points proves little)."""

AGREEMENT_PRIOR_CELLS = 4.0
"""The agreement is shrunk towards 0.5 as if this many extra cells had been half in agreement, so an overlap
with one or two textured cells cannot carry a match on its own."""

SCORE_COEFFS = (-20.01, 4.37, 11.51)
"""score = sigmoid(a + b * ln(1 + inliers) + c * shrunk_agreement), for inliers >= MIN_INLIERS.

Fitted (class-balanced logistic regression, L2 1.0 on the slopes) on the seed-1 transform suite: all 11,804
positive pairs, the 34,215 hash-nearest negative pairs, and the 27 different-photo pairs of
car_damage_roboflow that share a stock-agency watermark (8-17 inliers, agreement < 0.4). Read as: at
agreement 1.0 a match needs 6 inliers, at 0.8 11, at 0.5 25, at 0.3 43. On that data, at 0.5: recall 0.988
of positive pairs, 0 false pairs."""

MIN_COVERAGE = 0.4
"""The overlap must cover at least this fraction of one of the two photos (a reused photo shows most of one
inside the other), unless the match has :data:`STRONG_INLIERS`. Measured on the seed-0 suite: the only false
matches at the shipped threshold were two different photos whose survey-app stamp bands (same text layout)
aligned, overlap 15-19 % of each; on the seed-1 suite every true match covers >= 80 % of one photo."""

STRONG_INLIERS = 40
"""Inliers above which a small overlap is still accepted (a large photo containing a small, sharp copy)."""

MATCH_SCORE = 0.5
"""A pair with ``score >= MATCH_SCORE`` is reported as a match (``VerifyResult.is_match``)."""

PERSPECTIVE_RECAPTURE = 0.035
"""Projective distortion above which a match is typed ``recaptured_suspected`` (a camera not square to a
screen). Measured on the seed-1 suite: recaptures median 0.091 (89 % above 0.035); affine edits (rotation,
crop, resize, screenshots) median <= 0.004, at most 3 % above."""

PARTIAL_COVERAGE = 0.8
"""A match whose overlap covers less than this fraction of either photo is ``partial_crop``."""

EXACT_MAX_DIFF = 0.5
"""Mean absolute grey difference of the aligned, blurred thumbnails up to which a geometric identity is
``exact``. Measured on 40 suite originals re-saved as JPEG: quality 90 and 75 differ by <= 0.16 (95th
percentile), quality 50 by 0.67-1.07, quality 20 by 1.34-1.88; colour edits far more. So ``exact`` means
"visually the same picture", and a quality-20 re-encode is a ``near_duplicate``."""

MATCH_TYPES = ("exact", "near_duplicate", "partial_crop", "mirrored", "recaptured_suspected")


@dataclass
class MatchTransform:
    """The transform that maps the query onto the matched photo (feature-image pixels scaled to photo pixels).

    Attributes:
        rotation_deg: counter-clockwise rotation of the query content needed to align it with the match.
        scale: matched-photo pixels per query pixel (at full photo resolution).
        mirrored: the query is a left-right mirror of the matched photo.
        perspective: projective distortion of the fitted homography (0 for affine maps).
        query_polygon, match_polygon: the overlap region in each photo, as [[x, y], ...] in photo pixels.
        query_coverage, match_coverage: fraction of each photo's area inside the overlap.
        homography: 3x3 query -> match, photo pixels (row-major), or None when only a similarity was fitted.
    """

    rotation_deg: float
    scale: float
    mirrored: bool
    perspective: float
    query_polygon: list[list[float]]
    match_polygon: list[list[float]]
    query_coverage: float
    match_coverage: float
    homography: list[list[float]] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("rotation_deg", "scale", "perspective", "query_coverage", "match_coverage"):
            d[k] = round(float(d[k]), 4)
        d["query_polygon"] = [[round(x, 1), round(y, 1)] for x, y in self.query_polygon]
        d["match_polygon"] = [[round(x, 1), round(y, 1)] for x, y in self.match_polygon]
        if self.homography is not None:
            d["homography"] = [[round(v, 6) for v in row] for row in self.homography]
        return d


@dataclass
class VerifyResult:
    """Outcome of verifying one (query, candidate) pair.

    Attributes:
        score: calibrated probability-like score in 0..1.
        is_match: ``score >= MATCH_SCORE``.
        inliers: matches consistent with the fitted model.
        tentative: matches that passed the ratio test (of the winning orientation).
        agreement: :func:`dense_agreement` of the aligned thumbnails (0.5 when not measurable).
        agreement_cells: textured overlap cells it was measured on.
        match_type: one of :data:`MATCH_TYPES` when ``is_match``, else None.
        transform: the model found (None when no model could be fitted).
        query_points, match_points: inlier positions (feature-image pixels) for the evidence picture.
    """

    score: float
    is_match: bool
    inliers: int
    tentative: int
    agreement: float = 0.0
    agreement_cells: int = 0
    mean_abs_diff: float = float("nan")
    match_type: str | None = None
    transform: MatchTransform | None = None
    query_points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32), repr=False)
    match_points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32), repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (without the point lists)."""
        return {
            "score": round(float(self.score), 4),
            "is_match": bool(self.is_match),
            "inliers": int(self.inliers),
            "tentative_matches": int(self.tentative),
            "dense_agreement": round(float(self.agreement), 3),
            "agreement_cells": int(self.agreement_cells),
            "match_type": self.match_type,
            "transform": None if self.transform is None else self.transform.to_dict(),
        }


def calibrated_score(inliers: int, agreement: float, cells: int = 100) -> float:
    """Map verification statistics to 0..1 (see :data:`SCORE_COEFFS`).

    Args:
        inliers: matches consistent with the geometric model.
        agreement: :func:`dense_agreement` fraction.
        cells: how many cells the agreement was measured on (few cells: shrunk towards 0.5).
    """
    if inliers < MIN_INLIERS:
        return 0.0
    shrunk = (agreement * cells + 0.5 * AGREEMENT_PRIOR_CELLS) / (cells + AGREEMENT_PRIOR_CELLS)
    a, b, c = SCORE_COEFFS
    z = a + b * math.log1p(inliers) + c * shrunk
    return 1.0 / (1.0 + math.exp(-z))


def ratio_matches(qd: np.ndarray, cd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices (query, candidate) of matches passing the ratio test, at most one per candidate keypoint.

    RootSIFT vectors have unit L2 norm, so squared distance = 2 - 2 * dot: one float32 matrix product
    (BLAS) replaces the brute-force matcher (measured 0.3 ms vs 2.8 ms for 340 x 346 descriptors).
    """
    if len(qd) < 2 or len(cd) < 2:
        return np.zeros(0, int), np.zeros(0, int)
    sim = qd @ cd.T
    rows = np.arange(len(qd))
    j1 = np.argmax(sim, axis=1)
    s1 = sim[rows, j1]
    sim[rows, j1] = -2.0
    s2 = sim.max(axis=1)
    d1 = np.sqrt(np.maximum(0.0, 2.0 - 2.0 * s1))
    d2 = np.sqrt(np.maximum(0.0, 2.0 - 2.0 * s2))
    ok = d1 < RATIO * d2
    qi, ci, dist = rows[ok], j1[ok], d1[ok]
    if len(qi) == 0:
        return qi, ci
    # keep the best match per candidate keypoint (many-to-one matches inflate RANSAC consensus)
    order = np.argsort(dist, kind="stable")
    _, first = np.unique(ci[order], return_index=True)
    keep = np.sort(order[first])
    return qi[keep], ci[keep]


def _fit_similarity(src: np.ndarray, dst: np.ndarray, thr: float) -> tuple[np.ndarray | None, np.ndarray]:
    if len(src) < 3:
        return None, np.zeros(len(src), bool)
    M, mask = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=thr,
                                          maxIters=2000, confidence=0.995, refineIters=10)
    if M is None or mask is None:
        return None, np.zeros(len(src), bool)
    return M, mask.reshape(-1).astype(bool)


def _poly_area(poly: np.ndarray) -> float:
    if poly is None or len(poly) < 3:
        return 0.0
    return float(abs(cv2.contourArea(poly.astype(np.float32))))


def _clip_to_rect(poly: np.ndarray, w: float, h: float) -> np.ndarray:
    """Sutherland-Hodgman clip of a polygon to [0, w] x [0, h] (exact on shared edges, unlike
    ``cv2.intersectConvexConvex``, which returns a sliver for two identical rectangles)."""
    pts = [tuple(p) for p in poly.tolist()]
    for axis, bound, keep_le in ((0, 0.0, False), (0, w, True), (1, 0.0, False), (1, h, True)):
        if not pts:
            break

        def inside(p: tuple[float, float], axis: int = axis, bound: float = bound, keep_le: bool = keep_le) -> bool:
            return p[axis] <= bound + 1e-6 if keep_le else p[axis] >= bound - 1e-6

        out: list[tuple[float, float]] = []
        for k, cur in enumerate(pts):
            prev = pts[k - 1]
            if inside(cur):
                if not inside(prev):
                    out.append(_cross(prev, cur, axis, bound))
                out.append(cur)
            elif inside(prev):
                out.append(_cross(prev, cur, axis, bound))
        pts = out
    return np.asarray(pts, np.float64).reshape(-1, 2)


def _cross(a: tuple[float, float], b: tuple[float, float], axis: int, bound: float) -> tuple[float, float]:
    t = (bound - a[axis]) / ((b[axis] - a[axis]) or 1e-12)
    return (a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]))


def _overlap(H: np.ndarray, qsize: tuple[int, int], csize: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Overlap polygons (query coords, candidate coords) of the two image rectangles under H (query->cand)."""
    qw, qh = qsize
    cw, ch = csize
    empty = np.zeros((0, 2), np.float32)
    qrect = np.float64([[0, 0], [qw, 0], [qw, qh], [0, qh]])
    try:
        Hinv = np.linalg.inv(H)
    except np.linalg.LinAlgError:
        return empty, empty
    q_in_c = cv2.perspectiveTransform(qrect[None], H)[0]
    if not cv2.isContourConvex(q_in_c.astype(np.float32)):
        return empty, empty
    cpoly = _clip_to_rect(q_in_c, float(cw), float(ch))
    if len(cpoly) < 3:
        return empty, empty
    qpoly = cv2.perspectiveTransform(cpoly[None], Hinv)[0]
    return qpoly.astype(np.float32), cpoly.astype(np.float32)


def view_perspective(H: np.ndarray, w: int, h: int) -> float:
    """Projective distortion: how much the homography's denominator varies over the query image."""
    Hn = H / H[2, 2]
    return float(math.hypot(Hn[2, 0] * w, Hn[2, 1] * h))


def dense_agreement(query: LocalFeatures, candidate: LocalFeatures, H: np.ndarray,
                    grid: int = 8) -> tuple[float, int, float]:
    """Fraction of textured cells of the overlap where the aligned thumbnails correlate.

    Why: keypoint inliers can come from content the two photos share without being copies: the same app's
    status bar and buttons around two different screenshotted photos, the same survey-app stamp or logo.
    Aligning the candidate onto the query with the fitted model and comparing the pictures cell by cell
    (normalised cross-correlation of lightly blurred grey thumbnails, so colour edits, gamma and moire do
    not matter) separates "the whole overlap agrees" (a copy) from "only the chrome agrees".

    Args:
        query, candidate: features with thumbnails; ``query`` already mirrored when the model is.
        H: 3x3 map from query feature-image pixels to candidate feature-image pixels.
        grid: cells per side of the query thumbnail.

    Returns:
        (agreement in 0..1, number of textured overlap cells compared, mean absolute grey difference over the
        overlap); (0.5, 0, nan) when there is nothing to compare (no thumbnails, or no textured overlap).
    """
    if query.thumb is None or candidate.thumb is None:
        return 0.5, 0, float("nan")
    qt, ct = query.thumb, candidate.thumb
    qh, qw = qt.shape
    ch, cw = ct.shape
    Sq = np.diag([qw / float(query.width), qh / float(query.height), 1.0])
    Sc = np.diag([cw / float(candidate.width), ch / float(candidate.height), 1.0])
    Ht = Sc @ H @ np.linalg.inv(Sq)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    warped = cv2.warpPerspective(ct, Ht, (qw, qh), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    valid = cv2.warpPerspective(np.full_like(ct, 255), Ht, (qw, qh), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    a = cv2.GaussianBlur(qt.astype(np.float32), (0, 0), 1.0)
    b = cv2.GaussianBlur(warped.astype(np.float32), (0, 0), 1.0)
    v = (valid > 0).astype(np.float32)
    ys = np.linspace(0, qh, grid + 1).astype(int)[:-1]
    xs = np.linspace(0, qw, grid + 1).astype(int)[:-1]

    def cell_sum(img: np.ndarray) -> np.ndarray:
        return np.add.reduceat(np.add.reduceat(img, ys, axis=0), xs, axis=1)

    cnt = cell_sum(np.ones_like(a))
    nv = cell_sum(v)
    sa, sb = cell_sum(a), cell_sum(b)
    saa, sbb, sab = cell_sum(a * a), cell_sum(b * b), cell_sum(a * b)
    ma, mb = sa / cnt, sb / cnt
    va = np.maximum(saa / cnt - ma * ma, 0.0)
    vb = np.maximum(sbb / cnt - mb * mb, 0.0)
    cov = sab / cnt - ma * mb
    std_a, std_b = np.sqrt(va), np.sqrt(vb)
    # cells inside the overlap, large enough, textured in at least one picture (flat in both = no evidence)
    usable = (nv >= 0.9 * cnt) & (cnt >= 9) & ((std_a >= 4.0) | (std_b >= 4.0))
    total = int(usable.sum())
    mad = float(np.abs(a - b)[v > 0].mean()) if v.any() else float("nan")
    if total == 0:
        return 0.5, 0, mad
    ncc = cov / np.maximum(std_a * std_b, 1e-6)
    agree = usable & (std_a >= 1.0) & (std_b >= 1.0) & (ncc > 0.5)
    return float(agree.sum()) / total, total, mad


def verify(query: LocalFeatures, candidate: LocalFeatures, *, allow_mirror: bool = True,
           query_root: tuple[np.ndarray, np.ndarray] | None = None,
           candidate_root: np.ndarray | None = None) -> VerifyResult:
    """Verify that ``query`` shows (part of) the same picture as ``candidate``.

    Steps: RootSIFT ratio-test matches (query as is, and mirrored), a RANSAC similarity model on each, the
    orientation with more inliers wins; a homography refit on the inliers gives the overlap polygons and the
    perspective; the dense agreement of the aligned thumbnails (:func:`dense_agreement`) rejects matches
    carried by shared UI chrome or stamps. The score combines inliers and agreement.

    Args:
        query, candidate: features of the two photos (from :func:`.features.extract_features`).
        allow_mirror: also try the mirrored query.
        query_root: precomputed :func:`root_pair` of the query (verifying one query against many).
        candidate_root: precomputed RootSIFT of the candidate.

    Returns:
        A :class:`VerifyResult`; ``transform`` maps the query onto the candidate (photo pixels).

    Example:
        >>> r = verify(extract_features(gray_a), extract_features(gray_b))
        >>> r.is_match, r.match_type, r.transform.rotation_deg  # doctest: +SKIP
        (True, 'near_duplicate', 90.0)
    """
    empty = VerifyResult(score=0.0, is_match=False, inliers=0, tentative=0)
    if len(query) < MIN_MATCHES or len(candidate) < MIN_MATCHES:
        return empty
    if query_root is None:
        query_root = root_pair(query)
    cr = candidate.root() if candidate_root is None else candidate_root
    cdiag = math.hypot(candidate.width, candidate.height)
    thr = max(2.5, 0.012 * cdiag)

    best: tuple[int, bool, np.ndarray, np.ndarray, np.ndarray, int] | None = None
    variants = [(False, query_root[0])] + ([(True, query_root[1])] if allow_mirror else [])
    for mirrored, qd in variants:
        qi, ci = ratio_matches(qd, cr)
        if len(qi) < MIN_MATCHES:
            continue
        qxy = query.xy[qi].copy()
        if mirrored:
            qxy[:, 0] = (query.width - 1) - qxy[:, 0]
        cxy = candidate.xy[ci]
        M, inl = _fit_similarity(qxy, cxy, thr)
        if M is None:
            continue
        n_in = int(inl.sum())
        s = math.hypot(M[0, 0], M[1, 0])
        if not (1 / 12 <= s <= 12):
            n_in = 0
        if best is None or n_in > best[0]:
            best = (n_in, mirrored, M, qxy[inl], cxy[inl], len(qi))
    if best is None or best[0] < 3:
        return empty
    n_in, mirrored, M, qin, cin, n_tent = best

    # homography on the similarity inliers when well supported (perspective, overlap polygons)
    H = np.vstack([M, [0.0, 0.0, 1.0]])
    homography_used = False
    if n_in >= 12:
        Hh, hmask = cv2.findHomography(qin, cin, cv2.RANSAC, thr)
        if Hh is not None and hmask is not None and int(hmask.sum()) >= 0.8 * n_in and abs(Hh[2, 2]) > 1e-9:
            Hh = Hh / Hh[2, 2]
            if np.linalg.det(Hh[:2, :2]) > 0 and view_perspective(Hh, query.width, query.height) < 0.5:
                H = Hh
                homography_used = True
    oriented = query.mirrored() if mirrored else query
    agreement, cells, mad = dense_agreement(oriented, candidate, H)
    score = calibrated_score(n_in, agreement, cells)

    # map from feature-image pixels to photo pixels
    Sq = np.diag([query.scale, query.scale, 1.0])
    Sc_inv = np.diag([1 / candidate.scale, 1 / candidate.scale, 1.0])
    Hf = np.eye(3)
    if mirrored:  # the model maps mirrored-query coordinates; fold the mirror in for the photo-level map
        Hf = np.array([[-1.0, 0.0, query.width - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    H_photo = Sc_inv @ H @ Hf @ Sq
    qsize = (max(1, round(query.width / query.scale)), max(1, round(query.height / query.scale)))
    csize = (max(1, round(candidate.width / candidate.scale)), max(1, round(candidate.height / candidate.scale)))
    qpoly, cpoly = _overlap(H_photo, qsize, csize)
    qcov = _poly_area(qpoly) / float(qsize[0] * qsize[1])
    ccov = _poly_area(cpoly) / float(csize[0] * csize[1])
    scale = math.hypot(M[0, 0], M[1, 0]) * query.scale / candidate.scale
    rot = -math.degrees(math.atan2(M[1, 0], M[0, 0]))  # image y points down: flip sign for counter-clockwise
    persp = view_perspective(H, query.width, query.height) if homography_used else 0.0
    transform = MatchTransform(
        rotation_deg=((rot + 180.0) % 360.0) - 180.0, scale=scale, mirrored=mirrored, perspective=persp,
        query_polygon=qpoly.tolist(), match_polygon=cpoly.tolist(), query_coverage=min(1.0, qcov),
        match_coverage=min(1.0, ccov), homography=H_photo.tolist() if homography_used else None)
    if max(transform.query_coverage, transform.match_coverage) < MIN_COVERAGE and n_in < STRONG_INLIERS:
        score = 0.0  # overlap confined to a strip: shared stamp or watermark band, not a reused photo
    is_match = score >= MATCH_SCORE
    mtype = classify_match(transform, mad) if is_match else None
    return VerifyResult(score=score, is_match=is_match, inliers=n_in, tentative=n_tent, agreement=agreement,
                        agreement_cells=cells, mean_abs_diff=mad, match_type=mtype, transform=transform,
                        query_points=qin, match_points=cin)


def classify_match(t: MatchTransform, mean_abs_diff: float) -> str:
    """Name the kind of copy from the transform (priority: mirrored, recaptured, partial, exact, near).

    ``exact`` means same geometry (no rotation, scale 1, full overlap) and the same grey levels
    (aligned thumbnails differ by <= :data:`EXACT_MAX_DIFF` on average): a re-save, not an edit. Byte- or
    pixel-identical files are the ``exact_duplicate`` check's business.
    """
    if t.mirrored:
        return "mirrored"
    if t.perspective >= PERSPECTIVE_RECAPTURE:
        return "recaptured_suspected"
    if min(t.query_coverage, t.match_coverage) < PARTIAL_COVERAGE:
        return "partial_crop"
    if (abs(t.scale - 1.0) < 0.01 and abs(t.rotation_deg) < 0.5 and t.query_coverage > 0.98
            and t.match_coverage > 0.98 and mean_abs_diff <= EXACT_MAX_DIFF):
        return "exact"
    return "near_duplicate"


def _mirror_idx() -> np.ndarray:
    from claimlens.vision.duplicates.features import MIRROR_PERMUTATION

    return MIRROR_PERMUTATION


def root_pair(features: LocalFeatures) -> tuple[np.ndarray, np.ndarray]:
    """(RootSIFT, mirrored RootSIFT) of a query, for :func:`verify`'s ``query_root``."""
    r = features.root()
    return r, np.ascontiguousarray(r[:, _mirror_idx()])
