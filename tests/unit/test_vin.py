"""VIN rules (check digit, WMI, model year), constrained decoding, corrections, and the reader on real
photos from ../shared/data (skipped where the data is missing)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from claimlens.vision import vin as V
from claimlens.vision.plates.ocr import CharRead, ctc_constrained_decode

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
VIN_DIR = SHARED / "vin_plates" / "roboflow_vin_detection"
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("vin,digit", [
    ("1M8GDM9AXKP042788", "X"),   # the 49 CFR 565 worked example (10 -> X)
    ("11111111111111111", "1"),
    ("1HGCM82633A004352", "3"),
    ("JH4KA7561PC008269", "1"),
])
def test_check_digit_of_known_valid_vins(vin: str, digit: str) -> None:
    assert V.check_digit(vin) == digit
    assert V.check_digit_ok(vin)


def test_check_digit_rejects_changed_character_and_bad_input() -> None:
    assert not V.check_digit_ok("1M8GDM9A1KP042788")
    assert not V.check_digit_ok("1M8GDM9AXKP04278")  # 16 characters
    with pytest.raises(ValueError):
        V.check_digit("1M8GDM9AXKP04278I")


def test_well_formed_and_normalise() -> None:
    assert V.is_well_formed("WVWZZZ1KZ8M317048")
    assert not V.is_well_formed("WVWZZZ1KZ8M31704O")  # O never occurs
    assert V.normalise(" wvwzzz1kz8m3170-48 ") == "WVWZZZ1KZ8M317048"
    assert V.normalise("W0LOAHL4898O64O32") == "W0L0AHL4898064032"


def test_european_vins_without_check_digit_are_not_expected_to_carry_one() -> None:
    vin = "WVWZZZ1KZ8M317048"  # Volkswagen Europe: Z filler at position 9
    assert not V.check_digit_ok(vin)
    assert not V.check_digit_expected(vin)
    assert V.check_digit_expected("1HGCM82633A004352")
    assert V.check_digit_expected("LSVAU2180N2183294")


def test_wmi_and_make() -> None:
    info = V.decode_wmi("XW8ZZZ5NZKG223241")
    assert info["manufacturer"].startswith("Volkswagen") and info["country"] == "Russia"
    assert "skoda" in info["makes"]
    assert V.decode_wmi("ZZZ00000000000000")["manufacturer"] is None
    assert V.make_matches("WVWZZZ1KZ8M317048", "大众") is True
    assert V.make_matches("WVWZZZ1KZ8M317048", "VW") is True
    assert V.make_matches("WVWZZZ1KZ8M317048", "Toyota") is False
    assert V.make_matches("W0L0AHL4898064032", "Vauxhall") is True
    assert V.make_matches("ZZZ00000000000000", "Toyota") is None
    assert V.make_matches("WVWZZZ1KZ8M317048", None) is None


def test_model_years() -> None:
    # North America: position 7 a letter -> the 2010-2039 cycle
    assert V.model_years("1G1ZE5EU0CF133434", latest=2030) == [2012]
    # position 7 a digit -> 1980-2009
    assert V.model_years("1HGCM82633A004352", latest=2030) == [2003]
    # elsewhere both cycles, newest first, none after `latest`
    assert V.model_years("WVWZZZ1KZ8M317048", latest=2030) == [2008]
    assert V.model_years("JH4KA7561PC008269", latest=2030) == [2023, 1993]
    assert V.model_years("WVWZZZ1KZUM317048", latest=2030) == []  # U is no year code


def _chars(text: str, probs: dict[int, dict[str, float]] | None = None) -> list[CharRead]:
    out = []
    for i, c in enumerate(text):
        alts = (probs or {}).get(i, {c: 0.99})
        out.append(CharRead(c, alts.get(c, 0.99), alts))
    return out


def test_check_digit_correction_uses_the_recognisers_alternatives() -> None:
    good = "1HGCM82633A004352"
    misread = good[:5] + "B" + good[6:]  # 8 -> B at position 6
    chars = _chars(misread, {5: {"B": 0.6, "8": 0.35}})
    fix = V.correct_check_digit(misread, chars)
    assert fix is not None and fix.vin == good and fix.changes == [(6, "B", "8")]
    # already valid: nothing to do
    assert V.correct_check_digit(good, _chars(good)) is None


def test_check_digit_correction_prefers_the_cheapest_change() -> None:
    good = "1M8GDM9AXKP042788"
    misread = good[:13] + "3" + good[14:]  # 2 -> 3 at position 14, the recogniser hesitated there
    chars = _chars(misread, {13: {"3": 0.55, "2": 0.4}})
    fix = V.correct_check_digit(misread, chars)
    assert fix is not None and fix.vin == good and fix.cost < 1.0


def test_check_digit_correction_refuses_changes_the_recogniser_did_not_consider() -> None:
    good = "1M8GDM9AXKP042788"
    misread = good[:13] + "3" + good[14:]  # read with certainty: no admissible cheap change
    assert V.correct_check_digit(misread, _chars(misread)) is None


def test_wmi_correction_and_zzz_filler() -> None:
    raw = "WWWZZZ1KZ5B158883"
    fix = V.correct_wmi(raw, _chars(raw, {1: {"W": 0.6, "V": 0.3}}))
    assert fix is not None and fix.vin == "WVWZZZ1KZ5B158883"
    raw = "WVGZ221TZ4W028422"
    fix = V.correct_wmi(raw, _chars(raw))
    assert fix is not None and fix.vin == "WVGZZZ1TZ4W028422"
    assert V.correct_wmi("XW8ZZZ5NZKG223241", _chars("XW8ZZZ5NZKG223241")) is None


def test_reader_leaves_a_european_vin_without_a_cheap_fix_alone() -> None:
    raw = "WVWZZZ1KZ8M317048"  # fails the check digit, as most European VINs do
    read = V.VinReader._finish(V._Raw(raw, _chars(raw), 0.0, raw), np.zeros((48, 300, 3), np.uint8), None)
    assert read.vin == raw and read.corrected == [] and not read.check_digit_ok


def test_constrained_decoding_folds_forbidden_lookalikes() -> None:
    chars = ["", "O", "0", "I", "1", "A", "B"]
    ids = np.array([2, 4, 5, 6])  # the allowed alphabet: 0 1 A B
    # frames: A, blank, O (forbidden: its mass goes to 0), blank, I (-> 1), blank
    probs = np.full((6, 7), 0.01, np.float32)
    probs[0, 5] = 0.95
    probs[1, 0] = 0.95
    probs[2, 1], probs[2, 2] = 0.6, 0.3
    probs[3, 0] = 0.95
    probs[4, 3], probs[4, 4] = 0.7, 0.2
    probs[5, 0] = 0.95
    folded = V.fold_probs(probs, {c: i for i, c in enumerate(chars) if i}, {"O": "0", "I": "1"})
    best = ctc_constrained_decode(folded, chars, ids, lambda p: "01AB" if len(p) < 3 else "",
                                  lambda t: len(t) == 3)
    assert best[0][0] == "A01"


def test_looks_like_vin_text() -> None:
    assert V.looks_like_vin_text("WVWZZZ1KZ8M317O48")
    assert not V.looks_like_vin_text("VOLKSWAGEN")


def _labelled(n: int) -> list[tuple[Path, str]]:
    with open(REPO / "datasets" / "vin_labels_holdout.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [(VIN_DIR / r["image"], r["vin"]) for r in rows[:n]]


@pytest.mark.data
@pytest.mark.skipif(not VIN_DIR.is_dir(), reason="../shared/data/vin_plates is not on this machine")
def test_reader_on_real_vin_photos() -> None:
    import cv2

    reader = V.VinReader()
    items = _labelled(4)
    hits = 0
    for path, truth in items:
        reads = reader.read(cv2.imread(str(path))[..., ::-1])
        hits += bool(reads) and reads[0].vin == truth
    assert hits >= 3, f"{hits}/{len(items)} real VIN photos read exactly"
