"""The investigator's picture of one match: query and matched photo side by side, matched keypoints joined
by lines, the matched region outlined in both, and a caption with the numbers.

Why a picture: a flag is a reason to look, and the fastest way to look is to see the two photos with the
correspondence drawn; the numbers (score, inliers, transform) are printed under it so the image stands on
its own when forwarded.
"""

from __future__ import annotations

import cv2
import numpy as np

from claimlens.vision.duplicates.features import LocalFeatures
from claimlens.vision.duplicates.verify import VerifyResult

MAX_WIDTH = 1600
PANEL_HEIGHT = 520
MAX_LINES = 80

_QUERY_COLOUR = (40, 200, 255)  # BGR: amber
_MATCH_COLOUR = (80, 220, 80)


def _decode(jpeg: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError("evidence input is not an image")
    return img


def _bar(width: int, text: str, height: int = 30, bg: int = 255, fg: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    bar = np.full((height, width, 3), bg, np.uint8)
    cv2.putText(bar, text[:160], (8, int(height * 0.68)), cv2.FONT_HERSHEY_SIMPLEX, 0.55, fg, 1, cv2.LINE_AA)
    return bar


def _caption(result: VerifyResult) -> str:
    t = result.transform
    parts = [f"score {result.score:.2f}", f"{result.inliers} inliers", f"agreement {result.agreement:.2f}",
             f"type {result.match_type or 'no match'}"]
    if t is not None:
        parts += [f"rotation {t.rotation_deg:.0f} deg", f"scale {t.scale:.2f}",
                  "mirrored" if t.mirrored else "not mirrored",
                  f"covers {100 * t.query_coverage:.0f}% / {100 * t.match_coverage:.0f}%"]
        if t.perspective:
            parts.append(f"perspective {t.perspective:.3f}")
    return " | ".join(parts)


def match_evidence_image(query_jpeg: bytes, match_jpeg: bytes, result: VerifyResult,
                         query_features: LocalFeatures, match_features: LocalFeatures, *,
                         query_caption: str = "this claim", match_caption: str = "matched photo",
                         max_width: int = MAX_WIDTH, panel_height: int = PANEL_HEIGHT) -> bytes:
    """Render the evidence image of a verified match as JPEG bytes (at most ``max_width`` px wide).

    Args:
        query_jpeg, match_jpeg: upright images of the two photos (any size, e.g. the stored thumbnails);
            they must show the whole photo, as the features do.
        result: the :func:`.verify.verify` outcome (points are in feature-image pixels, the query's
            mirrored when ``result.transform.mirrored``).
        query_features, match_features: the features the result came from (for their image sizes).
        query_caption, match_caption: one line above each photo (claim id, photo id, stage, date).
    """
    q = _decode(query_jpeg)
    m = _decode(match_jpeg)
    gap = 24
    # both panels the same height, shrunk together if the pair is too wide
    hq = hm = panel_height
    wq = max(1, round(q.shape[1] * hq / q.shape[0]))
    wm = max(1, round(m.shape[1] * hm / m.shape[0]))
    if wq + wm + gap > max_width:
        k = (max_width - gap) / float(wq + wm)
        hq = hm = max(60, int(panel_height * k))
        wq = max(1, round(q.shape[1] * hq / q.shape[0]))
        wm = max(1, round(m.shape[1] * hm / m.shape[0]))
    q = cv2.resize(q, (wq, hq), interpolation=cv2.INTER_AREA)
    m = cv2.resize(m, (wm, hm), interpolation=cv2.INTER_AREA)

    # feature-image pixels -> panel pixels; photo pixels -> panel pixels
    fq = wq / float(query_features.width)
    fm = wm / float(match_features.width)
    pq = fq * query_features.scale
    pm = fm * match_features.scale
    t = result.transform
    if t is not None:
        for poly, img, f in ((t.query_polygon, q, pq), (t.match_polygon, m, pm)):
            if len(poly) >= 3:
                pts = np.round(np.asarray(poly, np.float32) * f).astype(np.int32)
                cv2.polylines(img, [pts], True, (0, 0, 255), 3, cv2.LINE_AA)

    canvas = np.full((hq, wq + gap + wm, 3), 255, np.uint8)
    canvas[:, :wq] = q
    canvas[:, wq + gap:] = m
    qp = np.asarray(result.query_points, np.float32).reshape(-1, 2).copy()
    mp = np.asarray(result.match_points, np.float32).reshape(-1, 2)
    if t is not None and t.mirrored and len(qp):
        qp[:, 0] = (query_features.width - 1) - qp[:, 0]
    if len(qp):
        pick = np.linspace(0, len(qp) - 1, min(MAX_LINES, len(qp))).astype(int)
        rng = np.random.default_rng(0)
        for i in pick:
            x0, y0 = qp[i] * fq
            x1, y1 = mp[i] * fm
            colour = tuple(int(c) for c in rng.integers(60, 256, size=3))
            a = (round(float(x0)), round(float(y0)))
            b = (round(float(x1)) + wq + gap, round(float(y1)))
            cv2.line(canvas, a, b, colour, 1, cv2.LINE_AA)
            cv2.circle(canvas, a, 3, _QUERY_COLOUR, -1, cv2.LINE_AA)
            cv2.circle(canvas, b, 3, _MATCH_COLOUR, -1, cv2.LINE_AA)

    width = canvas.shape[1]
    head = np.hstack([_bar(wq, query_caption), np.full((30, gap, 3), 255, np.uint8), _bar(wm, match_caption)])
    foot = _bar(width, _caption(result), height=32, bg=40, fg=(255, 255, 255))
    out = np.vstack([head, canvas, foot])
    ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()
