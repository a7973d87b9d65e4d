"""The real-data protocol of the integrity checks: fixed dev / test splits by scene, the messenger re-encoding,
the learned recapture cue's plumbing and the false-alarm bench (claimlens.datasets.integrity_splits,
claimlens.bench.messenger, claimlens.vision.integrity.recapture_learned, claimlens.bench.integrity_fa)."""

from __future__ import annotations

import io
from collections import Counter

import cv2
import numpy as np
import pytest
from PIL import Image

from claimlens.bench.messenger import QUALITY_RANGE, messenger_copy, messenger_quality
from claimlens.checks.base import PhotoInfo, Severity
from claimlens.checks.integrity import RecaptureCheck, TamperCheck
from claimlens.datasets import integrity_splits as splits
from claimlens.datasets import integrity_suite as suite
from claimlens.vision.decode import DecodedPhoto, decode_photo
from claimlens.vision.integrity import jpeg_forensics as jf
from claimlens.vision.integrity import recapture as rc
from claimlens.vision.integrity import recapture_learned as rl
from claimlens.vision.integrity import tamper as tp
from tests.conftest import shared_data


def test_casia_groups_keep_a_forgery_with_its_background_and_donor() -> None:
    assert splits.casia_ids("Au/Au_ani_0002.jpg") == ["ani0002"]
    assert splits.casia_ids("Tp/Sp/Sp_D_CND_A_pla0005_pla0023_0281.jpg") == ["pla0005", "pla0023"]
    assert splits.casia_ids("Tp/CM/Sp_S_NNN_T_txt0064_txt0064_0064.jpg") == ["txt0064", "txt0064"]
    rels = ["Au/Au_pla_0005.jpg", "Au/Au_pla_0023.jpg", "Tp/Sp/Sp_D_CND_A_pla0005_pla0023_0281.jpg",
            "Tp/Sp/Sp_D_CND_A_pla0023_nat0001_0282.jpg", "Au/Au_nat_0001.jpg", "Au/Au_arc_0009.jpg"]
    halves = splits.casia_splits(rels)
    # one chain of shared scenes: all on one side, whatever side the hash picks
    assert len({halves[r] for r in rels[:5]}) == 1
    assert set(halves.values()) <= {"dev", "test"}
    # a name that is not CASIA's is its own group (any folder in the bench format can be split)
    assert splits.casia_ids("x/photo_12.jpg") == ["photo_12"]


def test_roboflow_group_is_the_original_photo() -> None:
    assert splits.roboflow_group("valid/images/0009_JPEG.rf.d1b5518941317da0dc07c460c75e7294.jpg") == "0009_JPEG"
    assert splits.hash_split("0009_JPEG") == splits.hash_split("0009_JPEG") in ("dev", "test")


def test_recapture_split_keeps_scenes_together_and_balances_sources() -> None:
    shared_data("recapture_real")
    rows = list(splits.read_recapture_split().values())
    assert len(rows) == 238
    by_scene: dict[str, set[str]] = {}
    for r in rows:
        by_scene.setdefault(r["scene"], set()).add(r["split"])
    assert all(len(s) == 1 for s in by_scene.values())
    count = Counter((r["source"], r["split"]) for r in rows)
    for src in ("lordsiddi", "ishika"):
        assert abs(count[(src, "dev")] - count[(src, "test")]) <= 10, count
    kinds = {r["kind_detail"] for r in rows if r["split"] == "test" and r["label"] == "recaptured"}
    assert {"laptop", "phone", "print"} <= kinds


def test_split_table_covers_every_genuine_photo() -> None:
    for name in splits.GENUINE_SETS:
        shared_data(name)
    table = splits.split_table()
    photos = splits.genuine_photos()
    assert {n for n, _, _ in photos} == set(splits.GENUINE_SETS)
    halves = Counter(table.split(n, r) for n, r, _ in photos)
    assert min(halves.values()) > 0.4 * len(photos)
    with pytest.raises(KeyError):
        table.split("car_damage_roboflow", "not/there.jpg")


def test_messenger_copy_is_reduced_stripped_and_reproducible() -> None:
    rng = np.random.default_rng(0)
    rgb = (rng.random((2000, 2600, 3)) * 255).astype(np.uint8)
    original = suite.encode_jpeg(rgb, 95, exif=suite.exif_bytes("HUAWEI", "P40"))
    a, b = messenger_copy(original, seed=7), messenger_copy(original, seed=7)
    assert a == b
    photo = decode_photo(a)
    assert max(photo.width, photo.height) == 1600 and photo.metadata.make is None
    q, _ = jf.estimate_quality(photo.source_info.luma_table)
    assert q == messenger_quality(7) and QUALITY_RANGE[0] <= q <= QUALITY_RANGE[1]
    small = decode_photo(messenger_copy(suite.encode_jpeg(rgb[:300, :400], 95), seed=1))
    assert (small.width, small.height) == (400, 300)  # never enlarged
    assert Image.open(io.BytesIO(a)).getexif() == {}


def test_tiles_are_native_resolution_crops() -> None:
    rgb = np.zeros((1200, 1600, 3), np.uint8)
    rgb[::2] = 255  # a one-pixel line grid: survives only at native resolution
    t = rl.tiles(rgb)
    assert t.shape == (len(rl.TILE_CENTRES), rl.SIZE, rl.SIZE, 3)
    assert {int(t[0, 0, 0, 0]), int(t[0, 1, 0, 0])} == {0, 255}
    tiny = rl.tiles(np.zeros((171, 295, 3), np.uint8))
    assert tiny.shape[1:3] == (rl.SIZE, rl.SIZE)


def test_head_logit_is_standardise_project_logistic() -> None:
    head = {"mean": np.array([1.0, 2.0]), "scale": np.array([2.0, 4.0]), "basis": np.array([[1.0], [1.0]]),
            "bias": np.array([0.5]), "weights": np.array([2.0])}
    # z = ((3-1)/2, (6-2)/4) = (1, 1) -> projection 2 -> 0.5 + 2 * 2
    assert rl.head_logit(np.array([3.0, 6.0]), head) == pytest.approx(4.5)


# ------------------------------------------------------------------------------- severity tiers and gates


def _info(stage: str = "survey") -> PhotoInfo:
    return PhotoInfo(photo_id="q" * 16, claim_id="C1", stage=stage, role=None, sha256="0" * 64, size_bytes=0,
                     filename=None, uploaded_at=None)


def _recapture_result(score: float, shot: float = 0.0, **features: float) -> rc.RecaptureResult:
    feats = {"frame_sides": 0.0, "device_resolution": 0.0, "png": 0.0, "bars": 0.0, "learned_logit": 1.0,
             "no_camera_exif": 1.0, "uniform_rows": 0.0, "flat_blocks": 0.6} | features
    peak = {"period_px": 3.1, "angle_deg": 10.0, "height": 4.0, "crop_origin_yx": [0, 0], "crop_size": 384,
            "frequency_cycles_per_px": [0.1, 0.2]}
    return rc.RecaptureResult(score=score, screenshot_score=shot, features=feats, peak=peak, work_shape=(48, 64))


def _photo() -> DecodedPhoto:
    return decode_photo(suite.encode_jpeg(np.full((48, 64, 3), 120, np.uint8), 90))


@pytest.mark.parametrize(("score", "expected"), [(rc.RECAPTURE_LOW - 0.01, None), (rc.RECAPTURE_LOW, Severity.LOW),
                                                 (rc.RECAPTURE_THRESHOLD, Severity.MEDIUM)])
def test_recapture_severity_follows_the_two_thresholds(score: float, expected: Severity | None) -> None:
    found = RecaptureCheck().findings(_photo(), _info(), _recapture_result(score))
    assert [f.severity for f in found] == ([] if expected is None else [expected])
    doc = RecaptureCheck().findings(_photo(), _info("document"), _recapture_result(score))
    assert all(f.severity == Severity.INFO for f in doc)


def test_screenshot_needs_the_screens_geometry() -> None:
    check = RecaptureCheck()
    # a web picture of a car on a white background: flat blocks, no EXIF, high score, no device size or bars
    assert check.findings(_photo(), _info(), _recapture_result(0.1, shot=0.99)) == []
    exact = check.findings(_photo(), _info(), _recapture_result(0.1, shot=0.99, device_resolution=1.0))
    assert [(f.code, f.severity) for f in exact] == [("integrity.screenshot", Severity.MEDIUM)]
    assert rc.screen_geometry({"png": 1.0, "bars": 1.0}) and not rc.screen_geometry({"png": 1.0})


def _tamper_result(score: float) -> tp.TamperResult:
    region = tp.CopyMoveRegion(transform=[[1, 0, 10], [0, 1, 0]], source_box=(0, 0, 10, 10),
                               target_box=(10, 0, 20, 10), area_fraction=0.05, support=40, method="blocks",
                               noise_ratio=0.8, rotation_deg=0.0, scale=1.0)
    mask = np.zeros((48, 64), np.uint8)
    mask[:10, :10], mask[:10, 10:20] = 1, 2
    return tp.TamperResult(copy_move_score=score, splice_score=1.0, regions=[region], copy_move_mask=mask,
                           work_shape=(48, 64))


@pytest.mark.parametrize(("score", "expected"), [(tp.COPY_MOVE_THRESHOLD - 0.01, None),
                                                 (tp.COPY_MOVE_THRESHOLD, Severity.LOW),
                                                 (tp.COPY_MOVE_MEDIUM, Severity.MEDIUM), (0.99, Severity.HIGH)])
def test_copy_move_severity_tiers_and_no_splice_flag(score: float, expected: Severity | None) -> None:
    # splice score 1.0: the noise cue raises nothing (chance level on real splices)
    found = TamperCheck().findings(_photo(), _info(), _tamper_result(score))
    assert [(f.code, f.severity) for f in found] == ([] if expected is None else [("integrity.copy_move", expected)])


def test_dark_edged_thumbnail_of_the_same_aspect_is_not_trimmed() -> None:
    rng = np.random.default_rng(3)
    main = cv2.GaussianBlur((rng.random((450, 800)) * 255).astype(np.uint8), (0, 0), 3)
    main[:40] = 2  # a night sky: dark rows at the top are content, not a letterbox bar
    thumb = cv2.resize(main, (256, 144), interpolation=cv2.INTER_AREA)
    _ok, buf = cv2.imencode(".jpg", thumb, [cv2.IMWRITE_JPEG_QUALITY, 90])
    cmp = jf.compare_thumbnail(buf.tobytes(), 1, cv2.resize(main, (640, 360), interpolation=cv2.INTER_AREA))
    assert cmp.status == "consistent" and cmp.thumb_size == (256, 144), cmp.to_json()


def test_false_alarm_bench_counts_findings_of_genuine_photos() -> None:
    from claimlens.bench import integrity_fa

    shared = shared_data()
    out = integrity_fa.run(shared, suite=False, options={"sets": "tamper_real", "limit": "2", "split": "dev"})
    m = out["metrics"]
    assert out["n_images"] == 2 and m["per_set"]["tamper_real"]["n"] == 2
    assert {"flag_rate", "flag_rate_medium", "budget_met", "per_code", "ms_per_image"} <= set(m)
    assert 0.0 <= m["flag_rate_medium"] <= m["flag_rate"] <= 1.0
