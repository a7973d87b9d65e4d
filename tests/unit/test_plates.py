"""Plate grammar, constrained decoding and fusion, the ONNX loader, and the plate reader on real crops and
photos from ../shared/data (skipped where the data is missing)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from claimlens.vision import onnx as onnx_loader
from claimlens.vision.plates import grammar, is_plate_crop
from claimlens.vision.plates.detector import order_corners
from claimlens.vision.plates.ocr import CharRead, ctc_constrained_decode, fold_probs, rectify
from claimlens.vision.plates.recognize import PLATE_MERGE, _fuse

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
PLATES = SHARED / "plates_cn"


# ------------------------------------------------------------------------------------------ grammar
@pytest.mark.parametrize("plate,layout", [
    ("皖A12345", "ordinary"), ("粤B·C3D45", "ordinary"), ("京A1234警", "special"), ("粤Z1234港", "special"),
    ("粤BD12345", "nev_small"), ("粤BFA1234", "nev_small"), ("粤B12345D", "nev_large"), ("使123456", "embassy"),
])
def test_valid_layouts(plate: str, layout: str) -> None:
    assert grammar.is_valid(plate)
    assert grammar.layout(plate) == layout


@pytest.mark.parametrize("plate", ["皖AO1234", "皖A1234I", "A123456", "皖1A2345", "皖A1234", "皖ABCDE1",
                                   "皖AUWQLM", "粤BD1234X"])
def test_invalid_plates(plate: str) -> None:
    assert not grammar.is_valid(plate)


def test_next_chars_follows_the_layouts() -> None:
    assert set(grammar.next_chars("")) == set(grammar.PROVINCES) | {"使"}
    assert set(grammar.next_chars("皖")) == set(grammar.LETTERS)
    assert "O" not in grammar.next_chars("皖A") and "I" not in grammar.next_chars("皖A")
    assert set(grammar.next_chars("皖AUWQ")) == set(grammar.DIGITS)  # at most 3 letters in the serial
    assert grammar.next_chars("皖A12345") == "DF"  # only a large new-energy plate continues
    assert grammar.next_chars("使123456") == ""


def test_constrained_decoding_repairs_o_and_i_on_a_plate() -> None:
    chars = ["", "皖", "A", "O", "0", "I", "1", "2", "3", "4", "·"]
    index = {c: i for i, c in enumerate(chars) if i}
    allowed = np.array([index[c] for c in "皖A01234"])
    seq = ["皖", "A", "·", "O", "I", "2", "3", "4"]
    probs = np.full((2 * len(seq), len(chars)), 1e-4, np.float32)
    for t, c in enumerate(seq):
        probs[2 * t, index[c]] = 0.9
        probs[2 * t + 1, 0] = 0.99
    folded = fold_probs(probs, index, PLATE_MERGE)
    best = ctc_constrained_decode(folded, chars, allowed, grammar.next_chars, grammar.complete)
    assert best[0][0] == "皖A01234"


def _reads(text: str, alts: dict[int, dict[str, float]]) -> list[CharRead]:
    return [CharRead(c, alts.get(i, {c: 0.99}).get(c, 0.99), alts.get(i, {c: 0.99})) for i, c in enumerate(text)]


def test_fusion_multiplies_per_position_evidence() -> None:
    # recogniser A is unsure of the province, B of the last character: the product gets both right
    a = _reads("鄂A12345", {0: {"鄂": 0.5, "皖": 0.4}})
    b = _reads("皖A12346", {0: {"皖": 0.9, "鄂": 0.05}, 6: {"6": 0.55, "5": 0.45}})
    fused = _fuse({"ppocr_v6": ("鄂A12345", a), "clp": ("皖A12346", b)}, {})
    assert fused.text == "皖A12345" and fused.valid
    assert 0 < fused.confidence < 1


def test_fusion_without_valid_reads_is_invalid() -> None:
    fused = _fuse({"ppocr_v6": ("A123", _reads("A123", {}))}, {})
    assert not fused.valid and fused.confidence == 0.0


def test_order_corners_and_rectify() -> None:
    pts = np.array([[90, 40], [10, 40], [10, 10], [90, 10]], np.float32)  # BR, BL, TL, TR
    ordered = order_corners(pts.reshape(-1))
    assert ordered.tolist() == [[10, 10], [90, 10], [90, 40], [10, 40]]
    img = np.zeros((60, 100, 3), np.uint8)
    img[10:40, 10:90] = 255
    crop = rectify(img, ordered, height=48, aspect=3.9)
    assert crop.shape == (48, 187, 3) and crop.mean() > 200


def test_is_plate_crop() -> None:
    assert is_plate_crop((24, 94, 3)) and is_plate_crop((36, 136, 3))
    assert not is_plate_crop((1160, 720, 3)) and not is_plate_crop((256, 256, 3))


# ------------------------------------------------------------------------------------------ loader
def _manifest(tmp: Path, entries: list[dict]) -> None:
    (tmp / "MANIFEST.json").write_text(json.dumps({"models": entries}))


def test_loader_verifies_sha256_and_reports_missing(tmp_path: Path) -> None:
    (tmp_path / "m.onnx").write_bytes(b"not really onnx")
    digest = hashlib.sha256(b"not really onnx").hexdigest()
    _manifest(tmp_path, [{"name": "good", "file": "m.onnx", "sha256": digest},
                         {"name": "bad", "file": "m.onnx", "sha256": "0" * 64},
                         {"name": "gone", "file": "nope.onnx", "sha256": digest}])
    onnx_loader.clear_cache()
    assert onnx_loader.model_path("good", tmp_path) == tmp_path / "m.onnx"
    with pytest.raises(onnx_loader.ModelFileError, match="sha256 mismatch"):
        onnx_loader.model_path("bad", tmp_path)
    with pytest.raises(onnx_loader.ModelFileError, match="missing"):
        onnx_loader.model_path("gone", tmp_path)
    with pytest.raises(onnx_loader.ModelFileError, match="not listed"):
        onnx_loader.load_session("unknown", weights_dir=tmp_path)


def test_manifest_upsert_keeps_other_entries_and_keys(tmp_path: Path) -> None:
    (tmp_path / "MANIFEST.json").write_text(json.dumps(
        {"models": [{"name": "embedding", "file": "e.onnx", "sha256": "x"}], "note": "kept"}))
    onnx_loader.upsert_manifest_entry({"name": "plate", "file": "p.onnx", "sha256": "y"}, tmp_path)
    onnx_loader.upsert_manifest_entry({"name": "plate", "file": "p2.onnx", "sha256": "z"}, tmp_path)
    data = json.loads((tmp_path / "MANIFEST.json").read_text())
    assert data["note"] == "kept"
    assert {e["name"]: e["file"] for e in data["models"]} == {"embedding": "e.onnx", "plate": "p2.onnx"}


def test_providers_are_intersected_with_the_available_ones() -> None:
    assert onnx_loader.choose_providers() == ["CPUExecutionProvider"]
    assert onnx_loader.choose_providers(["NoSuchExecutionProvider", "CPUExecutionProvider"]) == \
        ["CPUExecutionProvider"]


def test_shipped_models_load_and_are_cached() -> None:
    onnx_loader.clear_cache()
    a = onnx_loader.load_session("plate_det_clp")
    assert onnx_loader.load_session("plate_det_clp") is a
    assert [i.name for i in a.get_inputs()] == ["image"]


# ------------------------------------------------------------------------------------------ real data
@pytest.mark.data
@pytest.mark.skipif(not PLATES.is_dir(), reason="../shared/data/plates_cn is not on this machine")
def test_reads_real_plate_crops() -> None:
    import cv2

    from claimlens.vision.plates import PlateReader

    reader = PlateReader()
    names = ["京PL3N67", "沪AMS087", "浙D9594H", "皖A0C333", "湘E269JY", "皖A22B20"]
    hits = 0
    for name in names:
        res = reader.read_crop(cv2.imread(str(PLATES / "crops_lprnet" / f"{name}.jpg")))
        hits += res.text == name
    assert hits >= 5, f"{hits}/{len(names)} crops read exactly"


@pytest.mark.data
@pytest.mark.skipif(not PLATES.is_dir(), reason="../shared/data/plates_cn is not on this machine")
def test_localises_and_reads_a_real_frame_and_finds_nothing_without_a_plate() -> None:
    import cv2

    from claimlens.vision.plates import PlateReader

    reader = PlateReader(latin=False)
    frame = cv2.imread(str(PLATES / "ccpd_official_samples" / "demo_1.jpg"))[..., ::-1]
    reads = reader.read(frame)
    assert len(reads) == 1 and reads[0].text == "皖AUJ299" and reads[0].confidence > 0.8
    assert reads[0].crop is not None and reads[0].crop.shape[0] == 48
    empty = cv2.imread(str(PLATES / "ccpd_official_samples" / "np" / "np0.jpg"))[..., ::-1]
    assert reader.read(empty) == []


# ------------------------------------------------------------------------------------------ registration
def test_registration_fields_from_ocr_lines() -> None:
    from claimlens.vision.plates.registration import merge_rows, parse_lines

    # OCR boxes of a certificate photo: the value of a row sits slightly higher than its label
    def box(x: float, y: float) -> np.ndarray:
        return np.array([[x, y], [x + 100, y], [x + 100, y + 30], [x, y + 30]], np.float32)

    items = [("号牌号码", box(10, 100)), ("粵B·D12345", box(200, 94)), ("车辆识别代号", box(10, 160)),
             ("LSVAU2180N2183294", box(200, 156)), ("注册日期", box(10, 220)), ("2019-05-20", box(200, 216)),
             ("发证日期", box(10, 280)), ("2019年6月1日", box(200, 278))]
    rows = merge_rows(items)
    assert rows[0] == "号牌号码 粵B·D12345"
    out = parse_lines(rows)
    assert out.plate == "粤BD12345"  # traditional 粵 folded, 8-character new-energy layout kept whole
    assert out.vin == "LSVAU2180N2183294"
    assert (out.register_date, out.issue_date) == ("2019-05-20", "2019-06-01")


def test_registration_without_fields() -> None:
    from claimlens.vision.plates.registration import parse_lines

    out = parse_lines(["中华人民共和国机动车行驶证", "住址 广东省"])
    assert out.plate is None and out.vin is None and out.register_date is None


def test_bench_split_keeps_the_rows_of_one_split(tmp_path: Path) -> None:
    from claimlens.bench.plates import read_labels

    for name in ("a.jpg", "b.jpg", "c.jpg"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "labels.csv").write_text("image,plate_text\na.jpg,AB12CDE\nb.jpg,XY65ZZT\nc.jpg,KL01CC50\n")
    splits = tmp_path / "split.csv"
    splits.write_text("image,split,group\na.jpg,dev,g1\nb.jpg,test,g2\nc.jpg,dev,g3\n")
    rows = read_labels(tmp_path, {"split": "dev", "splits": str(splits)}, "plate_text")
    assert [r["image"] for r in rows] == ["a.jpg", "c.jpg"]
    with pytest.raises(SystemExit, match="no split 'val'"):
        read_labels(tmp_path, {"split": "val", "splits": str(splits)}, "plate_text")


def test_shipped_split_files_keep_one_vehicle_on_one_side() -> None:
    import csv

    root = Path(__file__).resolve().parents[2] / "datasets"
    for name in ("plates_latin_real_split.csv", "plates_cn_split.csv"):
        with open(root / name, encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        sides: dict[str, set[str]] = {}
        for r in rows:
            sides.setdefault(r["group"], set()).add(r["split"])
        assert rows and all(len(v) == 1 for v in sides.values()), name
        assert {r["split"] for r in rows} == {"dev", "test"}
