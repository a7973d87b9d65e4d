"""Licence plates in photos: localise, rectify, read under a grammar, with a confidence per read.

Pure computer vision (no I/O besides loading the shipped ONNX models on first use)::

    from claimlens.vision.plates import read_plates
    reads = read_plates(rgb)            # H x W x 3 uint8 RGB
    reads[0].text, reads[0].confidence, reads[0].box, reads[0].crop  # crop: rectified BGR

* Chinese plates: ``clp_det.onnx`` finds the plate and its 4 corners; the corners give a perspective-
  rectified crop; two recognisers read it under the plate grammar and are fused (:mod:`.recognize`).
* Latin plates (stopgap): OpenCV's ``haarcascade_russian_plate_number.xml`` (opencv-python-headless 4.x)
  proposes boxes only when no Chinese plate was found; PP-OCRv6 reads them under a loose grammar (4 to 10
  letters and digits, at least one digit). Not measured on labelled Latin plates (none are available offline).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np

from claimlens.vision.plates import grammar
from claimlens.vision.plates.detector import PlateDetector
from claimlens.vision.plates.ocr import CharRead, align_chars, ctc_constrained_decode, rectify
from claimlens.vision.plates.recognize import PlateRecognizer, PlateText

__all__ = ["PlateRead", "PlateReader", "grammar", "read_plate_crop", "read_plates", "shared_reader"]

# output geometry of a rectified Chinese plate: the detector's corners, no margin, stretched to 3.9 : 1
# (the 94 x 24 convention of LPRNet/CCPD crops the plate recogniser learnt from). Measured on the CCPD
# frames (docs/plates_vins.md): tight 3.9 beat margins of 5-30 % with the true 3.14 aspect (26/26 vs 21-24/26)
CROP_HEIGHT = 48
MARGIN_Y = 0.0
MARGIN_X = 0.0
CN_ASPECT = 3.9
MAX_PLATES = 3
LATIN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
LATIN_MIN, LATIN_MAX = 4, 10
_LATIN_RE = re.compile(rf"^(?=.*\d)[A-Z0-9]{{{LATIN_MIN},{LATIN_MAX}}}$")


@dataclass
class PlateRead:
    """One plate found in a photo.

    Attributes:
        text: plate text ('' when unreadable); Chinese plates without separators (``皖A12345``).
        confidence: weakest character probability of the (fused) read, 0..1.
        valid: the text matches the plate grammar of its ``kind``.
        kind: ``cn`` (Chinese layouts) or ``latin``.
        layout: the Chinese layout (``ordinary``, ``nev_small``, ...) or None.
        det_score: the localiser's score.
        box: (x1, y1, x2, y2) in the photo's pixels; corners: 4 x 2 (TL, TR, BR, BL).
        crop: the rectified plate, BGR (evidence image; not serialised).
    """

    text: str
    confidence: float
    valid: bool
    kind: str
    layout: str | None
    det_score: float
    box: tuple[float, float, float, float]
    corners: np.ndarray
    crop: np.ndarray | None = field(default=None, repr=False)
    chars: list[CharRead] = field(default_factory=list, repr=False)
    raw: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict:
        return {
            "text": self.text, "confidence": round(float(self.confidence), 4), "valid": self.valid,
            "kind": self.kind, "layout": self.layout, "det_score": round(float(self.det_score), 4),
            "box": [round(float(v), 1) for v in self.box],
            "corners": [[round(float(x), 1), round(float(y), 1)] for x, y in np.asarray(self.corners)],
            "raw": self.raw,
            "chars": [{"char": c.char, "prob": round(c.prob, 4),
                       "alternatives": {k: round(v, 4) for k, v in list(c.alternatives.items())[:3]}}
                      for c in self.chars],
        }


class PlateReader:
    """Localise + read. One instance per process (sessions load lazily on first use)."""

    def __init__(self, threads: int = 1, *, det_max_side: int = 640, latin: bool = True) -> None:
        self.detector = PlateDetector(threads=threads, max_side=det_max_side)
        self.recognizer = PlateRecognizer(threads=threads)
        self.latin = latin
        self._cascade = None

    def read_crop(self, crop_bgr: np.ndarray) -> PlateText:
        """Read an image that is already a plate crop (the plate fills it)."""
        return self.recognizer.read(crop_bgr)

    def read(self, rgb: np.ndarray, *, max_plates: int = MAX_PLATES) -> list[PlateRead]:
        """Plates in an RGB photo, best first (by detector score)."""
        bgr = np.ascontiguousarray(rgb[..., ::-1])
        reads: list[PlateRead] = []
        for box in self.detector.detect(bgr, limit=max_plates):
            crop = rectify(bgr, box.corners, height=CROP_HEIGHT, aspect=CN_ASPECT, margin=MARGIN_Y,
                           margin_x=MARGIN_X)
            res = self.recognizer.read(crop)
            reads.append(PlateRead(res.text, res.confidence, res.valid, "cn", res.layout, box.score, box.box,
                                   box.corners, crop, res.chars, res.raw))
        if self.latin and not any(r.valid for r in reads):
            reads += self.read_latin(bgr, max_plates)
        return reads

    # ------------------------------------------------------------------ Latin plates (stopgap cascade)
    @property
    def cascade(self):
        if self._cascade is None:
            path = cv2.data.haarcascades + "haarcascade_russian_plate_number.xml"
            cascade = cv2.CascadeClassifier(path)
            if cascade.empty():
                raise RuntimeError(f"OpenCV cascade not found at {path} (needs opencv-python-headless 4.x)")
            self._cascade = cascade
        return self._cascade

    def read_latin(self, bgr: np.ndarray, max_plates: int) -> list[PlateRead]:
        h, w = bgr.shape[:2]
        scale = min(1.0, 800 / max(h, w))
        gray = cv2.cvtColor(cv2.resize(bgr, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
                            if scale < 1 else bgr, cv2.COLOR_BGR2GRAY)
        found = self.cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=4, minSize=(40, 10))
        boxes = sorted((tuple(map(int, b)) for b in found), key=lambda b: -b[2] * b[3])[:max_plates]
        rec = self.recognizer.v6
        ids = rec.ids(LATIN_ALPHABET)
        out: list[PlateRead] = []
        for x, y, bw, bh in boxes:
            x1, y1, x2, y2 = x / scale, y / scale, (x + bw) / scale, (y + bh) / scale
            corners = np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float32)
            crop = rectify(bgr, corners, height=CROP_HEIGHT, margin=0.05)
            probs = rec.probs([crop])[0]
            best = ctc_constrained_decode(probs, rec.chars, ids, _latin_next, _latin_complete)
            text = best[0][0] if best else ""
            chars = align_chars(probs, rec.chars, text, ids) if text else []
            valid = bool(_LATIN_RE.match(text))
            conf = min((c.prob for c in chars), default=0.0) if valid else 0.0
            out.append(PlateRead(text, conf, valid, "latin", None, 0.5, (x1, y1, x2, y2), corners, crop, chars,
                                 {"ppocr_v6": text}))
        return out


def _latin_next(prefix: str) -> str:
    return LATIN_ALPHABET if len(prefix) < LATIN_MAX else ""


def _latin_complete(text: str) -> bool:
    return bool(_LATIN_RE.match(text))


@lru_cache(maxsize=2)
def shared_reader(threads: int = 1) -> PlateReader:
    return PlateReader(threads=threads)


def read_plates(rgb: np.ndarray, *, max_plates: int = MAX_PLATES) -> list[PlateRead]:
    return shared_reader().read(rgb, max_plates=max_plates)


def read_plate_crop(crop_bgr: np.ndarray) -> PlateText:
    return shared_reader().read_crop(crop_bgr)


def is_plate_crop(shape: tuple[int, ...]) -> bool:
    """An image that is a plate crop rather than a photo: wide and low (e.g. 94 x 24, 136 x 36)."""
    h, w = shape[:2]
    return h <= 160 and 2.0 <= w / max(h, 1) <= 6.0
