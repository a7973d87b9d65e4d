"""The learned copy-detection embedding (claimlens.vision.embedding): ONNX via onnxruntime, no torch."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from claimlens.vision.embedding import (
    DEFAULT_WEIGHTS_DIR,
    CopyEmbedder,
    EmbeddingModelError,
    load_manifest,
    trim_box,
)
from tests.conftest import shared_data

CAR_TEST = ("car_damage_roboflow", "test", "images")


def rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def jpeg_resized(img: np.ndarray, quality: int = 30, side: int = 160) -> np.ndarray:
    h, w = img.shape[:2]
    s = side / max(h, w)
    small = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def synthetic(seed: int, size: tuple[int, int] = (480, 640)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    h, w = size
    img = cv2.resize(rng.integers(0, 255, (6, 8, 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(12):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        cv2.rectangle(img, (x, y), (x + int(rng.integers(5, 120)), y + int(rng.integers(5, 120))),
                      tuple(int(c) for c in rng.integers(0, 255, 3)), -1)
    return img


@pytest.fixture(scope="module")
def embedder() -> CopyEmbedder:
    return CopyEmbedder()


def test_construction_is_lazy(tmp_path: Path) -> None:
    CopyEmbedder(weights_dir=tmp_path)  # no manifest there: nothing is read until first use
    with pytest.raises(EmbeddingModelError, match="no weights manifest"):
        CopyEmbedder(weights_dir=tmp_path).embed(synthetic(0))


def test_embeddings_are_normalised_and_deterministic(embedder: CopyEmbedder) -> None:
    imgs = [synthetic(1), synthetic(2, (300, 300)), synthetic(3, (37, 90)), synthetic(4, (3000, 4000))]
    a = embedder.embed_batch(imgs)
    assert a.dtype == np.float32 and a.shape == (4, embedder.dim)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    b = np.stack([embedder.embed(im) for im in imgs])
    np.testing.assert_allclose(a, b, atol=1e-5)  # batch and single agree, and runs repeat
    assert embedder.embed_batch([]).shape == (0, embedder.dim)


def test_rejects_non_rgb(embedder: CopyEmbedder) -> None:
    with pytest.raises(ValueError):
        embedder.embed(np.zeros((10, 10), np.uint8))


def test_copy_is_close_and_unrelated_photo_is_far(embedder: CopyEmbedder) -> None:
    # cosines live in the whitened space: copies ~0.35-0.9, unrelated photos ~0 +- 0.1 (the shipped model's
    # threshold at precision 0.99 on the transform suite is ~0.24, see weights/MANIFEST.json)
    files = sorted(shared_data(*CAR_TEST).glob("*.jpg"))[:8]
    imgs = [rgb(p) for p in files]
    orig = embedder.embed_batch(imgs)
    copies = embedder.embed_batch([jpeg_resized(im) for im in imgs])
    same = (orig * copies).sum(1)
    sim = orig @ orig.T
    other = sim[~np.eye(len(imgs), dtype=bool)]
    assert same.min() > 0.3, same
    assert other.max() < 0.25, other.max()
    assert same.min() > other.max() + 0.1


def test_binary_codes_shape(embedder: CopyEmbedder) -> None:
    vecs = embedder.embed_batch([synthetic(4), synthetic(5)])
    assert embedder.code_bits() == [64, 256]
    for bits in embedder.code_bits():
        codes = embedder.binary_codes(vecs, bits)
        assert all(isinstance(c, int) and 0 <= c < 2**bits for c in codes)
        assert codes == [embedder.binary_code(v, bits) for v in vecs]
        # the documented rule: bit 0 (most significant) is the sign of (vec @ W + b)[0]
        w = np.load(embedder.weights_dir / f"copy_embedding_codes{bits}.npy")
        expected = (vecs[0] @ w[:-1] + w[-1]) > 0
        assert [(codes[0] >> (bits - 1 - i)) & 1 for i in range(bits)] == expected.astype(int).tolist()
    with pytest.raises(EmbeddingModelError, match="no 7-bit"):
        embedder.binary_code(vecs[0], 7)


def test_binary_codes_keep_copies_closer(embedder: CopyEmbedder) -> None:
    imgs = [rgb(p) for p in sorted(shared_data(*CAR_TEST).glob("*.jpg"))[:12]]
    orig = embedder.embed_batch(imgs)
    copies = embedder.embed_batch([jpeg_resized(im) for im in imgs])
    for bits in (64, 256):
        a, b = embedder.binary_codes(orig, bits), embedder.binary_codes(copies, bits)
        near = [(x ^ y).bit_count() for x, y in zip(a, b)]
        far = [(a[i] ^ a[j]).bit_count() for i in range(len(a)) for j in range(i + 1, len(a))]
        assert np.mean(near) < 0.6 * np.mean(far), (bits, near, np.mean(far))


def copy_weights(tmp_path: Path) -> tuple[Path, dict]:
    manifest = json.loads((DEFAULT_WEIGHTS_DIR / "MANIFEST.json").read_text())
    entries = load_manifest(DEFAULT_WEIGHTS_DIR)
    model = entries["copy_embedding"]
    names = [model["name"], *model.get("codes", {}).values()]
    for n in names:
        shutil.copy(DEFAULT_WEIGHTS_DIR / entries[n]["file"], tmp_path / entries[n]["file"])
    (tmp_path / "MANIFEST.json").write_text(json.dumps(manifest))
    return tmp_path, manifest


def test_sha256_mismatch_raises(tmp_path: Path) -> None:
    wdir, manifest = copy_weights(tmp_path)
    for e in manifest["models"]:
        if e["name"] == "copy_embedding":
            e["sha256"] = "0" * 64
    (wdir / "MANIFEST.json").write_text(json.dumps(manifest))
    with pytest.raises(EmbeddingModelError, match="sha256 mismatch"):
        CopyEmbedder(weights_dir=wdir).embed(synthetic(6))


def test_tampered_file_and_missing_file_raise(tmp_path: Path) -> None:
    wdir, _ = copy_weights(tmp_path)
    entry = load_manifest(wdir)["copy_embedding"]
    with open(wdir / entry["file"], "ab") as f:
        f.write(b"\0")
    with pytest.raises(EmbeddingModelError, match="sha256 mismatch"):
        CopyEmbedder(weights_dir=wdir).embed(synthetic(6))
    (wdir / entry["file"]).unlink()
    with pytest.raises(EmbeddingModelError, match="missing"):
        CopyEmbedder(weights_dir=wdir).embed(synthetic(6))
    with pytest.raises(EmbeddingModelError, match="not listed"):
        CopyEmbedder("no_such_model", weights_dir=wdir).embed(synthetic(6))


def test_code_projection_is_checked_too(tmp_path: Path) -> None:
    wdir, _ = copy_weights(tmp_path)
    entries = load_manifest(wdir)
    code_file = wdir / entries[entries["copy_embedding"]["codes"]["64"]]["file"]
    np.save(code_file, np.zeros((3, 64), np.float32))
    e = CopyEmbedder(weights_dir=wdir)
    vec = e.embed(synthetic(7))  # the model itself is intact
    with pytest.raises(EmbeddingModelError, match="sha256 mismatch"):
        e.binary_code(vec, 64)


def test_provider_preference_is_intersected() -> None:
    e = CopyEmbedder(providers=["NoSuchExecutionProvider", "CPUExecutionProvider"], intra_op_threads=2)
    assert e.embed(synthetic(8)).shape == (e.dim,)
    assert e._session.get_providers() == ["CPUExecutionProvider"]


def test_trim_box_finds_the_photo_inside_a_screenshot() -> None:
    photo = synthetic(9, (120, 200))
    screen = np.full((420, 220, 3), 16, np.uint8)
    screen[150:270, 10:210] = photo
    cv2.putText(screen, "12:45", (4, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)  # status bar
    for x in (30, 90, 150):
        cv2.circle(screen, (x, 400), 6, (255, 255, 255), 1)  # toolbar icons
    assert trim_box(screen) == (150, 270, 10, 210)
    assert trim_box(photo) == (0, 120, 0, 200)  # nothing to trim
