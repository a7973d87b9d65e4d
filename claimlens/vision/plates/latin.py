"""Latin-alphabet licence plates (Europe, UK, US, Russia): localise without a trained detector, read under
the national formats.

Why no detector of its own: none exists offline (GUIDE §3) and the shared data holds fewer than ten
readable Latin plates, too few to train or even tune one. Two pretrained localisers are combined instead:

* ``clp_det`` (the Chinese-plate detector) at a low score: it learnt the shape of a plate (a light, wide
  rectangle with a dark border and a row of glyphs) and fires on some Latin plates too, with corners (about
  a third of the generated suite's, 4 of the 7 real ones);
* PP-OCRv6 text detection: every text line of the photo. A plate is a short line; most text in a
  claim photo is not a plate (watermarks, date stamps, stickers, badges, VIN labels).

Each candidate is rectified and read by the PP-OCRv6 recogniser under a grammar: the union of the
national formats below (letters ``L``, digits ``D``, Spanish consonants ``C``, Cyrillic-look-alike letters
``R`` for Russia, letters or digits ``A``). What separates a plate from other text is the format, so a
read is ``valid`` only when it matches one of them; its ``layout`` names the countries whose format it
matches (``GB``, ``FR/IT``...). A read that matches none, but is 5-8 letters and digits with at least two
of each, is kept with layout ``generic`` (US vanity/state formats are open-ended) and never counts as a
confident plate on its own.

O/0 and I/1 are the same glyph on many plates (UK plates print them identically): the recogniser's mass
for O is added to 0 and I to 1 before decoding, the grammar sees one symbol for each pair, and the format
of the read decides afterwards which of the two it is (a letter where the format wants a letter, else the
digit). The read's confidence is then not split between two spellings of one glyph.

Every valid read gets a plate-likeness score (a fitted logistic model on named features, :func:`plate_features`)
and the reads are returned most plate-like first; the check trusts a read only in a national format, with a
strong weakest character and a high plate score (``plate_vin.plate_confident``).

Measured on a generated suite of rendered plates composited onto real car photos (held-out seed: 0.892
exact) and on the 7 readable real plates in the shared sets (6/7; anecdotal): docs/plates_vins.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

import cv2
import numpy as np

from claimlens.vision.logistic import logistic_score
from claimlens.vision.plates.ocr import (
    BASE_MERGE,
    CharRead,
    TextDetector,
    TextRecognizer,
    align_chars,
    ctc_constrained_decode,
    ctc_path_logprob,
    fold_probs,
    greedy_decode,
    rectify,
)

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DIGITS = "0123456789"
CLASSES: dict[str, frozenset[str]] = {
    "L": frozenset(LETTERS),
    "D": frozenset(DIGITS),
    "A": frozenset(LETTERS + DIGITS),
    "C": frozenset("BCDFGHJKLMNPRSTVWXYZ"),  # Spain: consonants only
    "R": frozenset("ABEKMHOPCTYX"),  # Russia: the Latin look-alikes of the Cyrillic letters used
    "U": frozenset("ABCDEFGHJKLMNOPRSTUVWXYZ"),  # UK current-style letters (no I, no Q)
    "K": frozenset("ABCEHIKMOPTX"),  # Ukraine: the Latin look-alikes of the Cyrillic letters used
}
# national formats, characters only (spaces, hyphens, the EU band and the US state word are not part of
# the text). Sources: the registration rules of each country (UK DVLA 2001 scheme and the older prefix /
# suffix ones, French SIV 2009, Italian 1994, Spanish 2000, Dutch sidecodes 4-11, German FZV, Polish
# 2000, Russian GOST R 50577, Ukrainian DSTU 3650, Indian CMVR 1989) and the most common US state formats.
# A leading "~" marks a rare format (UK prefix/suffix plates from before 2001, less common US layouts): it
# is accepted, but a read that also fits a current format (or fits one after trimming) is spelt that way.
FORMATS: dict[str, tuple[str, ...]] = {
    "GB": ("UUDDUUU", "~LDLLL", "~LDDLLL", "~LDDDLLL", "~LLLDL", "~LLLDDL", "~LLLDDDL"),
    "FR/IT": ("LLDDDLL",),
    "ES": ("DDDDCCC",),
    "NL": ("DDLLLD", "LLDDDL", "LDDDLL", "LLLDDL", "DLLDDD", "DDDLLD", "LLDDLL", "DDLLDD"),
    "DE": tuple(f"{'L' * a}{'L' * b}{'D' * d}" for a in (1, 2, 3) for b in (1, 2) for d in (1, 2, 3, 4)
                if 3 <= a + b + d <= 8),
    "PL": ("LLDDDDD", "LLDDDDL", "LLLDDDD", "LLLDDLL", "LLLLDDD", "LLLDLDD"),
    "US": ("DLLLDDD", "LLLDDDD", "LLLDDD", "DDDLLL", "LLDDDDD", "~DDDLLLL", "~DLLDDD", "~DDDDLL", "~LLLLDDD",
           "~DDLLLD"),
    "RU": ("RDDDRRDD", "RDDDRRDDD"),
    # Ukraine 2004/2013 (region, 4 digits, series); India (CMVR 1989: state, district of 1-2 digits, series
    # of 0-3 letters, number of 4 digits, shorter numbers printed unpadded are rare)
    "UA": ("KKDDDDKK", "~DDDDDKK", "~DDDDKK"),  # cars; two-row trailer and motorcycle plates
    "IN": ("LLDDLLDDDD", "LLDDLDDDD", "LLDDLLLDDDD", "~LLDDDDDD", "~LLDDLLDDD",
           "~LLDDLDDD", "~DDLLDDDDLL"),
}
GENERIC_MIN, GENERIC_MAX = 5, 8
# log prior of a read's shape, added to the recogniser's log posterior when choosing between hypotheses
RARE_PRIOR = -6.0  # a rare format (pre-2001 UK plates, rarer US layouts): ~1/400 of a current one
GENERIC_PRIOR = -4.5  # the generic shape only
ALPHABET = LETTERS + DIGITS

# one symbol per glyph pair while decoding (the format decides the letter or the digit afterwards)
TWINS = {"O": "0", "I": "1"}
LETTER_OF = {d: letter for letter, d in TWINS.items()}
TWIN_OF = {**TWINS, **LETTER_OF}
DECODE_ALPHABET = "".join(c for c in ALPHABET if c not in TWINS)
LATIN_MERGE = {**BASE_MERGE, **TWINS, "o": "0", "i": "1", "l": "1", "|": "1"}

CANDIDATE_DET_SCORE = 0.3  # clp_det score for a Latin plate candidate (Chinese reads need 0.6)
TEXT_DET_SIDE = 736  # text detection scale: 124 ms CPU vs 175 at 960 for 0.879 vs 0.896 exact (suite seed 1)
# a second, finer text detection when the first found nothing plate-like (a plate of 100 px in a 1200-px
# phone photo is too small at 736): real dev split, docs/plates_vins.md
TEXT_DET_SIDE_FINE = 1280
FINE_PASS_BELOW_SCORE = 0.9  # ... i.e. when no national-format read reached this plate-likeness
MIN_ASPECT, MAX_ASPECT = 1.3, 9.0  # a plate's text line (US plates ~2.2, EU 4.7 with band, UK 4.7)
CROP_HEIGHT = 48
# the text detector's boxes hug the glyphs and sometimes cut the last character: crops get this much of
# the line's height on the left and right (a band letter or screw that comes in is trimmed)
TEXT_MARGIN_X = 0.3
MAX_CANDIDATES = 12
# text boxes on one row with gaps of at most this many line heights are also read as one line (_row_chains)
CHAIN_MAX_GAP = 1.2
CHAIN_MAX = 4
TWO_ROW_MAX_GAP = 0.8  # vertical gap between the rows of a two-row plate, in row heights


@dataclass(frozen=True)
class Template:
    country: str
    sets: tuple[frozenset[str], ...]  # the format's characters per position
    folded: tuple[frozenset[str], ...]  # the same with O -> 0 and I -> 1 (what the decoder spells)
    rare: bool = False


def _fold(chars: frozenset[str]) -> frozenset[str]:
    return frozenset(TWINS.get(c, c) for c in chars)


@lru_cache(maxsize=1)
def templates() -> tuple[Template, ...]:
    out = []
    for country, fmts in FORMATS.items():
        for fmt in fmts:
            code = fmt.lstrip("~")
            out.append(Template(country, tuple(CLASSES[c] for c in code), tuple(_fold(CLASSES[c]) for c in code),
                                rare=fmt.startswith("~")))
    return tuple(out)


def shape_prior(text: str, *, folded: bool = False) -> float | None:
    """Log prior of a read's shape: 0 for a current national format, ``RARE_PRIOR`` for a rare one only,
    ``GENERIC_PRIOR`` for the generic shape only, None when nothing fits. ``folded``: the decoder's spelling."""
    fits = [t for t in templates() if _fits(text, t.folded if folded else t.sets)]
    if fits:
        return 0.0 if any(not t.rare for t in fits) else RARE_PRIOR
    return GENERIC_PRIOR if _generic(text) else None


def _fits(text: str, sets: tuple[frozenset[str], ...], *, prefix: bool = False) -> bool:
    if len(text) > len(sets) or (not prefix and len(text) != len(sets)):
        return False
    return all(c in s for c, s in zip(text, sets))


def layout(text: str) -> str | None:
    """The countries whose format ``text`` matches (``GB``, ``FR/IT/US``...), ``generic`` for 5-8 letters
    and digits with at least two of each, None otherwise."""
    countries = list(dict.fromkeys(t.country for t in templates() if _fits(text, t.sets)))
    if countries:
        return "/".join(countries)
    if _generic(text):
        return "generic"
    return None


def _generic(text: str) -> bool:
    return (GENERIC_MIN <= len(text) <= GENERIC_MAX and bool(re.fullmatch(r"[A-Z0-9]+", text))
            and sum(c.isdigit() for c in text) >= 2 and sum(c.isalpha() for c in text) >= 2)


@lru_cache(maxsize=8192)
def next_national(prefix: str) -> str:
    """Decoder symbols (O and I spelt 0 and 1) some national format allows after ``prefix``."""
    out: set[str] = set()
    n = len(prefix)
    for t in templates():
        if n < len(t.folded) and _fits(prefix, t.folded, prefix=True):
            out |= t.folded[n]
    return "".join(sorted(out))


def complete_national(folded: str) -> bool:
    return any(_fits(folded, t.folded) for t in templates())


@lru_cache(maxsize=8192)
def next_chars(prefix: str) -> str:
    """Decoder symbols some national format or the generic shape allows after ``prefix``."""
    return "".join(sorted(set(next_national(prefix)) | (set(DECODE_ALPHABET) if len(prefix) < GENERIC_MAX else set())))


def complete(folded: str) -> bool:
    return complete_national(folded) or _generic(folded)


def unfoldings(folded: str) -> list[str]:
    """Every plate text the decoder's spelling can stand for under the formats that fit it: a 0 or 1
    becomes O or I where that format wants a letter. Generic reads keep their digits."""
    out = [
        "".join(LETTER_OF[c] if c in LETTER_OF and c not in s else c for c, s in zip(folded, t.sets))
        for t in templates() if _fits(folded, t.folded)
    ]
    if not out:  # generic: the digits stay (a national spelling, when there is one, is preferred)
        out.append(folded)
    return list(dict.fromkeys(out))


@dataclass
class LatinText:
    """A Latin plate read from a crop: text, weakest character probability, format match."""

    text: str
    confidence: float
    layout: str | None
    chars: list[CharRead]
    raw: str
    twin_flips: int = 0  # O/0, I/1 spelt against the recogniser's preference to fit the format

    @property
    def valid(self) -> bool:
        return self.layout is not None

    @property
    def national(self) -> bool:
        """Matches a national format (not only the generic shape)."""
        return self.layout not in (None, "generic")


@dataclass
class LatinCandidate:
    corners: np.ndarray  # 4 x 2, TL TR BR BL, photo pixels
    score: float  # localiser score (clp_det score, or the text detector's box score)
    source: str  # "plate_det" | "text_det" | "two_row" | "crop" (the image is a plate crop already)
    rows: tuple[np.ndarray, ...] = ()  # two-row plates: the corners of each row, top first


@dataclass
class LatinRead:
    """A candidate, its read, the rectified crop, and how much it looks like a plate."""

    candidate: LatinCandidate
    text: LatinText
    crop: np.ndarray
    plate_score: float
    features: dict[str, float]


# --- fitted model start ---
MODEL: dict[str, Any] = {
    "bias": -3.10059,
    "mean": {
        "national": 0.959333, "current": 0.905333, "confidence": 0.718342, "support": 0.179109,
        "log_aspect": 1.42602, "contrast": 0.451514, "ring_light": 0.448792, "ring_yellow": 0.00800045,
        "eu_band": 0.0889063, "n_chars": 6.642, "twin_flips": 0.582667
    },
    "std": {
        "national": 0.197517, "current": 0.292754, "confidence": 0.419356, "support": 0.316323,
        "log_aspect": 0.357869, "contrast": 0.149551, "ring_light": 0.228163, "ring_yellow": 0.0572052,
        "eu_band": 0.173996, "n_chars": 0.869772, "twin_flips": 0.827345
    },
    "weight": {
        "national": 0.575477, "current": 1.271, "confidence": 2.47617, "support": 0.00809027,
        "log_aspect": -2.19601, "contrast": 0.464162, "ring_light": -0.0670375,
        "ring_yellow": 0.0182583, "eu_band": 0.219153, "n_chars": 0.785732, "twin_flips": -2.2205
    },
}
PLATE_SCORE_THRESHOLD = 0.81
# --- fitted model end ---
FEATURES = tuple(MODEL["weight"])


class LatinPlateReader:
    """Candidates from the plate detector and the text detector, each read under the national formats."""

    def __init__(self, recognizer: TextRecognizer, text_detector: TextDetector) -> None:
        self.rec = recognizer
        self.text_detector = text_detector

    @cached_property
    def full_ids(self) -> np.ndarray:
        """Recogniser columns of every letter and digit (O and I included: to tell them from 0 and 1)."""
        return self.rec.ids(ALPHABET)

    @cached_property
    def ids(self) -> np.ndarray:
        """Recogniser columns the decoder uses (O and I folded into 0 and 1)."""
        return self.rec.ids(DECODE_ALPHABET)

    def read_crop(self, crop_bgr: np.ndarray) -> LatinText:
        probs = self.rec.probs([crop_bgr])[0]
        return self._decode(probs)

    def _decode(self, probs: np.ndarray) -> LatinText:
        """Two beams: one constrained to the national formats (it keeps a plate's hypotheses that a beam
        open to any text would prune: an 8 where a Russian plate wants a B) and one open to the generic shape
        too (with trimming); the better by the CTC path probability of what was read plus the shape prior."""
        raw = greedy_decode(probs, self.rec.chars)
        p = fold_probs(probs, self.rec.index, LATIN_MERGE)
        options = [h for h in (self._best_hypothesis(p, next_national, complete_national),
                               self._best_hypothesis(p, next_chars, complete)) if h is not None]
        if not options:
            return LatinText("", 0.0, None, [], raw)
        _, folded, chars = max(options, key=lambda h: h[0])
        text, flips = self._unfold(probs, folded)
        lay = layout(text)
        for c, real in zip(chars, text):
            c.char = real
        conf = min((c.prob for c in chars), default=0.0) if lay else 0.0
        return LatinText(text, conf, lay, chars, raw, flips)

    def _best_hypothesis(self, p: np.ndarray, next_fn, complete_fn) -> tuple[float, str, list[CharRead]] | None:
        """The decoder's n-best under a grammar, each trimmed to a format where that helps; the best by the
        CTC path log probability of the untrimmed read plus the shape prior of the kept text:
        (score, folded text, aligned characters)."""
        best: tuple[float, str, list[CharRead]] | None = None
        for folded, _ in ctc_constrained_decode(p, self.rec.chars, self.ids, next_fn, complete_fn):
            if not complete_fn(folded):
                continue
            chars = align_chars(p, self.rec.chars, folded, self.ids)
            kept, kept_chars = _trim_to_format(folded, chars)
            prior = shape_prior(kept, folded=True)
            if prior is None or not kept_chars:
                continue
            score = ctc_path_logprob(p, self.rec.chars, folded, self.ids) + prior
            if best is None or score > best[0]:
                best = (score, kept, kept_chars)
        return best

    def _unfold(self, probs: np.ndarray, folded: str) -> tuple[str, int]:
        """The plate text and its number of twin flips. Where formats disagree on O/0 or I/1 (a GB
        current-style plate vs an old prefix one), the spelling the recogniser itself preferred (its
        O-versus-0 probabilities at the aligned frames) plus the prior of its format wins. A flip is a 0/O
        or 1/I that the format chose against the recogniser's own preference (``PHOTO`` spelt ``PHOT0`` to
        fit a German format): words read as plates have them, plates rarely."""
        p = fold_probs(probs, self.rec.index, BASE_MERGE)
        scored = []
        for text in unfoldings(folded):
            chars = align_chars(p, self.rec.chars, text, self.full_ids)
            raw = sum(np.log(c.prob + 1e-9) for c in chars)
            flips = sum(c.char in TWIN_OF and c.alternatives.get(TWIN_OF[c.char], 0.0) > c.prob for c in chars)
            scored.append((raw + (shape_prior(text) or GENERIC_PRIOR), text, flips))
        _, text, flips = max(scored)
        return text, int(flips)

    def text_candidates(self, bgr: np.ndarray, side: int = TEXT_DET_SIDE) -> list[LatinCandidate]:
        """Text lines shaped like a plate's line. Small photos are enlarged (glyphs of 5-8 px in a 256-px
        web photo are below what the detector sees); large ones are reduced to ``side``."""
        h, w = bgr.shape[:2]
        side = min(side, round(max(h, w) * 3))
        boxes = self.text_detector.detect(bgr, limit_side=int(np.ceil(side / 32) * 32))
        merged = [LatinCandidate(c, sc, "text_det") for c, sc in _row_chains(boxes)]
        stacked = [LatinCandidate(c, sc, "two_row", rows) for c, sc, rows in _two_rows(boxes)]
        return stacked + merged + [LatinCandidate(b.corners, b.score, "text_det") for b in boxes
                         if b.height >= 4 and MIN_ASPECT <= b.width / max(b.height, 1e-6) <= MAX_ASPECT]

    def read_candidates(self, bgr: np.ndarray, candidates: list[LatinCandidate], max_plates: int, *,
                        one_per_place: bool = True) -> list[LatinRead]:
        """Read every candidate (one recogniser batch), keep the valid reads, most plate-like first, one per
        place (``one_per_place=False``: all of them, for fitting). The plate detector's score supports the
        text lines it overlaps."""
        plate_boxes = [c for c in candidates if c.source == "plate_det"]
        candidates = plate_boxes[:4] + [c for c in candidates if c.source != "plate_det"][:MAX_CANDIDATES]
        if not candidates:
            return []
        crops = [_two_row_crop(bgr, c.rows) if c.rows else
                 rectify(bgr, c.corners, height=CROP_HEIGHT, margin=0.0 if c.source == "crop" else 0.12,
                         margin_x=TEXT_MARGIN_X if c.source == "text_det" else None) for c in candidates]
        decoded = [(cand, crop, self._decode(probs))
                   for cand, crop, probs in zip(candidates, crops, self.rec.probs(crops))]
        reads: list[LatinRead] = []
        for cand, crop, text in decoded:
            if not text.valid:
                continue
            support = max([b.score for b in plate_boxes if _overlap(b.corners, cand.corners) > 0.5], default=0.0)
            feats = plate_features(bgr, cand, text, crop, support)
            score, _ = logistic_score(feats, MODEL, FEATURES)
            reads.append(LatinRead(cand, text, crop, score, feats))
        reads.sort(key=lambda r: -r.plate_score)
        if not one_per_place:
            return reads
        kept: list[LatinRead] = []
        for r in reads:
            if all(_overlap(r.candidate.corners, k.candidate.corners) < 0.3 and r.text.text != k.text.text
                   for k in kept):
                kept.append(r)
        return kept[:max_plates]


def _row_chains(boxes: list) -> list[tuple[np.ndarray, float]]:
    """Text boxes that continue each other on one row (similar height, centres level, a gap of at most
    ``CHAIN_MAX_GAP`` heights), joined into one line: the detector splits a plate's groups at their
    spaces (Indian ``TS 09 EB 1458``, Ukrainian ``AA 1234 BB``) and a fragment alone reads as a shorter
    plate. Each chain of 2+ boxes gives one candidate (corners of its first and last box, lowest score),
    plate-shaped ones only, widest first."""
    items = sorted((b for b in boxes if b.height >= 4), key=lambda b: float(b.corners[:, 0].min()))
    nxt: dict[int, int] = {}
    for i, a in enumerate(items):
        ax2, acy, ah = float(a.corners[:, 0].max()), float(a.corners[:, 1].mean()), a.height
        best = None
        for j in range(i + 1, len(items)):
            b = items[j]
            gap = float(b.corners[:, 0].min()) - ax2
            if not (0.6 <= b.height / ah <= 1.6) or abs(float(b.corners[:, 1].mean()) - acy) > 0.35 * ah:
                continue
            if -0.3 * ah <= gap <= CHAIN_MAX_GAP * ah and (best is None or gap < best[0]):
                best = (gap, j)
        if best is not None and best[1] not in nxt.values():
            nxt[i] = best[1]
    out = []
    starts = [i for i in nxt if i not in nxt.values()]
    for i in starts:
        chain = [i]
        while chain[-1] in nxt and len(chain) < 5:
            chain.append(nxt[chain[-1]])
        first, last = items[chain[0]], items[chain[-1]]
        corners = np.array([first.corners[0], last.corners[1], last.corners[2], first.corners[3]], np.float32)
        h = (np.linalg.norm(corners[3] - corners[0]) + np.linalg.norm(corners[2] - corners[1])) / 2
        aspect = np.linalg.norm(corners[1] - corners[0]) / max(h, 1e-6)
        if MIN_ASPECT <= aspect <= MAX_ASPECT:
            out.append((corners, min(items[k].score for k in chain)))
    return sorted(out, key=lambda t: -float(np.linalg.norm(t[0][1] - t[0][0])))[:CHAIN_MAX]


def _two_rows(boxes: list) -> list[tuple[np.ndarray, float, tuple[np.ndarray, np.ndarray]]]:
    """Pairs of text lines stacked as the two rows of one plate (Indian, Ukrainian and many square rear
    plates: ``TS09`` over ``EB1458``): the lower line starts below the upper one within ``TWO_ROW_MAX_GAP``
    heights, similar heights, overlapping horizontally over most of the narrower line. Read as one line
    (the two rectified rows side by side), so the text is the top row then the bottom row."""
    items = [b for b in boxes if b.height >= 4]
    out = []
    for a in items:
        ax1, ax2 = float(a.corners[:, 0].min()), float(a.corners[:, 0].max())
        ay2 = float(a.corners[:, 1].max())
        for b in items:
            if b is a:
                continue
            bx1, bx2 = float(b.corners[:, 0].min()), float(b.corners[:, 0].max())
            gap = float(b.corners[:, 1].min()) - ay2
            overlap = min(ax2, bx2) - max(ax1, bx1)
            if (0.5 <= b.height / a.height <= 2.0 and -0.45 * a.height <= gap <= TWO_ROW_MAX_GAP * a.height
                    and overlap >= 0.5 * min(ax2 - ax1, bx2 - bx1)):
                corners = np.array([[min(ax1, bx1), float(a.corners[:, 1].min())],
                                    [max(ax2, bx2), float(a.corners[:, 1].min())],
                                    [max(ax2, bx2), float(b.corners[:, 1].max())],
                                    [min(ax1, bx1), float(b.corners[:, 1].max())]], np.float32)
                # rows of one plate line up: the closer their widths and left edges, the likelier
                fit = abs((ax2 - ax1) - (bx2 - bx1)) / max(ax2 - ax1, bx2 - bx1) + abs(ax1 - bx1) / a.height
                out.append((fit, corners, min(a.score, b.score), (a.corners, b.corners)))
    return [o[1:] for o in sorted(out, key=lambda o: o[0])[:CHAIN_MAX]]


def _two_row_crop(bgr: np.ndarray, rows: tuple[np.ndarray, ...]) -> np.ndarray:
    parts = [rectify(bgr, c, height=CROP_HEIGHT, margin=0.12, margin_x=TEXT_MARGIN_X) for c in rows]
    return np.ascontiguousarray(np.concatenate(parts, axis=1))


def _trim_to_format(folded: str, chars: list[CharRead]) -> tuple[str, list[CharRead]]:
    """A read of 7+ characters that fits no current national format but does once one or two characters are
    dropped at its ends (the EU band's country letters, a French department band, a screw read as a
    character) is trimmed; among the cuts, the one whose shape is most likely (current format first)."""
    prior = shape_prior(folded, folded=True)
    n = len(folded)
    if not folded or prior == 0.0 or n < 7:  # short reads are not trimmed: a real character would go
        return folded, chars
    best, best_prior = (folded, chars), (prior if prior is not None else -99.0)
    for cut in ((1, 0), (0, 1), (2, 0), (1, 1), (0, 2)):
        part = folded[cut[0]: n - cut[1]]
        p = shape_prior(part, folded=True)
        if len(part) >= 6 and p is not None and p != GENERIC_PRIOR and p > best_prior:
            best, best_prior = (part, chars[cut[0]: n - cut[1]]), p
    return best


def plate_features(bgr: np.ndarray, cand: LatinCandidate, text: LatinText, crop: np.ndarray,
                   support: float) -> dict[str, float]:
    """What makes a read line look like a plate rather than other text, named for the evidence:

    national / current (matches a national format / a current one, not only a rare or the generic
    shape), confidence (weakest character), support (the plate detector's score on an overlapping box),
    log_aspect (plates are short lines; phone numbers, dates and VINs are long), contrast (glyphs against
    their background, Otsu classes of the crop), ring_light / ring_yellow (the band around the line: plates
    are white or yellow), eu_band (blue pixels just left of the line: the EU country band), n_chars,
    twin_flips (O/0 or I/1 spelt against the recogniser's preference to fit a format)."""
    gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    t, _ = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    hi, lo = gray[gray > t], gray[gray <= t]
    contrast = (float(hi.mean()) - float(lo.mean())) / 255 if hi.size and lo.size else 0.0
    # the line with a margin of 0.45 of its height above and below and 1.2 heights to the left
    wide = cv2.cvtColor(rectify(bgr, cand.corners, height=CROP_HEIGHT, margin=0.45, margin_x=1.2),
                        cv2.COLOR_BGR2HSV)
    band = 8  # rows of the ring above and below the line (of 48 + 2 * 22)
    ring = np.concatenate([wide[:band].reshape(-1, 3), wide[-band:].reshape(-1, 3)]).astype(np.float32)
    left = wide[band:-band, : int(1.2 * CROP_HEIGHT * 0.8)].reshape(-1, 3).astype(np.float32)
    blue = (left[:, 0] >= 100) & (left[:, 0] <= 130) & (left[:, 1] >= 90) & (left[:, 2] >= 40)
    yellow = (ring[:, 0] >= 18) & (ring[:, 0] <= 35) & (ring[:, 1] >= 90) & (ring[:, 2] >= 100)
    c = cand.corners
    aspect = float(np.linalg.norm(c[1] - c[0]) / max(np.linalg.norm(c[3] - c[0]), 1e-6))
    return {"national": float(text.national), "current": float(shape_prior(text.text) == 0.0),
            "confidence": float(text.confidence), "support": float(support),
            "log_aspect": float(np.log(max(aspect, 0.1))), "contrast": contrast,
            "ring_light": float(np.median(ring[:, 2])) / 255, "ring_yellow": float(yellow.mean()),
            "eu_band": float(blue.mean()) if blue.size else 0.0, "n_chars": float(len(text.text)),
            "twin_flips": float(text.twin_flips)}


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over the smaller of two boxes (axis-aligned hulls of the corners)."""
    ax1, ay1 = a.min(0)
    ax2, ay2 = a.max(0)
    bx1, by1 = b.min(0)
    bx2, by2 = b.max(0)
    iw = max(0.0, min(ax2, bx2) - max(ax1, bx1))
    ih = max(0.0, min(ay2, by2) - max(ay1, by1))
    small = min((ax2 - ax1) * (ay2 - ay1), (bx2 - bx1) * (by2 - by1))
    return float(iw * ih / small) if small > 0 else 0.0


def box_of(corners: np.ndarray) -> tuple[float, float, float, float]:
    x1, y1 = np.asarray(corners).min(0)
    x2, y2 = np.asarray(corners).max(0)
    return float(x1), float(y1), float(x2), float(y2)

