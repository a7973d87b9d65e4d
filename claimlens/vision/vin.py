"""Vehicle identification numbers (VIN, 车架号 / 车辆识别代号): rules, constrained reading, correction.

Rules (ISO 3779, 49 CFR 565, GB 16735):

* 17 characters from ``0-9 A-Z`` without ``I``, ``O``, ``Q``;
* position 9 is a check digit in North American VINs (49 CFR 565) and in Chinese VINs (GB 16735):
  transliterate letters (A-H = 1-8, J-N = 1-5, P = 7, R = 9, S-Z = 2-9), weight positions by
  ``8 7 6 5 4 3 2 10 0 9 8 7 6 5 4 3 2``, sum mod 11, 10 is written ``X``. Most European manufacturers do
  not compute it (a ``Z`` filler or any character there), so a failed check digit alone is NEVER a fraud
  signal; it is only used to pick between the recogniser's alternatives;
* positions 1-3 are the World Manufacturer Identifier (table in ``plates/data/wmi.csv``);
* positions 14-17 are digits (ISO 3779, the serial number of the vehicle indicator section);
* position 10 is the model-year code in North American and Chinese VINs (and by convention in most
  others): ``A``-``Y`` (no I, O, Q, U, Z) and ``1``-``9`` in a 30-year cycle (``A`` = 1980 or 2010).

Reading (:func:`read_vin`): PP-OCRv6 text detection finds the text lines of the photo; every line wide
enough to hold 17 characters is rectified and recognised in one batch; tokens of 15-19 characters (or
17-character windows of longer tokens) are decoded under the VIN grammar (CTC beam search allowed only the
VIN alphabet, with I -> 1, O/Q -> 0 folded into the allowed look-alike); the best candidate is then
corrected with the check digit where that is safe (:func:`correct_check_digit`).
"""

from __future__ import annotations

import csv
import itertools
import math
import re
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from claimlens.vision.plates.ocr import (
    BASE_MERGE,
    CharRead,
    TextBox,
    TextDetector,
    TextRecognizer,
    align_chars,
    ctc_constrained_decode,
    fold_probs,
    rectify,
    shared_detector,
    shared_recognizer,
)

VIN_ALPHABET = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"
VIN_LENGTH = 17
NUMERIC_TAIL = 4  # ISO 3779: positions 14-17 are digits
TRANSLITERATION: dict[str, int] = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9))), **dict(zip("JKLMN", range(1, 6))), "P": 7, "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10))),
}
WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
YEAR_CODES = "ABCDEFGHJKLMNPRSTVWXY123456789"  # 1980 + index (and + 30 per cycle)
_VIN_RE = re.compile(r"^[0-9A-HJ-NPR-Z]{17}$")

# regions whose VINs carry a computed check digit: North America (1-5) and China (L)
CHECK_DIGIT_REGIONS = ("1", "2", "3", "4", "5", "L")
# folding of the recogniser's output for VINs: separators to blank, lower to upper, I -> 1, O/Q -> 0
VIN_MERGE = {**BASE_MERGE, "I": "1", "i": "1", "l": "1", "|": "1", "O": "0", "o": "0", "Q": "0", "q": "0"}
# characters a recogniser confuses on stamped / printed VINs (used as extra candidates for correction)
CONFUSABLE: dict[str, str] = {
    "0": "8DU", "1": "7T", "2": "Z7", "3": "8", "4": "A", "5": "S6", "6": "G58", "7": "1T2", "8": "B036",
    "9": "8", "A": "4", "B": "8", "C": "G", "D": "0", "E": "F", "F": "E", "G": "6C", "H": "N", "J": "1",
    "K": "X", "L": "1", "M": "N", "N": "MH", "P": "R", "R": "P", "S": "5", "T": "1", "U": "V0", "V": "UY",
    "W": "V", "X": "K", "Y": "V", "Z": "2",
}
# correction operating point (measured on datasets/vin_labels.csv, docs/plates_vins.md): a substitution is
# accepted when the recogniser gave the new character at least this probability at that position ...
CORRECTION_MIN_ALT_PROB = 0.02
# ... and the character it replaces was read with at most this probability
CORRECTION_MAX_ORIG_PROB = 0.995
# a check-digit correction in a region that computes it may cost at most this much (sum over the changed
# characters of log(p_read / p_new)): a misread that breaks the check digit is far likelier than a VIN
# from such a region without a valid one, but not by more than ~50 : 1 against the recogniser's own odds
CORRECTION_MAX_COST = math.log(50.0)
# a WMI repair may cost at most this much (sum of log(p_read / p_new) over its changed characters)
WMI_MAX_COST = math.log(1000.0)
# outside the check-digit regions a check-digit correction is applied only when it costs at most this
# (the recogniser rated the new character at least half as likely as the one it read)
CHEAP_FIX_COST = math.log(2.0)

_WMI_PATH = Path(__file__).resolve().parent / "plates" / "data" / "wmi.csv"


# ------------------------------------------------------------------------------------------ pure rules


def normalise(text: str) -> str:
    """Upper case without spaces and separators; I/O/Q become 1/0/0 (they never occur in a VIN)."""
    text = re.sub(r"[\s\-_.:*·]", "", (text or "").upper())
    return text.translate(str.maketrans({"I": "1", "O": "0", "Q": "0"}))


def is_well_formed(vin: str) -> bool:
    return bool(_VIN_RE.match(vin or ""))


def check_digit(vin: str) -> str:
    """The check digit (``0``-``9`` or ``X``) the 49 CFR 565 rule gives for a 17-character VIN."""
    if len(vin) != VIN_LENGTH or any(c not in TRANSLITERATION for c in vin):
        raise ValueError(f"not a 17-character VIN: {vin!r}")
    total = sum(TRANSLITERATION[c] * w for c, w in zip(vin, WEIGHTS)) % 11
    return "X" if total == 10 else str(total)


def check_digit_ok(vin: str) -> bool:
    return is_well_formed(vin) and check_digit(vin) == vin[8]


def check_digit_expected(vin: str) -> bool:
    """True where the VIN's region computes the check digit (a failure there is a probable misread)."""
    return bool(vin) and vin[0] in CHECK_DIGIT_REGIONS


@dataclass(frozen=True)
class WmiInfo:
    wmi: str
    manufacturer: str
    makes: tuple[str, ...]
    country: str


@lru_cache(maxsize=1)
def wmi_table() -> dict[str, WmiInfo]:
    with open(_WMI_PATH, encoding="utf-8") as f:
        return {row["wmi"]: WmiInfo(row["wmi"], row["manufacturer"], tuple(row["makes"].split("|")), row["country"])
                for row in csv.DictReader(f)}


_REGION_BY_FIRST = {
    **{c: "Africa" for c in "ABCDEFGH"}, **{c: "Asia" for c in "JKLMNPR"}, **{c: "Europe" for c in "STUVWXYZ"},
    **{c: "North America" for c in "12345"}, **{c: "Oceania" for c in "67"}, **{c: "South America" for c in "89"},
}
_COUNTRY_BY_PREFIX = {
    "J": "Japan", "KL": "South Korea", "KM": "South Korea", "KN": "South Korea", "KP": "South Korea",
    "L": "China", "MA": "India", "MR": "Thailand", "S": "United Kingdom", "TM": "Czech Republic",
    "TR": "Hungary", "TS": "Hungary", "U5": "Slovakia", "U6": "Slovakia", "VF": "France", "VR": "France",
    "VS": "Spain", "VW": "Spain", "W": "Germany", "X": "Russia", "YS": "Sweden", "YV": "Sweden", "Z": "Italy",
    "1": "United States", "4": "United States", "5": "United States", "2": "Canada", "3": "Mexico",
    "9B": "Brazil", "6": "Australia",
}


def decode_wmi(vin: str) -> dict:
    """Manufacturer, makes, country and region from the WMI (manufacturer None when not in the table)."""
    info = wmi_table().get(vin[:3])
    country = info.country if info else next(
        (v for k, v in sorted(_COUNTRY_BY_PREFIX.items(), key=lambda kv: -len(kv[0])) if vin.startswith(k)), None)
    return {"wmi": vin[:3], "manufacturer": info.manufacturer if info else None,
            "makes": list(info.makes) if info else [], "country": country,
            "region": _REGION_BY_FIRST.get(vin[:1])}


def model_years(vin: str, *, latest: int | None = None) -> list[int]:
    """Candidate model years of the position-10 code (newest first, none later than ``latest`` = next
    year). North American passenger VINs disambiguate the cycle by position 7 (digit: 1980-2009, letter:
    2010-2039); elsewhere both cycles are returned. Empty when position 10 is not a year code."""
    latest = latest or date.today().year + 1
    if len(vin) < 10 or vin[9] not in YEAR_CODES:
        return []
    base = 1980 + YEAR_CODES.index(vin[9])
    years = [y for y in (base + 60, base + 30, base) if 1980 <= y <= latest]
    if vin[0] in "12345" and len(vin) >= 7:
        cycle = [y for y in years if (y >= 2010) == vin[6].isalpha()]
        years = cycle or years
    return years


def make_matches(vin: str, declared_make: str | None) -> bool | None:
    """Does the WMI's make list contain the declared make? None when either side is unknown."""
    if not declared_make:
        return None
    info = wmi_table().get(vin[:3])
    if info is None:
        return None
    make = canonical_make(declared_make)
    if not make:
        return None
    return any(make == m or make.startswith(m) or m.startswith(make) for m in info.makes)


_MAKE_ALIASES = {
    "vw": "volkswagen", "大众": "volkswagen", "一汽大众": "volkswagen", "上汽大众": "volkswagen",
    "mercedes": "mercedes-benz", "benz": "mercedes-benz", "奔驰": "mercedes-benz", "梅赛德斯-奔驰": "mercedes-benz",
    "宝马": "bmw", "奥迪": "audi", "丰田": "toyota", "本田": "honda", "日产": "nissan", "尼桑": "nissan",
    "别克": "buick", "雪佛兰": "chevrolet", "chevy": "chevrolet", "凯迪拉克": "cadillac", "福特": "ford",
    "现代": "hyundai", "起亚": "kia", "比亚迪": "byd", "吉利": "geely", "长城": "great wall", "哈弗": "haval",
    "特斯拉": "tesla", "马自达": "mazda", "斯柯达": "skoda", "škoda": "skoda", "雷克萨斯": "lexus",
    "沃尔沃": "volvo", "标致": "peugeot", "雪铁龙": "citroen", "citroën": "citroen", "奇瑞": "chery",
    "长安": "changan", "五菱": "wuling", "荣威": "roewe", "名爵": "mg", "保时捷": "porsche", "路虎": "land rover",
    "捷豹": "jaguar", "雷诺": "renault", "三菱": "mitsubishi", "斯巴鲁": "subaru", "铃木": "suzuki",
    "欧宝": "opel", "菲亚特": "fiat", "红旗": "hongqi", "英菲尼迪": "infiniti", "林肯": "lincoln", "jeep": "jeep",
    "吉普": "jeep", "克莱斯勒": "chrysler", "道奇": "dodge", "mini": "mini", "smart": "smart", "西雅特": "seat",
    "达契亚": "dacia", "拉达": "lada", "vaz": "lada", "ваз": "lada", "лада": "lada",
}


def canonical_make(make: str) -> str:
    text = re.sub(r"\s+", " ", (make or "").strip().lower())
    return _MAKE_ALIASES.get(text, text)


# ------------------------------------------------------------------------------------------- correction


@dataclass
class Correction:
    vin: str
    changes: list[tuple[int, str, str]]  # (position 1-based, from, to)
    cost: float  # sum of log(p_orig / p_new) over the changed positions (>= 0 means less likely than read)


def correct_check_digit(vin: str, chars: list[CharRead], *, max_changes: int = 2) -> Correction | None:
    """The most probable read that satisfies the check digit, changing at most ``max_changes`` characters
    to alternatives the recogniser offered (or look-alikes of :data:`CONFUSABLE` at a small floor
    probability). None when the read already satisfies it or no admissible change does."""
    if not is_well_formed(vin) or check_digit_ok(vin) or len(chars) != VIN_LENGTH:
        return None
    options: list[list[tuple[str, float]]] = []
    for i, cr in enumerate(chars):
        p0 = max(cr.prob, 1e-6)
        alts: dict[str, float] = {}
        if cr.prob <= CORRECTION_MAX_ORIG_PROB:
            for c, p in cr.alternatives.items():
                if c != cr.char and c in TRANSLITERATION and p >= CORRECTION_MIN_ALT_PROB:
                    alts[c] = p
            for c in CONFUSABLE.get(cr.char, ""):
                if c != cr.char and c not in alts:
                    alts[c] = CORRECTION_MIN_ALT_PROB * 0.5
        options.append(sorted(((c, math.log(p0 / p)) for c, p in alts.items()), key=lambda kv: kv[1]))
    best: Correction | None = None
    base = list(vin)
    max_cost = CORRECTION_MAX_COST
    for i in range(VIN_LENGTH):
        for c, cost in options[i]:
            cand = base.copy()
            cand[i] = c
            text = "".join(cand)
            if cost <= max_cost and check_digit_ok(text) and (best is None or cost < best.cost):
                best = Correction(text, [(i + 1, vin[i], c)], cost)
    if max_changes >= 2:
        for i in range(VIN_LENGTH):
            for j in range(i + 1, VIN_LENGTH):
                for ci, cost_i in options[i][:3]:
                    for cj, cost_j in options[j][:3]:
                        cost = cost_i + cost_j
                        if cost > max_cost or (best is not None and cost >= best.cost):
                            continue
                        cand = base.copy()
                        cand[i], cand[j] = ci, cj
                        text = "".join(cand)
                        if check_digit_ok(text):
                            best = Correction(text, [(i + 1, vin[i], ci), (j + 1, vin[j], cj)], cost)
    return best


# WMIs whose VINs fill positions 4-6 with "ZZZ" (Volkswagen group Europe): a read "Z2Z" / "Z22" there is
# the filler misread
ZZZ_FILLER_WMIS = frozenset({"WVW", "WVG", "WV1", "WV2", "WAU", "WA1", "WUA", "XW8", "WP0", "WP1", "VSS", "TRU"})


def correct_wmi(vin: str, chars: list[CharRead]) -> Correction | None:
    """When the first three characters are no known WMI, the cheapest known WMI reachable by changing one
    or two of them to characters the recogniser offered there (or look-alikes at a floor probability);
    then the Volkswagen-group ``ZZZ`` filler repair. None when nothing changes."""
    if len(vin) != VIN_LENGTH or len(chars) != VIN_LENGTH:
        return None
    changes: list[tuple[int, str, str]] = []
    cost = 0.0
    text = vin
    table = wmi_table()
    if vin[:3] not in table:
        best: tuple[float, str] | None = None
        for wmi in table:
            diff = [i for i in range(3) if wmi[i] != vin[i]]
            if not diff or len(diff) > 2:
                continue
            c = 0.0
            for i in diff:
                cr = chars[i]
                p_new = cr.alternatives.get(wmi[i])
                if p_new is None:
                    if wmi[i] not in CONFUSABLE.get(vin[i], "") and vin[i] not in CONFUSABLE.get(wmi[i], ""):
                        c = math.inf
                        break
                    p_new = CORRECTION_MIN_ALT_PROB * 0.5
                c += math.log(max(cr.prob, 1e-6) / p_new)
            if c < math.inf and (best is None or c < best[0]):
                best = (c, wmi)
        if best is not None and best[0] <= WMI_MAX_COST:
            cost += best[0]
            changes += [(i + 1, vin[i], best[1][i]) for i in range(3) if best[1][i] != vin[i]]
            text = best[1] + vin[3:]
    if text[:3] in ZZZ_FILLER_WMIS and text[3:6] != "ZZZ" and text[3:6].count("Z") >= 1 \
            and set(text[3:6]) <= {"Z", "2", "7"}:
        changes += [(i + 1, text[i], "Z") for i in range(3, 6) if text[i] != "Z"]
        text = text[:3] + "ZZZ" + text[6:]
    return Correction(text, changes, cost) if changes else None


# ---------------------------------------------------------------------------------------------- reading


@dataclass
class VinRead:
    """A VIN read from a photo.

    Attributes:
        vin: the final read (after correction where applied).
        raw: the grammar-constrained read before check-digit correction.
        confidence: weakest character probability of the final read (a corrected position counts with the
            probability the recogniser gave the new character).
        check_digit_ok: whether ``vin`` satisfies the 49 CFR 565 check digit.
        check_digit_expected: the WMI region computes it (North America, China).
        corrected: the positions changed by the correction.
        wmi: :func:`decode_wmi` of ``vin``; model_years: :func:`model_years`.
        corners: the text line in the photo (4 x 2, TL TR BR BL); crop: the rectified line (BGR).
        line_text: the recogniser's text for the whole line.
    """

    vin: str
    raw: str
    confidence: float
    check_digit_ok: bool
    check_digit_expected: bool
    corrected: list[tuple[int, str, str]]
    wmi: dict
    model_years: list[int]
    corners: np.ndarray
    crop: np.ndarray | None = field(default=None, repr=False)
    line_text: str = ""
    chars: list[CharRead] = field(default_factory=list, repr=False)
    score: float = 0.0

    @property
    def box(self) -> tuple[float, float, float, float]:
        c = np.asarray(self.corners)
        return (float(c[:, 0].min()), float(c[:, 1].min()), float(c[:, 0].max()), float(c[:, 1].max()))

    def as_json(self) -> dict:
        return {
            "vin": self.vin, "raw": self.raw, "confidence": round(float(self.confidence), 4),
            "check_digit_ok": self.check_digit_ok, "check_digit_expected": self.check_digit_expected,
            "corrected": [list(c) for c in self.corrected], "wmi": self.wmi, "model_years": self.model_years,
            "box": [round(v, 1) for v in self.box], "line_text": self.line_text,
            "chars": [{"char": c.char, "prob": round(c.prob, 4),
                       "alternatives": {k: round(v, 4) for k, v in list(c.alternatives.items())[:3]}}
                      for c in self.chars],
        }


def _vin_next(prefix: str) -> str:
    n = len(prefix)
    if n >= VIN_LENGTH:
        return ""
    # ISO 3779: the last four characters of the vehicle indicator section are numeric
    return "0123456789" if n >= VIN_LENGTH - NUMERIC_TAIL else VIN_ALPHABET


def _vin_complete(text: str) -> bool:
    return len(text) == VIN_LENGTH


_TOKEN_CHARS = set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def _tokens(probs: np.ndarray, chars: list[str]) -> list[tuple[str, int, int]]:
    """Greedy tokens of letters/digits: (text, first frame, last frame), split at anything else."""
    idx = probs.argmax(1)
    tokens: list[tuple[str, int, int]] = []
    cur, start, last_frame, last = "", -1, -1, 0
    for t, k in enumerate(idx):
        if k and k != last:
            c = chars[k] if k < len(chars) else ""
            if c in _TOKEN_CHARS:
                if not cur:
                    start = t
                cur += c
                last_frame = t
            else:
                if cur:
                    tokens.append((cur, start, last_frame))
                cur = ""
        elif k and k == last and cur:
            last_frame = t
        last = k
    if cur:
        tokens.append((cur, start, last_frame))
    return tokens


@dataclass
class _Raw:
    """A grammar-constrained 17-character read before any correction."""

    text: str
    chars: list[CharRead]
    logp: float
    line_text: str


class VinReader:
    """Localise and read VINs. One instance per process; sessions load lazily.

    A VIN line is rectified to height 48 and stretched to at least ``LINE_ASPECT`` : 1 (a 17-character line
    needs ~2 CTC frames per character; photos of small VIN plates give lines of 4-6 : 1). The line that
    yields the best candidate is read again at the ``TTA_ASPECTS`` and the per-position probabilities of
    the reads are averaged before the corrections (measured: docs/plates_vins.md).
    """

    LINE_ASPECT = 7.0
    TTA_ASPECTS = (6.0, 8.0)
    LINE_MARGIN = 0.05

    def __init__(self, threads: int = 1, *, det_limit: int = 960, max_lines: int = 24, tta: bool = True) -> None:
        self.rec: TextRecognizer = shared_recognizer(threads)
        self.det: TextDetector = shared_detector(threads)
        self.det_limit = det_limit
        self.max_lines = max_lines
        self.tta = tta
        self._ids: np.ndarray | None = None

    @property
    def ids(self) -> np.ndarray:
        if self._ids is None:
            self._ids = self.rec.ids(VIN_ALPHABET)
        return self._ids

    def det_limits(self, shape: tuple[int, ...]) -> list[int]:
        """Detection scales (longer side, px): the first one, then a fallback tried only when the first
        finds no VIN (the DB detector misses some lines at one scale and finds them at another)."""
        side = max(shape[:2])
        first = min(self.det_limit, max(640, int(side * 2.5)))
        second = 480 if first <= 640 else min(1280, max(960, first + 320))
        return [first, second]

    def lines(self, bgr: np.ndarray, limit: int | None = None) -> list[TextBox]:
        """Text lines that could hold 17 characters (wide enough), widest first."""
        limit = limit or self.det_limits(bgr.shape)[0]
        boxes = [b for b in self.det.detect(bgr, limit_side=limit) if b.width >= 3.0 * b.height]
        boxes.sort(key=lambda b: -b.width)
        return boxes[: self.max_lines]

    @staticmethod
    def stretch(crop_bgr: np.ndarray, aspect: float) -> np.ndarray:
        """Height 48, width at least ``aspect`` x 48 (cubic)."""
        h, w = crop_bgr.shape[:2]
        width = max(round(w * 48 / max(h, 1)), int(48 * aspect))
        return cv2.resize(crop_bgr, (width, 48), interpolation=cv2.INTER_CUBIC)

    def read_line(self, crop_bgr: np.ndarray, corners: np.ndarray | None = None) -> list[VinRead]:
        """VIN candidates in one text-line crop (e.g. from a labelled box), best first."""
        return self._read_lines([crop_bgr], [corners], max_reads=3)

    def read(self, rgb: np.ndarray, *, max_reads: int = 2) -> list[VinRead]:
        """VIN candidates in an RGB photo, best first (at most ``max_reads``, distinct VINs)."""
        bgr = np.ascontiguousarray(rgb[..., ::-1])
        for limit in self.det_limits(bgr.shape):
            boxes = self.lines(bgr, limit)
            if not boxes:
                continue
            crops = [rectify(bgr, b.corners, height=48, margin=self.LINE_MARGIN) for b in boxes]
            reads = self._read_lines(crops, [b.corners for b in boxes], max_reads=max_reads)
            if reads:
                return reads
        return []

    def _read_lines(self, crops: list[np.ndarray], corners: list[np.ndarray | None], *,
                    max_reads: int) -> list[VinRead]:
        first = self._raw_reads([self.stretch(c, self.LINE_ASPECT) for c in crops])
        scored: list[tuple[float, int, _Raw]] = []
        for i, raws in enumerate(first):
            for raw in raws:
                scored.append((_raw_score(raw), i, raw))
        scored.sort(key=lambda x: -x[0])
        out: list[VinRead] = []
        seen: set[str] = set()
        for _, i, raw in scored[: max_reads + 1]:
            if self.tta:
                raw = self._fuse_tta(crops[i], raw)
            read = self._finish(raw, crops[i], corners[i])
            if read.vin not in seen:
                seen.add(read.vin)
                out.append(read)
        out.sort(key=lambda r: -r.score)
        return out[:max_reads]

    def _raw_reads(self, crops: list[np.ndarray]) -> list[list[_Raw]]:
        out: list[list[_Raw]] = []
        for i in range(0, len(crops), 8):
            for probs in self.rec.probs(crops[i:i + 8]):
                out.append(self._candidates(probs))
        return out

    def _fuse_tta(self, crop: np.ndarray, first: _Raw) -> _Raw:
        reads = [first]
        for raws in self._raw_reads([self.stretch(crop, a) for a in self.TTA_ASPECTS]):
            if raws:
                reads.append(max(raws, key=_raw_score))
        if len(reads) == 1:
            return first
        acc: list[dict[str, float]] = [{} for _ in range(VIN_LENGTH)]
        for r in reads:
            for i, cr in enumerate(r.chars):
                alts = cr.alternatives or {cr.char: cr.prob}
                for k, v in alts.items():
                    acc[i][k] = acc[i].get(k, 0.0) + v / len(reads)
        text = "".join(max(a, key=a.get) if a else first.text[i] for i, a in enumerate(acc))
        chars = [CharRead(text[i], acc[i].get(text[i], 0.0),
                          dict(sorted(acc[i].items(), key=lambda kv: -kv[1])[:6])) for i in range(VIN_LENGTH)]
        return _Raw(text, chars, float(np.mean([r.logp for r in reads])), first.line_text)

    def _candidates(self, probs: np.ndarray) -> list[_Raw]:
        chars = self.rec.chars
        tokens = _tokens(probs, chars)
        line_text = " ".join(t for t, _, _ in tokens)
        folded = fold_probs(probs, self.rec.index, VIN_MERGE)
        spans: list[tuple[int, int]] = []
        merged = list(tokens)
        for a, b in itertools.pairwise(tokens):  # a VIN printed with a space in it
            merged.append((a[0] + b[0], a[1], b[2]))
        for text, f0, f1 in merged:
            n = len(text)
            if 15 <= n <= 19:
                spans.append((f0, f1))
            elif n > 19:  # 17-character windows of a long token (e.g. "VIN:XW8..." read without a break)
                frames = _char_frames(probs, f0, f1)
                for s in range(len(frames) - VIN_LENGTH + 1):
                    spans.append((frames[s], frames[s + VIN_LENGTH - 1]))
        out: list[_Raw] = []
        T = probs.shape[0]
        for f0, f1 in dict.fromkeys(spans):
            a, b = max(0, f0 - 1), min(T, f1 + 2)
            sub = folded[a:b]
            best = ctc_constrained_decode(sub, chars, self.ids, _vin_next, _vin_complete, beam=10, n_best=1)
            if not best or len(best[0][0]) != VIN_LENGTH:
                continue
            text, logp = best[0]
            out.append(_Raw(text, align_chars(sub, chars, text, self.ids, n_alt=6), logp, line_text))
        return out

    @staticmethod
    def _finish(raw: _Raw, crop: np.ndarray, corners: np.ndarray | None) -> VinRead:
        cr = raw.chars
        vin, changes = raw.text, []
        wfix = correct_wmi(vin, cr)
        if wfix is not None:
            vin, changes = wfix.vin, list(wfix.changes)
        if not check_digit_ok(vin):
            fix = correct_check_digit(vin, cr)
            # only where the region computes the check digit, or the change is cheap (the recogniser itself
            # hesitated there): a European VIN without a check digit must not be "corrected" into another
            if fix is not None and (check_digit_expected(fix.vin) or fix.cost <= CHEAP_FIX_COST):
                vin, changes = fix.vin, changes + fix.changes
        chars = [CharRead(c, (x.alternatives.get(c, CORRECTION_MIN_ALT_PROB * 0.5) if c != x.char else x.prob),
                          x.alternatives) for c, x in zip(vin, cr)]
        conf = min(c.prob for c in chars)
        wmi = decode_wmi(vin)
        score = _raw_score(raw) + (0.5 if wmi["manufacturer"] else 0.0) + (0.5 if check_digit_ok(vin) else 0.0)
        c = np.asarray(corners, np.float32) if corners is not None else np.array(
            [[0, 0], [crop.shape[1], 0], [crop.shape[1], crop.shape[0]], [0, crop.shape[0]]], np.float32)
        return VinRead(vin, raw.text, conf, check_digit_ok(vin), check_digit_expected(vin), changes, wmi,
                       model_years(vin), c, crop, raw.line_text, chars, score)


def _raw_score(raw: _Raw) -> float:
    conf = min((c.prob for c in raw.chars), default=0.0)
    known = raw.text[:3] in wmi_table()
    return raw.logp + math.log(max(conf, 1e-6)) + (0.5 if known else 0.0) + (0.5 if check_digit_ok(raw.text) else 0.0)


def _char_frames(probs: np.ndarray, f0: int, f1: int) -> list[int]:
    """The frame of each greedy character between ``f0`` and ``f1`` (inclusive)."""
    idx = probs.argmax(1)
    frames, last = [], 0
    for t in range(f0, f1 + 1):
        k = idx[t]
        if k and k != last:
            frames.append(t)
        last = k
    return frames


@lru_cache(maxsize=2)
def shared_vin_reader(threads: int = 1) -> VinReader:
    return VinReader(threads=threads)


def read_vin(rgb: np.ndarray, *, max_reads: int = 2) -> list[VinRead]:
    return shared_vin_reader().read(rgb, max_reads=max_reads)


def looks_like_vin_text(text: str) -> bool:
    """A token of 17 VIN-alphabet characters (after I/O/Q folding) with letters and digits."""
    t = normalise(text)
    return is_well_formed(t) and any(c.isdigit() for c in t) and any(c.isalpha() for c in t)


def vin_line_crop(bgr: np.ndarray, box_xyxy: tuple[float, float, float, float], margin: float = 0.15) -> np.ndarray:
    """A line crop from an axis-aligned box (e.g. a YOLO label), grown by ``margin`` of its height."""
    x1, y1, x2, y2 = box_xyxy
    m = (y2 - y1) * margin
    h, w = bgr.shape[:2]
    xa, ya = int(max(0, math.floor(x1 - m))), int(max(0, math.floor(y1 - m)))
    xb, yb = int(min(w, math.ceil(x2 + m))), int(min(h, math.ceil(y2 + m)))
    crop = bgr[ya:yb, xa:xb]
    if crop.shape[0] < 32:
        f = 32 / max(crop.shape[0], 1)
        crop = cv2.resize(crop, None, fx=f, fy=f, interpolation=cv2.INTER_CUBIC)
    return crop
