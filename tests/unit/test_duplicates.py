"""Reused-photo detection: hashes, local features, verification, evidence image, suite generator, bench,
and the check's claim phase against an in-memory index. Real photos from ../shared/data."""

from __future__ import annotations

import csv
import hashlib
import io
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from claimlens.checks.base import ClaimContext, CodeHit, IndexHit, PhotoAnalysis, PhotoInfo, Severity
from claimlens.checks.reused_photo import RADIUS, ReusedPhotoCheck
from claimlens.datasets.transforms import TRANSFORM_CLASSES, generate_suite
from claimlens.vision.decode import decode_photo
from claimlens.vision.duplicates import (
    MIRROR_PERMUTATION,
    PHASH_KIND,
    LocalFeatures,
    compute_hashes,
    extract_features,
    fingerprint_photo,
    hamming,
    match_evidence_image,
    min_hamming,
    verify,
)
from tests.conftest import shared_data

CAR = ("car_damage_roboflow", "valid", "images")


def _photos(n: int) -> list[Path]:
    files = sorted(shared_data(*CAR).glob("*.jpg"))
    # distinct pictures only (the folder holds a few known duplicates under other names)
    return [f for f in files if not f.name.startswith(("0009_", "0012_", "0013_"))][:n]


def _jpeg(arr: np.ndarray, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _decoded(path: Path):
    return decode_photo(path.read_bytes())


def _upscaled(path: Path, factor: float = 2.5):
    """Roboflow photos are 256 px; real claim photos are larger, so verification tests use an upscale."""
    rgb = np.asarray(Image.open(path).convert("RGB"))
    big = cv2.resize(rgb, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
    return decode_photo(_jpeg(big, 92))


# ------------------------------------------------------------------------------------------------ hashes


def test_hashes_survive_rotation_mirror_and_jpeg_q30():
    path = _photos(1)[0]
    photo = _decoded(path)
    rgb = photo.rgb
    query = compute_hashes(photo.gray(640)).query_codes()
    for edited in (np.rot90(rgb, 1), np.rot90(rgb, 2), rgb[:, ::-1], np.rot90(rgb[:, ::-1], 3)):
        copy = decode_photo(_jpeg(np.ascontiguousarray(edited)))
        stored = compute_hashes(copy.gray(640)).stored_codes()
        assert min_hamming(query, stored) <= 6
    q30 = decode_photo(_jpeg(rgb, 30))
    assert min_hamming(query, compute_hashes(q30.gray(640)).stored_codes()) <= RADIUS[PHASH_KIND] // 2


def test_dihedral_codes_are_the_codes_of_the_transformed_image():
    photo = _decoded(_photos(1)[0])
    full = compute_hashes(photo.gray(640)).full
    rot = decode_photo(_jpeg(np.ascontiguousarray(np.rot90(photo.rgb, 1)), 95))
    assert hamming(full[1], compute_hashes(rot.gray(640)).full[0]) <= 4


def test_different_photos_are_not_within_the_radius_of_each_other_upright():
    a, b = (_decoded(p) for p in _photos(12)[10:12])
    assert hamming(compute_hashes(a.gray(640)).full[0], compute_hashes(b.gray(640)).full[0]) > RADIUS[PHASH_KIND]


# ---------------------------------------------------------------------------------------------- features


def test_features_roundtrip_and_stay_small():
    photo = _upscaled(_photos(1)[0])
    f = extract_features(photo.gray(640), original_size=(photo.width, photo.height))
    blob = f.to_bytes()
    assert len(blob) < 80_000
    g = LocalFeatures.from_bytes(blob)
    assert len(g) == len(f) > 100
    assert np.abs(g.xy - f.xy).max() <= 1 / 16 + 1e-6
    assert np.array_equal(g.desc, f.desc)
    assert g.thumb is not None and max(g.thumb.shape) <= 160
    with pytest.raises(ValueError):
        LocalFeatures.from_bytes(b"not features")


def test_mirror_permutation_matches_extraction_on_the_flipped_image():
    gray = _upscaled(_photos(1)[0]).gray(640)
    sift = cv2.SIFT_create(nfeatures=200)
    kps, desc = sift.detectAndCompute(gray, None)
    w = gray.shape[1]
    mk = [cv2.KeyPoint(w - 1 - k.pt[0], k.pt[1], k.size, (180 - k.angle) % 360, k.response, k.octave)
          for k in kps]
    _, dm = sift.compute(np.ascontiguousarray(gray[:, ::-1]), mk)
    permuted = desc[:, MIRROR_PERMUTATION]
    assert np.abs(permuted - dm).mean() < 0.25 * np.abs(desc - dm).mean()


# ---------------------------------------------------------------------------------------------- verify


def test_verify_finds_crop_and_rotation():
    photo = _upscaled(_photos(1)[0])
    rgb = photo.rgb
    h, w = rgb.shape[:2]
    crop = rgb[int(0.1 * h): int(0.8 * h), int(0.2 * w): int(0.9 * w)]  # 49 % of the area
    copy = decode_photo(_jpeg(np.ascontiguousarray(np.rot90(crop, 1)), 85))  # rotated 90 deg CCW
    fq = fingerprint_photo(copy).features
    fc = fingerprint_photo(photo).features
    r = verify(fq, fc)
    assert r.is_match and r.inliers >= 30
    t = r.transform
    # the query is the original turned 90 deg CCW: aligning it back needs 90 deg clockwise
    assert abs(abs(t.rotation_deg) - 90) < 3
    assert 0.9 < t.scale < 1.1
    assert not t.mirrored
    assert 0.40 < t.match_coverage < 0.60 and t.query_coverage > 0.9
    assert r.match_type == "partial_crop"


def test_verify_mirrored_and_rejects_different_photos():
    paths = _photos(3)
    photo = _upscaled(paths[0])
    mirrored = decode_photo(_jpeg(np.ascontiguousarray(photo.rgb[:, ::-1]), 85))
    fa = fingerprint_photo(photo).features
    r = verify(fingerprint_photo(mirrored).features, fa)
    assert r.is_match and r.transform.mirrored and r.match_type == "mirrored"
    for other in paths[1:]:
        assert not verify(fingerprint_photo(_upscaled(other)).features, fa).is_match


def test_evidence_image_is_a_bounded_jpeg():
    photo = _upscaled(_photos(1)[0])
    copy = decode_photo(_jpeg(np.ascontiguousarray(np.rot90(photo.rgb, 2)), 60))
    fq, fc = fingerprint_photo(copy).features, fingerprint_photo(photo).features
    r = verify(fq, fc)
    img = match_evidence_image(copy.thumbnail_jpeg(), photo.thumbnail_jpeg(), r, fq, fc)
    out = Image.open(io.BytesIO(img))
    assert out.format == "JPEG" and out.width <= 1600


# -------------------------------------------------------------------------------------------- generator


@pytest.fixture()
def small_source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    for p in _photos(5):
        shutil.copy(p, src / p.name)
    return src


def _digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_generator_is_deterministic_and_writes_every_class(small_source: Path, tmp_path: Path):
    a, b = tmp_path / "a", tmp_path / "b"
    generate_suite(small_source, a, n_originals=2, seed=7)
    generate_suite(small_source, b, n_originals=2, seed=7)
    assert _digest(a) == _digest(b)
    with (a / "groups.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert {r["transform"] for r in rows} >= set(TRANSFORM_CLASSES) | {"original", "distractor"}
    for cls in TRANSFORM_CLASSES:
        assert sum(r["transform"] == cls for r in rows) == 2
    assert sum(r["group_id"] == "" for r in rows) == 3
    for r in rows:
        assert Image.open(a / r["image"]).size[0] > 0
    c = tmp_path / "c"
    generate_suite(small_source, c, n_originals=2, seed=8)
    assert _digest(a) != _digest(c)


def test_bench_on_a_tiny_suite_returns_the_contract_keys(small_source: Path):
    from claimlens.bench.duplicates import run

    out = run(small_source, suite=True, options={"n_originals": "2", "fp12": "off", "embedding": "off"})
    assert out["bench"] == "duplicates" and out["n_images"] == 2 * 13 + 3
    m = out["metrics"]
    for key in ("recall_at_p99", "auc", "fingerprint_ms_per_image", "query_ms_p95", "per_class"):
        assert key in m
    assert set(m["per_class"]) == set(TRANSFORM_CLASSES)
    assert 0 <= m["recall_at_p99"] <= 1 and 0 <= m["auc"] <= 1
    assert "imagehash-phash" in out["peers"] and "imagededup-cnn" in out["peers"]
    assert "recall_at_p99" in out["peers"]["imagehash-phash"]


# ------------------------------------------------------------------------------------------------ check


@dataclass
class _Stored:
    info: PhotoInfo
    codes: dict[str, list[int]]
    artifacts: dict[str, bytes]
    thumb: bytes


class _MemoryIndex:
    def __init__(self, photos: list[_Stored]) -> None:
        self.photos = photos

    def lookup(self, kind: str, values: list[str]) -> list[IndexHit]:
        return []

    def search_codes(self, kind: str, codes: list[int], max_distance: int, limit: int = 50) -> list[CodeHit]:
        hits = []
        for p in self.photos:
            stored = p.codes.get(kind, [])
            if not stored or not codes:
                continue
            d = min_hamming(codes, stored)
            if d <= max_distance:
                hits.append(CodeHit(p.info.photo_id, p.info.claim_id, p.info.stage, p.info.role,
                                    p.info.uploaded_at, kind, d))
        return sorted(hits, key=lambda h: h.distance)[:limit]


def test_check_reports_a_cropped_rotated_copy_in_another_claim():
    paths = _photos(3)
    original = _upscaled(paths[0])
    h, w = original.rgb.shape[:2]
    edited = np.rot90(original.rgb[int(0.05 * h): int(0.9 * h), int(0.1 * w): int(0.95 * w)], 3)
    copy = decode_photo(_jpeg(np.ascontiguousarray(edited), 70))
    unrelated = _upscaled(paths[1])
    check = ReusedPhotoCheck(use_embedding="off")
    findings = _assess(check, [("old", "p-orig", original), ("new", "p-copy", copy), ("new", "p-other", unrelated)],
                       "new")
    cross = [f for f in findings if f.code == "reused_photo.cross_claim"]
    assert len(cross) == 1
    f = cross[0]
    assert f.severity == Severity.HIGH and f.photo_id == "p-copy"
    ev = f.evidence
    assert ev["matched_claim_id"] == "old" and ev["matched_photo_id"] == "p-orig" and ev["exact"] is False
    assert ev["match_type"] in ("partial_crop", "near_duplicate") and ev["inliers"] >= 20
    assert abs(abs(ev["transform"]["rotation_deg"]) - 90) < 3
    assert list(f.evidence_images) == ["match_p-copy_p-orig.jpg"]
    assert not [f for f in findings if "p-other" in (f.photo_id, f.evidence.get("matched_photo_id"))]


def test_screenshots_of_different_photos_in_the_same_app_do_not_match():
    from claimlens.datasets.transforms import t_screenshot

    a, b = (Image.open(p).convert("RGB") for p in _photos(12)[10:12])
    shots = [decode_photo(t_screenshot(img, np.random.default_rng(3))[0]) for img in (a, b)]
    fa, fb = (fingerprint_photo(s).features for s in shots)
    assert not verify(fa, fb).is_match
    # while a screenshot still matches its own photo
    assert verify(fa, fingerprint_photo(decode_photo(_jpeg(np.asarray(a)))).features).is_match


def test_check_second_hop_links_a_crop_to_a_screenshot_of_the_same_photo():
    from claimlens.datasets.transforms import t_screenshot

    path = _photos(1)[0]
    original = _upscaled(path)
    h, w = original.rgb.shape[:2]
    crop = decode_photo(_jpeg(np.ascontiguousarray(original.rgb[int(0.3 * h):, : int(0.7 * w)]), 80))
    shot = decode_photo(t_screenshot(Image.open(path).convert("RGB"), np.random.default_rng(1))[0])
    specs = [("A", "p-orig", original), ("B", "p-shot", shot), ("C", "p-crop", crop)]
    found = {f.evidence["matched_photo_id"]: f for f in _assess(ReusedPhotoCheck(use_embedding="off"), specs, "C")}
    assert set(found) == {"p-orig", "p-shot"}
    via = found["p-shot"].evidence["found_via"]
    assert via is None or via["photo_id"] == "p-orig"


def test_merge_candidates_keeps_an_embedding_quota_beyond_the_hash_budget():
    from claimlens.checks.reused_photo import KIND_QUOTA, merge_candidates

    # 40 pHash hits all nearer (radius-normalised) than every embedding hit: without the quota the
    # embedding's candidates (crops) would never be verified
    phash = [(f"h{i:02d}", 0) for i in range(40)]
    emb = [(f"e{i:02d}", 19) for i in range(15)] + [("h00", 20)]
    out = merge_candidates({"phash64": phash, "emb64": emb}, max_verify=30,
                           radius={"phash64": 16, "emb64": 20})
    assert out[:30] == [f"h{i:02d}" for i in range(30)]
    assert out[30:] == [f"e{i:02d}" for i in range(KIND_QUOTA["emb64"])]
    assert len(out) == len(set(out))


def test_merge_candidates_orders_by_radius_normalised_distance_across_kinds():
    from claimlens.checks.reused_photo import merge_candidates

    out = merge_candidates({"phash64": [("a", 8), ("b", 16)], "emb64": [("c", 2), ("b", 4)]},
                           max_verify=3, radius={"phash64": 16, "emb64": 20})
    assert out == ["c", "b", "a"]  # c: 2/21, b: min(16/17, 4/21), a: 8/17


def _assess(check: ReusedPhotoCheck, specs: list[tuple[str, str, object]], claim: str) -> list:
    """Analyse (claim_id, photo_id, decoded photo) in order, index them all, assess ``claim``."""
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    stored, analyses = [], []
    for i, (claim_id, photo_id, photo) in enumerate(specs):
        info = PhotoInfo(photo_id=photo_id, claim_id=claim_id, stage="survey", role=None, sha256=photo_id,
                         size_bytes=1, filename=None, uploaded_at=t0.replace(month=1 + i))
        res = check.analyse_photo(photo, info)
        stored.append(_Stored(info, res.codes, res.artifacts, photo.thumbnail_jpeg()))
        if claim_id == claim:
            analyses.append(PhotoAnalysis(info=info, data={check.name: res.data}))
    by_id = {s.info.photo_id: s for s in stored}
    ctx = ClaimContext(
        claim={"claim_id": claim}, photos=analyses, index=_MemoryIndex(stored),
        load_artifact=lambda c, p, chk, n: by_id[p].artifacts.get(n) if chk == check.name else None,
        load_thumbnail=lambda c, p: by_id[p].thumb)
    return check.assess_claim(ctx)


def test_embedding_finds_a_crop_that_no_hash_code_reaches():
    from claimlens.vision.duplicates import EMBED_KIND, PHASH_KIND

    original = _upscaled(_photos(1)[0])
    h, w = original.rgb.shape[:2]
    # 47 % of the area, off centre, other aspect ratio: 20 bits from every pHash window of the original
    crop = decode_photo(_jpeg(np.ascontiguousarray(original.rgb[int(0.12 * h): int(0.82 * h),
                                                                int(0.05 * w): int(0.72 * w)]), 80))
    specs = [("old", "p-orig", original), ("new", "p-crop", crop)]
    on = ReusedPhotoCheck()
    fo, fc = (on.analyse_photo(p, PhotoInfo(photo_id="x", claim_id="x", stage="survey", role=None, sha256="x",
                                           size_bytes=1, filename=None, uploaded_at=None)) for p in (original, crop))
    assert min_hamming([int(c, 16) for c in fc.data["query_codes"][PHASH_KIND]], fo.codes[PHASH_KIND]) \
        > RADIUS[PHASH_KIND]
    assert EMBED_KIND in fc.codes
    assert not _assess(ReusedPhotoCheck(use_embedding="off"), specs, "new")
    found = [f for f in _assess(on, specs, "new") if f.code == "reused_photo.cross_claim"]
    assert len(found) == 1 and found[0].evidence["matched_photo_id"] == "p-orig"
    assert found[0].evidence["match_type"] == "partial_crop"
