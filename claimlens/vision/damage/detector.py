"""Damaged-part detection with ``weights/damage_det.onnx`` (a YOLO11n trained here, see docs/damage.md).

The model was trained with ultralytics on ../shared/data/car_damage_roboflow; this runtime needs only
onnxruntime, numpy and OpenCV. Steps:

1. letterbox: scale the RGB image so its longer side is the model's input size (area-averaged when shrinking
   by more than 2x; beyond 4x, e.g. a 12 MP photo, bilinear to 4x the target first), centre it on a grey
   (114) square, RGB 0..1, NCHW;
2. the graph outputs ``1 x (4 + C) x N``: per anchor a box (centre x, centre y, width, height in input pixels)
   and C class scores (sigmoid; no objectness); each anchor keeps its best class;
3. class-wise NMS (greedy, IoU > :data:`NMS_IOU` suppresses) and at most ``max_det`` boxes;
4. boxes mapped back to the pixels of the image given (pad removed, divided by the scale, clipped).

Part names (class order of the model): :data:`PARTS`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from claimlens.vision.onnx import load_session, model_entry

MODEL = "damage_det"
PARTS: tuple[str, ...] = ("bonnet", "bumper", "trunk", "door", "fender", "light", "windshield")
# the operating threshold of :func:`detect_damage`: the best F1 on the ``tune`` split (never the held-out one):
# precision .19 / recall .30 there (flat: F1 .22-.23 from 0.1 to 0.25); held-out numbers in docs/damage.md.
# Low on purpose: the forensics modules look at the regions, and a photo with no box at all helps nobody.
# The bench's mAP uses all scores >= 0.001.
DEFAULT_MIN_SCORE = 0.1
NMS_IOU = 0.5
MAX_DET = 100
MAX_CANDIDATES = 3000
PAD_VALUE = 114


@dataclass(frozen=True)
class DamageBox:
    """A damaged part: box (x1, y1, x2, y2) in the pixels of the image given, part name, score 0..1."""

    x1: float
    y1: float
    x2: float
    y2: float
    part: str
    score: float

    @property
    def box(self) -> tuple[float, float, float, float]:
        return (self.x1, self.y1, self.x2, self.y2)

    def as_json(self) -> dict:
        return {"x1": round(self.x1, 1), "y1": round(self.y1, 1), "x2": round(self.x2, 1), "y2": round(self.y2, 1),
                "part": self.part, "score": round(float(self.score), 4)}


def letterbox(rgb: np.ndarray, size: int, pad_value: int = PAD_VALUE) -> tuple[np.ndarray, float, tuple[float, float]]:
    """Resize keeping the aspect ratio so the longer side is ``size`` and pad to ``size x size`` (centred,
    the rounding of ultralytics' LetterBox). Returns (image, scale, (pad_x, pad_y)); an input point (x, y)
    is at (x * scale + pad_x, y * scale + pad_y) in the letterboxed image."""
    h, w = rgb.shape[:2]
    scale = min(size / h, size / w)
    nw, nh = round(w * scale), round(h * scale)
    if (nw, nh) != (w, h):
        src = rgb
        if scale < 0.25:
            # a 12 MP photo: area-averaging it straight to 256 px costs ~50 ms on one core; bilinear to 4x the
            # target first (~1 ms) and area-average from there (~5 ms) is within a few grey levels of it
            src = cv2.resize(rgb, (nw * 4, nh * 4), interpolation=cv2.INTER_LINEAR)
        interp = cv2.INTER_AREA if scale < 0.5 else cv2.INTER_LINEAR
        resized = cv2.resize(src, (nw, nh), interpolation=interp)
    else:
        resized = rgb
    dw, dh = (size - nw) / 2, (size - nh) / 2
    top, bottom = round(dh - 0.1), round(dh + 0.1)
    left, right = round(dw - 0.1), round(dw + 0.1)
    out = cv2.copyMakeBorder(resized, top, bottom, left, right, cv2.BORDER_CONSTANT,
                             value=(pad_value, pad_value, pad_value))
    # nw + left + right can differ from size by rounding only when size - nw is odd: both rounds go one way
    if out.shape[0] != size or out.shape[1] != size:
        out = cv2.copyMakeBorder(out, 0, max(0, size - out.shape[0]), 0, max(0, size - out.shape[1]),
                                 cv2.BORDER_CONSTANT, value=(pad_value, pad_value, pad_value))[:size, :size]
    return out, scale, (float(left), float(top))


def unletterbox(boxes: np.ndarray, scale: float, pad: tuple[float, float], width: int, height: int) -> np.ndarray:
    """Boxes (N, 4) x1 y1 x2 y2 in letterbox pixels -> pixels of the original ``width x height`` image."""
    out = np.asarray(boxes, np.float64).reshape(-1, 4).copy()
    out[:, [0, 2]] = (out[:, [0, 2]] - pad[0]) / scale
    out[:, [1, 3]] = (out[:, [1, 3]] - pad[1]) / scale
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, width)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, height)
    return out


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Greedy NMS: indices kept, best score first; a box whose IoU with a kept box is > ``iou`` goes."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    order = np.argsort(-scores, kind="stable")
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        xx1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        yy1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        yy2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        ovr = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-12)
        order = rest[ovr <= iou]
    return keep


def classwise_nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou: float) -> list[int]:
    """NMS within each class (boxes of different classes never suppress each other), best score first."""
    keep: list[int] = []
    classes = np.asarray(classes).reshape(-1)
    for c in np.unique(classes):
        idx = np.nonzero(classes == c)[0]
        keep.extend(int(idx[k]) for k in nms(boxes[idx], scores[idx], iou))
    return sorted(keep, key=lambda i: -float(scores[i]))


def decode_output(output: np.ndarray, min_score: float, iou: float = NMS_IOU, max_det: int = MAX_DET
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """YOLOv8/11 head output ``(1, 4 + C, N)`` -> (boxes (K, 4) x1 y1 x2 y2 in input pixels, scores (K,),
    classes (K,)) after the score threshold and class-wise NMS."""
    pred = np.asarray(output)[0].T  # N x (4 + C)
    cls_scores = pred[:, 4:]
    classes = cls_scores.argmax(1)
    scores = cls_scores[np.arange(len(pred)), classes]
    sel = np.nonzero(scores >= min_score)[0]
    if sel.size == 0:
        return np.zeros((0, 4)), np.zeros(0), np.zeros(0, int)
    if sel.size > MAX_CANDIDATES:
        sel = sel[np.argsort(-scores[sel])[:MAX_CANDIDATES]]
    cxcywh = pred[sel, :4].astype(np.float64)
    boxes = np.stack([cxcywh[:, 0] - cxcywh[:, 2] / 2, cxcywh[:, 1] - cxcywh[:, 3] / 2,
                      cxcywh[:, 0] + cxcywh[:, 2] / 2, cxcywh[:, 1] + cxcywh[:, 3] / 2], 1)
    keep = classwise_nms(boxes, scores[sel], classes[sel], iou)[:max_det]
    return boxes[keep], scores[sel][keep].astype(np.float64), classes[sel][keep]


class DamageDetector:
    """The ONNX model with its pre- and post-processing. Build it after a worker forks (lazy session)."""

    def __init__(self, threads: int = 1, min_score: float = DEFAULT_MIN_SCORE, iou: float = NMS_IOU,
                 max_det: int = MAX_DET) -> None:
        self.threads = threads
        self.min_score = min_score
        self.iou = iou
        self.max_det = max_det
        self._session = None
        self._input_size: int | None = None
        self._parts: tuple[str, ...] = PARTS

    @property
    def session(self):
        if self._session is None:
            session = load_session(MODEL, threads=self.threads)
            shape = session.get_inputs()[0].shape  # [1, 3, S, S]
            self._input_size = int(shape[2]) if isinstance(shape[2], int) else 256
            classes = model_entry(MODEL).get("classes")
            if classes:
                self._parts = tuple(classes)
            self._session = session
        return self._session

    @property
    def input_size(self) -> int:
        self.session  # noqa: B018 - loads the model and reads the size
        assert self._input_size is not None
        return self._input_size

    @property
    def parts(self) -> tuple[str, ...]:
        self.session  # noqa: B018
        return self._parts

    def detect(self, rgb: np.ndarray, *, min_score: float | None = None) -> list[DamageBox]:
        """Damaged parts in an RGB (H x W x 3 uint8) image, best score first."""
        if rgb.ndim == 2:
            rgb = cv2.cvtColor(rgb, cv2.COLOR_GRAY2RGB)
        session = self.session
        size = self.input_size
        h, w = rgb.shape[:2]
        img, scale, pad = letterbox(rgb[..., :3], size)
        x = (img.astype(np.float32) * (1.0 / 255.0)).transpose(2, 0, 1)[None]
        out = session.run(None, {session.get_inputs()[0].name: np.ascontiguousarray(x)})[0]
        thr = self.min_score if min_score is None else min_score
        boxes, scores, classes = decode_output(out, thr, self.iou, self.max_det)
        boxes = unletterbox(boxes, scale, pad, w, h)
        parts = self.parts
        return [DamageBox(float(b[0]), float(b[1]), float(b[2]), float(b[3]),
                          parts[int(c)] if int(c) < len(parts) else f"class{int(c)}", float(s))
                for b, s, c in zip(boxes, scores, classes) if b[2] > b[0] and b[3] > b[1]]


_SHARED: DamageDetector | None = None
_SHARED_LOCK = threading.Lock()


def shared_detector() -> DamageDetector:
    """The process-wide detector (built on first use, one intra-op thread)."""
    global _SHARED
    if _SHARED is None:
        with _SHARED_LOCK:
            if _SHARED is None:
                _SHARED = DamageDetector(threads=1)
    return _SHARED


def detect_damage(rgb: np.ndarray, *, min_score: float = DEFAULT_MIN_SCORE) -> list[DamageBox]:
    """Damaged parts in an RGB image (boxes in its pixels), best first, with the process-wide model."""
    return shared_detector().detect(rgb, min_score=min_score)


PHOTO_SIDE = 1024
"""Long side of the copy the per-photo detection runs on (the model sees 256 px; 1024 keeps the letterbox
input sharp and the copy is the one other checks already share)."""


def detect_damage_photo(photo: Any, *, min_score: float = DEFAULT_MIN_SCORE) -> list[DamageBox]:
    """Damaged parts of a :class:`~claimlens.vision.decode.DecodedPhoto`, boxes in the photo's own pixels.

    Computed once per photo (``photo.memo``) on ``photo.rgb_at(PHOTO_SIDE)``: every check that wants damage
    regions (damage forensics, heights) shares one detector run instead of paying for it twice.
    """
    def run() -> list[DamageBox]:
        work = photo.rgb_at(PHOTO_SIDE)
        f = photo.width / float(work.shape[1])
        return [DamageBox(b.x1 * f, b.y1 * f, b.x2 * f, b.y2 * f, b.part, b.score)
                for b in detect_damage(work, min_score=min_score)]

    return photo.memo(f"damage_boxes@{min_score:g}", run)
