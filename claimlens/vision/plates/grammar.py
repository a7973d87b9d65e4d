"""Chinese licence-plate grammar (GA 36-2018 layouts) for constrained decoding and validation.

Layouts (position sets, one per character):

* ordinary (blue/yellow/black/white): province, issuing-office letter, 5 serial characters (letters and
  digits, never I or O);
* special suffix: province, letter, 4 serial characters, then 警 (police), 学 (driving school), 挂
  (trailer), 港 / 澳 (Hong Kong / Macau cross-border), 领 (consulate);
* new-energy (green, 8 characters): small vehicles province, letter, D/F, a letter or digit, 4 digits;
  large vehicles province, letter, 5 digits, D/F;
* embassy: 使 followed by 6 digits.

Ordinary serials carry at most 3 letters (``MAX_SERIAL_LETTERS``): the grammar enforces it, which rejects
text that is not a plate (a badge reading ``TURAN`` after a province-like glyph) on non-plate photos.

Military (WJ, army) plates and the 2-row layouts are not modelled: a read of such a plate fails the
grammar and is reported as unparsed, not forced into a wrong layout.
"""

from __future__ import annotations

import re
from functools import lru_cache

PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I, no O
DIGITS = "0123456789"
SERIAL = LETTERS + DIGITS
SUFFIXES = "警学挂港澳领"
NEV_TYPES = "DF"

P, L, X, D, S, E = set(PROVINCES), set(LETTERS), set(SERIAL), set(DIGITS), set(SUFFIXES), set(NEV_TYPES)

TEMPLATES: dict[str, tuple[frozenset[str], ...]] = {
    "ordinary": tuple(map(frozenset, (P, L, X, X, X, X, X))),
    "special": tuple(map(frozenset, (P, L, X, X, X, X, S))),
    "nev_small": tuple(map(frozenset, (P, L, E, X, D, D, D, D))),
    "nev_large": tuple(map(frozenset, (P, L, D, D, D, D, D, E))),
    "embassy": tuple(map(frozenset, ({"使"}, D, D, D, D, D, D))),
}

MAX_SERIAL_LETTERS = 3

ALPHABET = frozenset(PROVINCES + SERIAL + SUFFIXES + "使")

# characters OCR confuses on plates, both ways; used for repair where the grammar forbids the read one
CONFUSABLE: dict[str, str] = {
    "O": "0D", "0": "DQ", "D": "0", "I": "1", "1": "7", "7": "1", "8": "B", "B": "8", "Q": "0",
    "Z": "2", "2": "Z", "S": "5", "5": "S", "G": "6", "6": "G", "T": "7", "U": "V", "V": "U",
}

_PLATE_RE = re.compile(
    rf"^(?:[{PROVINCES}][{LETTERS}][{SERIAL}]{{5}}|[{PROVINCES}][{LETTERS}][{SERIAL}]{{4}}[{SUFFIXES}]|[{PROVINCES}][{LETTERS}][DF][{SERIAL}]\d{{4}}"
    rf"|[{PROVINCES}][{LETTERS}]\d{{5}}[DF]|使\d{{6}})$"
)


# traditional forms the recogniser may output for the simplified characters printed on plates
TRADITIONAL = {"粵": "粤", "蘇": "苏", "滬": "沪", "遼": "辽", "魯": "鲁", "閩": "闽", "貴": "贵", "陝": "陕",
               "晉": "晋", "贛": "赣", "雲": "云", "瓊": "琼", "寧": "宁", "學": "学", "掛": "挂", "領": "领",
               "黒": "黑"}
_TRAD = str.maketrans(TRADITIONAL)


def normalise(text: str) -> str:
    """Upper case, simplified characters, without separators and spaces (the dot/hyphen printed between the
    office letter and the serial)."""
    return re.sub(r"[\s·•.\-_:]", "", (text or "").translate(_TRAD)).upper()


def _letters_ok(plate: str) -> bool:
    return sum(c in LETTERS for c in plate[2:7]) <= MAX_SERIAL_LETTERS


def is_valid(plate: str) -> bool:
    plate = normalise(plate)
    return bool(_PLATE_RE.match(plate)) and _letters_ok(plate)


def layout(plate: str) -> str | None:
    """The layout name a plate matches (``ordinary``, ``nev_small``, ...), None when it matches none."""
    plate = normalise(plate)
    if not _letters_ok(plate):
        return None
    for name, sets in TEMPLATES.items():
        if len(plate) == len(sets) and all(c in s for c, s in zip(plate, sets)):
            return name
    return None


@lru_cache(maxsize=4096)
def valid_prefix(prefix: str) -> bool:
    if not _letters_ok(prefix):
        return False
    return any(len(prefix) <= len(sets) and all(c in s for c, s in zip(prefix, sets))
               for sets in TEMPLATES.values())


@lru_cache(maxsize=4096)
def next_chars(prefix: str) -> str:
    """Characters the grammar allows right after ``prefix`` ("" when no layout continues it)."""
    out: set[str] = set()
    n = len(prefix)
    for sets in TEMPLATES.values():
        if n < len(sets) and all(c in s for c, s in zip(prefix, sets)):
            out |= sets[n]
    if 2 <= n < 7 and sum(c in LETTERS for c in prefix[2:]) >= MAX_SERIAL_LETTERS:
        out -= L
    return "".join(sorted(out))


def complete(text: str) -> bool:
    return layout(text) is not None


def colour_hint(plate: str) -> str:
    """'green' for new-energy layouts, else 'blue/yellow/other' (colour itself is not measured)."""
    return "green" if (layout(plate) or "").startswith("nev") else "other"


def levenshtein(a: str, b: str) -> int:
    """Edit distance (substitutions, insertions, deletions): the bench's character accuracy and the check's
    one-edit near-miss."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]
