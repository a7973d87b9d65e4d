"""The generated Latin plate suite (claimlens.datasets.plates_latin_suite): CSV layout, geometry, national
formats and determinism. Needs ../shared/data/car_damage_roboflow (skipped without it); about 2 s."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from PIL import Image

from claimlens.datasets import plates_latin_suite as pls
from tests.conftest import shared_data

COLUMNS = ["image", "plate_text", "country", "style", "x1", "y1", "x2", "y2",
           "tlx", "tly", "trx", "try", "brx", "bry", "blx", "bly", "distractors"]

# The national formats, written from the rules (not from the generator's tables): registration characters
# only, no separators, no band letters, no state words.
FORMATS = {
    # AB12CDE: area letters without I, Q, Z; age digits; 3 letters without I, Q
    "GB": r"[A-HJ-PR-Y]{2}[0-9]{2}[A-HJ-PR-Z]{3}",
    # district (1-3) + letters (1-2) + 1-4 digits without a leading 0, 8 characters at most (checked below)
    "DE": r"[A-Z]{2,5}[1-9][0-9]{0,3}",
    # AB-123-CD without I, O, U; 000 is not issued
    "FR": r"[A-HJ-NP-TV-Z]{2}(?!000)[0-9]{3}[A-HJ-NP-TV-Z]{2}",
    # AB 123 CD without I, O, Q, U
    "IT": r"[A-HJ-NPR-TV-Z]{2}[0-9]{3}[A-HJ-NPR-TV-Z]{2}",
    # 1234 BCD: consonants only, no Q, no Ñ
    "ES": r"[0-9]{4}[BCDFGHJKLMNPRSTVWXYZ]{3}",
    # 12-ABC-3 or AB-123-C; consonants (no C, M, Q, W) only
    "NL": r"[0-9]{2}[BDFGHJKLNPRSTVXZ]{3}[0-9]|[BDFGHJKLNPRSTVXZ]{2}[0-9]{3}[BDFGHJKLNPRSTVXZ]",
    # WA 12345 / WA 1234X
    "PL": r"[A-Z]{2}[0-9]{4}[0-9A-Z]",
    # California 7ABC123 or generic ABC1234 (no I, O, Q)
    "US": r"[1-9][A-HJ-NPR-Z]{3}[0-9]{3}|[A-HJ-NPR-Z]{3}[0-9]{4}",
    # A123BC + region 2-3 digits; Latin letters that look Cyrillic
    "RU": r"[ABEKMHOPCTYX](?!000)[0-9]{3}[ABEKMHOPCTYX]{2}[0-9]{2,3}",
}
STYLE_COUNTRY = {"uk_front": "GB", "uk_rear": "GB", "de": "DE", "fr": "FR", "it": "IT", "es": "ES",
                 "nl": "NL", "pl": "PL", "us_ca": "US", "us_generic": "US", "ru": "RU"}


def _rows(labels: Path) -> tuple[list[str], list[dict[str, str]]]:
    with labels.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], list[dict[str, str]]]:
    src = shared_data("car_damage_roboflow")
    out = tmp_path_factory.mktemp("latin_a")
    labels = pls.generate(out, n=12, negatives=3, seed=0, sources=src)
    assert labels == out / "labels.csv"
    cols, rows = _rows(labels)
    return out, cols, rows


def test_columns_and_counts(suite) -> None:
    out, cols, rows = suite
    assert cols == COLUMNS
    assert len(rows) == 15
    assert sum(1 for r in rows if r["plate_text"]) == 12
    # 12 plates in equal turns over the 11 styles: every style is there
    assert {r["style"] for r in rows if r["plate_text"]} == set(STYLE_COUNTRY)
    for r in rows:
        assert re.fullmatch(r"images/\d{5}\.jpg", r["image"])
        path = out / r["image"]
        assert path.is_file()
        with Image.open(path) as im:
            assert im.format == "JPEG"
            assert 960 <= max(im.size) <= 1600


def test_positive_geometry(suite) -> None:
    out, _, rows = suite
    for r in (r for r in rows if r["plate_text"]):
        with Image.open(out / r["image"]) as im:
            w, h = im.size
        x1, y1, x2, y2 = (int(r[k]) for k in ("x1", "y1", "x2", "y2"))
        assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h, r
        corners = [(float(r[f"{c}x"]), float(r[f"{c}y"])) for c in ("tl", "tr", "br", "bl")]
        for x, y in corners:
            assert x1 <= x <= x2 and y1 <= y <= y2, (r["image"], x, y)
        # TL TR BR BL order: top corners above bottom ones, left ones left of right ones
        (tlx, tly), (trx, try_), (brx, bry), (blx, bly) = corners
        assert tly < bly and try_ < bry and tlx < trx and blx < brx, r
        # 6-28 % of the image width (nominal; yaw shortens it) and on the lower part of the photo
        assert 0.03 * w <= x2 - x1 <= 0.35 * w, r
        assert y1 >= 0.40 * h, r


def test_plate_text_formats(suite) -> None:
    _, _, rows = suite
    for r in (r for r in rows if r["plate_text"]):
        text, country = r["plate_text"], r["country"]
        assert STYLE_COUNTRY[r["style"]] == country, r
        assert text == text.upper() and " " not in text and "-" not in text, r
        assert re.fullmatch(FORMATS[country], text), (country, text)
        if country == "DE":
            assert len(text) <= 8, text
        if r["style"] == "us_ca":
            assert re.fullmatch(r"[1-9][A-Z]{3}[0-9]{3}", text), text
        if r["style"] == "us_generic":
            assert re.fullmatch(r"[A-Z]{3}[0-9]{4}", text), text


def test_negatives_and_distractors(suite) -> None:
    _, _, rows = suite
    negatives = [r for r in rows if not r["plate_text"]]
    assert len(negatives) == 3
    for r in negatives:
        assert all(r[k] == "" for k in COLUMNS[1:-1]), r
        # every negative carries 1-3 distractor texts
        assert 1 <= len(r["distractors"].split("|")) <= 3, r


def test_same_seed_same_suite(suite, tmp_path: Path) -> None:
    out, _, rows = suite
    src = shared_data("car_damage_roboflow")
    labels = pls.generate(tmp_path / "b", n=12, negatives=3, seed=0, sources=src)
    assert labels.read_bytes() == (out / "labels.csv").read_bytes()
    first = rows[0]["image"]
    assert (tmp_path / "b" / first).read_bytes() == (out / first).read_bytes()
    other = pls.generate(tmp_path / "c", n=12, negatives=3, seed=1, sources=src)
    assert other.read_bytes() != labels.read_bytes()


def test_hershey_fallback_without_fonts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = shared_data("car_damage_roboflow")
    monkeypatch.setattr(pls, "FONT_DIR", tmp_path / "no_fonts")
    _, rows = _rows(pls.generate(tmp_path / "h", n=2, negatives=0, seed=3, sources=src))
    assert len(rows) == 2 and all(re.fullmatch(FORMATS[r["country"]], r["plate_text"]) for r in rows)


def test_missing_sources_named(tmp_path: Path) -> None:
    missing = tmp_path / "car_damage_roboflow"
    with pytest.raises(FileNotFoundError, match="car_damage_roboflow"):
        pls.generate(tmp_path / "out", n=1, negatives=0, sources=missing)
