"""The same-part suite generator (#6): the default suite stays as it was, the hard option (reinspection-like
views) is generated and its boxes follow the part. Synthetic source photos written to tmp_path; ~3 s."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from claimlens.datasets import damage_suite as ds

BOX = (70, 60, 190, 150)

def _marked(seed: int, h: int = 192, w: int = 256) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), rng.integers(60, 200, 3), np.uint8)
    for _ in range(50):
        c = tuple(int(v) for v in rng.integers(0, 255, 3))
        p = (int(rng.integers(BOX[0], BOX[2])), int(rng.integers(BOX[1], BOX[3])))
        if rng.random() < 0.5:
            cv2.circle(img, p, int(rng.integers(2, 8)), c, -1)
        else:
            q = (p[0] + int(rng.integers(-25, 25)), p[1] + int(rng.integers(-25, 25)))
            cv2.line(img, p, q, c, int(rng.integers(1, 3)))
    return img


def _source(root: Path, n: int = 4) -> Path:
    """A car_damage_roboflow-like folder: train/images/*.jpg with YOLO boxes in train/labels/ (class 3, door)."""
    src = root / "src"
    (src / "train" / "images").mkdir(parents=True)
    (src / "train" / "labels").mkdir(parents=True)
    for i in range(n):
        img = _marked(i)
        Image.fromarray(img).save(src / "train" / "images" / f"p{i}.jpg", quality=92)
        h, w = img.shape[:2]
        cx, cy = (BOX[0] + BOX[2]) / 2 / w, (BOX[1] + BOX[3]) / 2 / h
        bw, bh = (BOX[2] - BOX[0]) / w, (BOX[3] - BOX[1]) / h
        (src / "train" / "labels" / f"p{i}.txt").write_text(f"3 {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}\n")
    return src


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _source(tmp_path_factory.mktemp("parts"))


def test_default_suite_unchanged(source: Path, tmp_path: Path) -> None:
    """hard=False writes what the generator wrote before the option: the same pairs.csv (columns, pairs and
    boxes, pinned below) and, run twice, byte-identical files."""
    ds.generate_parts_suite(tmp_path / "a", source, n=4, seed=0, split="all")
    ds.generate_parts_suite(tmp_path / "b", source, n=4, seed=0, split="all", hard=False)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    rows = _rows(tmp_path / "a" / "pairs.csv")
    assert list(rows[0]) == ["image_a", "image_b", "same_part", "ax1", "ay1", "ax2", "ay2", "bx1", "by1", "bx2",
                             "by2", "part"]
    got = [(r["image_a"][6:10], r["image_b"][6:10], r["same_part"],
            tuple(int(r[k]) for k in ("ax1", "ay1", "ax2", "ay2", "bx1", "by1", "bx2", "by2"))) for r in rows]
    assert got == PINNED_DEFAULT


PINNED_DEFAULT = [
    ("0000", "0000", "1", (162, 141, 427, 384, 191, 158, 536, 421)),
    ("0000", "0001", "0", (162, 141, 427, 384, 147, 138, 448, 359)),
    ("0001", "0001", "1", (203, 158, 530, 387, 147, 138, 448, 359)),
    ("0001", "0000", "0", (203, 158, 530, 387, 191, 158, 536, 421)),
    ("0002", "0002", "1", (155, 139, 438, 370, 150, 139, 419, 339)),
    ("0002", "0001", "0", (155, 139, 438, 370, 147, 138, 448, 359)),
    ("0003", "0003", "1", (140, 112, 410, 303, 166, 131, 411, 353)),
    ("0003", "0000", "0", (140, 112, 410, 303, 191, 158, 536, 421)),
]
"""Written by the generator at commit 5c66d66 (before the hard option) for :func:`_source` (n=4, seed 0); the
whole folder it wrote there was byte-identical to today's default output when this was pinned."""


def test_hard_suite_generated(source: Path, tmp_path: Path) -> None:
    rows = ds.generate_parts_suite(tmp_path, source, n=4, seed=0, split="all", hard=True)["pairs"]
    on_disk = _rows(tmp_path / "pairs.csv")
    assert len(on_disk) == len(rows) == 12  # per query: its mate, a random and a nearest-colour negative
    pos = [r for r in on_disk if r["same_part"] == "1"]
    assert len(pos) == 4
    assert sorted({r["negative"] for r in on_disk if r["same_part"] == "0"}) == ["nearest_colour", "random"]
    for r in on_disk:
        for k in "ab":
            img = Image.open(tmp_path / r[f"image_{k}"])
            x1, y1, x2, y2 = (int(r[f"{k}{c}"]) for c in ("x1", "y1", "x2", "y2"))
            assert 0 <= x1 < x2 <= img.width and 0 <= y1 < y2 <= img.height
        if r["same_part"] == "0":
            assert r["image_a"][:10] != r["image_b"][:10]
    for r in pos:
        assert r["image_a"][:10] == r["image_b"][:10]
        assert ds.HARD_TILT[0] <= float(r["tilt"]) <= ds.HARD_TILT[1]
        assert ds.HARD_SCALE[0] <= float(r["scale"]) <= ds.HARD_SCALE[1]
        assert ds.HARD_JPEG[0] <= int(r["jpeg"]) < ds.HARD_JPEG[1]
        assert 0.0 <= float(r["occluded"]) <= 0.35
    # the B views differ from the default suite's (same seed), the A views are drawn as before
    ds.generate_parts_suite(tmp_path / "d", source, n=4, seed=0, split="all")
    assert (tmp_path / pos[0]["image_b"]).read_bytes() != (tmp_path / "d" / pos[0]["image_b"]).read_bytes()


@pytest.mark.parametrize("seed", range(6))
def test_hard_view_box_follows_part(seed: int) -> None:
    """Geometry only: a bright textured part on a black photo; after tilt, relief, rotation, scale and
    reframing, the part's pixels lie in the returned box and fill most of it (unless the crop cut it)."""
    h, w = 240, 320
    box = (90, 70, 230, 170)
    img = np.zeros((h, w, 3), np.uint8)
    rng = np.random.default_rng(seed)
    img[box[1]:box[3], box[0]:box[2]] = rng.integers(150, 256, (box[3] - box[1], box[2] - box[0], 3))
    out, nb, prm = ds.hard_view(img, box, np.random.default_rng([seed, 1]), photometric=False)
    assert out.dtype == np.uint8 and out.shape[2] == 3
    x1, y1, x2, y2 = nb
    assert 0 <= x1 < x2 <= out.shape[1] and 0 <= y1 < y2 <= out.shape[0]
    bright = out.max(axis=2) > 100
    inside = np.zeros_like(bright)
    inside[max(0, y1 - 2):y2 + 2, max(0, x1 - 2):x2 + 2] = True
    assert bright.sum() > 0.5 * 0.5 * 140 * 100 * prm["scale"] ** 2  # the part is visible
    assert bright[~inside].sum() <= 0.002 * bright.sum()
    ys, xs = np.nonzero(bright)
    tight = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    assert all(abs(a - b) <= 3 for a, b in zip(tight, nb)), (tight, nb)
    assert ds.HARD_TILT[0] <= prm["tilt"] <= ds.HARD_TILT[1] and abs(prm["rot"]) <= ds.HARD_ROTATION


def test_hard_view_is_photometrically_different() -> None:
    """With photometric changes on, the same draw gives the same geometry but another picture: occluder,
    lighting, blur or noise applied (mean absolute difference well above JPEG-level noise)."""
    img = _marked(3)
    geo, nb0, _ = ds.hard_view(img, BOX, np.random.default_rng(5), photometric=False)
    ph, nb1, prm = ds.hard_view(img, BOX, np.random.default_rng(5), reflection=_marked(9))
    assert nb0 == nb1 and geo.shape == ph.shape
    assert float(np.abs(geo.astype(float) - ph.astype(float)).mean()) > 4.0
    assert set(prm) >= {"tilt", "relief", "scale", "rot", "occluder", "occluded", "reflection", "blur"}
