"""Licence plates in photos: localise, rectify, read under a grammar, with a confidence per read.

Pure computer vision (no I/O besides loading the shipped ONNX models on first use)::

    from claimlens.vision.plates import read_plates
    reads = read_plates(rgb)            # H x W x 3 uint8 RGB
    reads[0].text, reads[0].confidence, reads[0].box, reads[0].crop  # crop: rectified BGR

* Chinese plates: ``clp_det.onnx`` finds the plate and its 4 corners; the corners give a perspective-
  rectified crop; two recognisers read it under the plate grammar and are fused (:mod:`.recognize`).
* Latin plates (:mod:`.latin`), only when no Chinese plate is valid: the same detector's weaker boxes and
  the PP-OCRv6 text detector's plate-shaped lines, read by PP-OCRv6 under the national formats (UK, EU
  countries, US, Russia). Measured on a generated suite and a handful of real plates (docs/plates_vins.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from claimlens.vision.plates import grammar
from claimlens.vision.plates.detector import DETECTION_THRESHOLD, PlateDetector
from claimlens.vision.plates.latin import (
    CANDIDATE_DET_SCORE,
    FINE_PASS_BELOW_SCORE,
    MAX_CANDIDATES,
    TEXT_DET_SIDE,
    TEXT_DET_SIDE_FINE,
    LatinCandidate,
    LatinPlateReader,
    box_of,
)
from claimlens.vision.plates.ocr import CharRead, rectify, shared_detector
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
# a Latin plate forced into the Chinese grammar reads with a confidence near 0 (the fused probability is
# normalised over every character either recogniser saw, docs/plates_vins.md): below this the photo is
# searched for Latin plates as well
CN_PLAUSIBLE = 0.1


@dataclass
class PlateRead:
    """One plate found in a photo.

    Attributes:
        text: plate text ('' when unreadable); Chinese plates without separators (``皖A12345``).
        confidence: weakest character probability of the (fused) read, 0..1.
        valid: the text matches the plate grammar of its ``kind``.
        kind: ``cn`` (Chinese layouts) or ``latin``.
        layout: the Chinese layout (``ordinary``, ``nev_small``, ...), for Latin plates the countries whose
            format matches (``GB``, ``FR/IT``, ``generic``), or None.
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
    plate_score: float | None = None  # Latin reads: how much the line looks like a plate (latin.MODEL)

    def as_json(self) -> dict:
        return {
            "text": self.text, "confidence": round(float(self.confidence), 4), "valid": self.valid,
            "kind": self.kind, "layout": self.layout, "det_score": round(float(self.det_score), 4),
            "box": [round(float(v), 1) for v in self.box],
            "corners": [[round(float(x), 1), round(float(y), 1)] for x, y in np.asarray(self.corners)],
            "raw": self.raw,
            "plate_score": None if self.plate_score is None else round(float(self.plate_score), 4),
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
        self._latin_reader: LatinPlateReader | None = None
        self._threads = threads

    @property
    def latin_reader(self) -> LatinPlateReader:
        if self._latin_reader is None:
            self._latin_reader = LatinPlateReader(self.recognizer.v6, shared_detector(self._threads))
        return self._latin_reader

    def read_crop(self, crop_bgr: np.ndarray) -> PlateText:
        """Read an image that is already a plate crop (the plate fills it)."""
        return self.recognizer.read(crop_bgr)

    def read(self, rgb: np.ndarray, *, max_plates: int = MAX_PLATES, latin: bool | None = None) -> list[PlateRead]:
        """Plates in an RGB photo: Chinese ones by detector score, then Latin ones when no Chinese read is
        plausible (valid with confidence >= ``CN_PLAUSIBLE``) and ``latin`` (default: the reader's
        setting) allows them."""
        bgr = np.ascontiguousarray(rgb[..., ::-1])
        boxes = self.detector.detect(bgr, threshold=CANDIDATE_DET_SCORE, limit=max_plates + MAX_CANDIDATES)
        reads: list[PlateRead] = []
        for box in [b for b in boxes if b.score >= DETECTION_THRESHOLD][:max_plates]:
            crop = rectify(bgr, box.corners, height=CROP_HEIGHT, aspect=CN_ASPECT, margin=MARGIN_Y,
                           margin_x=MARGIN_X)
            res = self.recognizer.read(crop)
            reads.append(PlateRead(res.text, res.confidence, res.valid, "cn", res.layout, box.score, box.box,
                                   box.corners, crop, res.chars, res.raw))
        plausible_cn = any(r.valid and r.confidence >= CN_PLAUSIBLE for r in reads)
        if (self.latin if latin is None else latin) and not plausible_cn:
            reads += self.read_latin(bgr, max_plates, boxes)
        return reads

    def latin_candidates(self, bgr: np.ndarray, det_boxes: list | None = None) -> list[LatinCandidate]:
        """Where Latin plates may be: the plate detector's boxes down to ``CANDIDATE_DET_SCORE``
        (``det_boxes`` when the caller already ran it) and the text detector's plate-shaped lines."""
        if det_boxes is None:
            det_boxes = self.detector.detect(bgr, threshold=CANDIDATE_DET_SCORE, limit=MAX_CANDIDATES)
        return ([LatinCandidate(b.corners, b.score, "plate_det") for b in det_boxes]
                + self.latin_reader.text_candidates(bgr))

    def read_latin(self, bgr: np.ndarray, max_plates: int, det_boxes: list | None = None) -> list[PlateRead]:
        """Latin plates (:mod:`.latin`): the plate detector's boxes (``det_boxes`` when the caller already
        ran it) and the text detector's plate-shaped lines, read under the national formats."""
        out: list[PlateRead] = []
        reads = self.latin_reader.read_candidates(bgr, self.latin_candidates(bgr, det_boxes), max_plates)
        h, w = bgr.shape[:2]
        if max(h, w) > TEXT_DET_SIDE and not any(r.text.national and r.plate_score >= FINE_PASS_BELOW_SCORE
                                                 for r in reads):
            fine = self.latin_reader.read_candidates(
                bgr, self.latin_reader.text_candidates(bgr, TEXT_DET_SIDE_FINE), max_plates)
            reads = sorted(reads + fine, key=lambda r: -r.plate_score)
            kept: list = []
            for r in reads:  # one read per text (both scales often read the same plate)
                if all(r.text.text != k.text.text for k in kept):
                    kept.append(r)
            reads = kept[:max_plates]
        for r in reads:
            out.append(PlateRead(r.text.text, r.text.confidence, r.text.valid, "latin", r.text.layout,
                                 r.candidate.score, box_of(r.candidate.corners), r.candidate.corners, r.crop,
                                 r.text.chars, {"ppocr_v6": r.text.raw, "source": r.candidate.source},
                                 plate_score=r.plate_score))
        return out


    def read_latin_crop(self, crop_bgr: np.ndarray) -> PlateRead | None:
        """Read an image that is already a Latin plate crop: the whole image as one line, and the text
        lines inside it (a two-row plate, a plate with a dealer's line), read and scored like candidates in
        a photo (no localiser support); the most plate-like valid read. None when no valid read."""
        h, w = crop_bgr.shape[:2]
        corners = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float32)
        cands = [LatinCandidate(corners, 0.0, "crop")] + self.latin_reader.text_candidates(crop_bgr)
        for r in self.latin_reader.read_candidates(crop_bgr, cands, 1):
            return PlateRead(r.text.text, r.text.confidence, r.text.valid, "latin", r.text.layout, 0.0,
                             box_of(r.candidate.corners), r.candidate.corners, r.crop, r.text.chars,
                             {"ppocr_v6": r.text.raw, "source": "crop/" + r.candidate.source},
                             plate_score=r.plate_score)
        return None


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
