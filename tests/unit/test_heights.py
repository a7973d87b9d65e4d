"""Heights of damage marks and flood levels (issue #7): geometry on rendered scenes of known geometry."""

from __future__ import annotations

import numpy as np
import pytest

from claimlens.checks.base import ClaimContext, PhotoAnalysis, PhotoInfo, Severity
from claimlens.checks.heights import HeightsCheck
from claimlens.datasets import heights_suite as hs
from claimlens.vision.decode import decode_photo
from claimlens.vision.geometry import Box, measure, tyre_diameter_mm
from claimlens.vision.geometry.consistency import compare_ranges
from claimlens.vision.geometry.plane import (
    apply_h,
    homography,
    intrinsics,
    plate_object_points,
    pose_from_homography,
)
from claimlens.vision.geometry.references import flood_level, level_interval


def _info(pid: str, role: str | None, regions=None) -> PhotoInfo:
    return PhotoInfo(photo_id=pid, claim_id="C1", stage="survey", role=role, sha256="0" * 64, size_bytes=1,
                     filename=None, uploaded_at=None, regions=regions or [])


def test_plate_homography_gives_scale_and_pose_on_a_projected_plate():
    cam = hs.Camera([0.6, 1.2, 2.5], [0.0, 0.5, 0.0], 1200.0, 2.0)
    h0 = 0.5
    corners3d = np.array([[-0.22, h0 + 0.07, 0], [0.22, h0 + 0.07, 0], [0.22, h0 - 0.07, 0], [-0.22, h0 - 0.07, 0]])
    px, _ = cam.project(corners3d)
    H = homography(plate_object_points("cn_blue"), px)
    # a point 300 mm above and 500 mm right of the plate centre, in the plate's plane
    target, _ = cam.project(np.array([[0.5, h0 + 0.3, 0]]))
    back = apply_h(np.linalg.inv(H), target)[0]
    assert back == pytest.approx([500, 300], abs=1.0)
    pose = pose_from_homography(H, intrinsics(1200.0, hs.W, hs.H))
    assert pose.centre / 1000 == pytest.approx([0.6, 1.2 - h0, 2.5], abs=0.01)


def test_tyre_code_and_levels():
    assert tyre_diameter_mm("205/55 R16") == pytest.approx(631.9, abs=0.1)
    assert tyre_diameter_mm("no code") is None
    assert [flood_level(h) for h in (5, 20, 40, 70, 100, 150)] == [1, 2, 3, 4, 5, 6]
    assert level_interval(3) == (32.0, 64.0)


def test_mark_height_on_a_rendered_side_view():
    rng = np.random.default_rng([3, 1])
    jpeg, lab = hs.side_heights_scene(rng, [], (0.42, 0.55))
    rgb = decode_photo(jpeg).rgb
    box = Box(*[float(v) for v in lab["mark_box"].split()])
    m = measure(rgb, [box], detect_plate=False, tyre_mm=tyre_diameter_mm(lab["tyre_code"]))
    assert m.status == "measured" and m.reference["kind"] == "wheels"
    mk = m.marks[0]
    assert mk["bottom_cm"] == pytest.approx(42.0, abs=3.0)
    assert mk["top_cm"] == pytest.approx(55.0, abs=3.0)
    assert 0 < mk["bottom_sigma_cm"] < 6


def test_consistency_rule():
    assert compare_ranges((40, 55, 2, 2), (45, 60, 2, 2))["consistent"]
    assert compare_ranges((40, 55, 2, 2), (60, 70, 2, 2))["consistent"]  # 5 cm gap: dive + load
    assert not compare_ranges((40, 55, 2, 2), (80, 95, 2, 2))["consistent"]
    vague = compare_ranges((40, 55, 15, 15), (80, 95, 15, 15))
    assert vague["consistent"] and not vague["decided"]  # too uncertain to say: not a decision
    assert compare_ranges((40, 55, 2, 2), (45, 60, 2, 2))["decided"]
    assert compare_ranges((40, 55, 2, 2), (80, 95, 2, 2))["decided"]


def _ctx(photos, claim):
    return ClaimContext(claim=claim, photos=photos, index=None, load_artifact=lambda *a: None,
                        load_thumbnail=lambda *a: None)


def _measured(lo, hi):
    return {"status": "measured", "marks": [{"box": [0, 0, 1, 1], "bottom_cm": lo, "top_cm": hi,
                                             "bottom_sigma_cm": 2.0, "top_sigma_cm": 2.0}], "flood": {"found": False}}


def test_inconsistent_pair_flagged_consistent_not():
    check = HeightsCheck()
    claim = {"claim_id": "C1", "loss_type": "collision"}
    bad = [PhotoAnalysis(_info("a", "damage"), {"heights": _measured(30, 40)}),
           PhotoAnalysis(_info("b", "third_party"), {"heights": _measured(70, 85)})]
    good = [PhotoAnalysis(_info("a", "damage"), {"heights": _measured(30, 40)}),
            PhotoAnalysis(_info("b", "third_party"), {"heights": _measured(36, 50)})]
    f_bad = check.assess_claim(_ctx(bad, claim))
    assert [f.code for f in f_bad] == ["heights.inconsistent"]
    assert f_bad[0].evidence["gap_cm"] == pytest.approx(30.0)
    assert check.assess_claim(_ctx(good, claim)) == []
    # the adjuster's tape measurement replaces the photo measurement
    tape = dict(claim, measurements=[{"photo_id": "b", "bottom_cm": 35, "top_cm": 45}])
    assert check.assess_claim(_ctx(bad, tape)) == []


def test_one_pair_that_could_have_touched_clears_the_claim():
    check = HeightsCheck()
    claim = {"claim_id": "C1", "loss_type": "collision"}
    third = PhotoAnalysis(_info("b", "third_party"), {"heights": _measured(36, 50)})
    door = PhotoAnalysis(_info("d", "damage"), {"heights": _measured(80, 95)})  # a second, unrelated mark
    bumper = PhotoAnalysis(_info("a", "damage"), {"heights": _measured(30, 40)})
    assert check.assess_claim(_ctx([bumper, door, third], claim)) == []
    flagged = check.assess_claim(_ctx([door, third], claim))
    assert [f.code for f in flagged] == ["heights.inconsistent"] and flagged[0].photo_id == "d"


def test_no_scale_photo_gives_refusal_and_no_numbers():
    rng = np.random.default_rng([5, 2])
    jpeg, lab = hs.heights_scene(rng, [], [], (0.4, 0.5), no_ref=True)
    photo = decode_photo(jpeg)
    x1, y1, x2, y2 = (float(v) for v in lab["mark_box"].split())
    check = HeightsCheck()
    res = check.analyse_photo(photo, _info("t", "third_party", [{"x1": x1, "y1": y1, "x2": x2, "y2": y2,
                                                                  "part": "scratch"}]))
    assert res.data["status"] == "no_scale_reference"
    assert "bottom_cm" not in res.data["marks"][0]
    photos = [PhotoAnalysis(_info("a", "damage"), {"heights": _measured(30, 40)}),
              PhotoAnalysis(_info("t", "third_party"), {"heights": res.data})]
    found = check.assess_claim(_ctx(photos, {"loss_type": "collision"}))
    assert [f.code for f in found] == ["heights.no_scale_reference"]
    assert found[0].severity == Severity.INFO and found[0].photo_id == "t"


def test_flood_level_mismatch_rule():
    check = HeightsCheck()
    fl = {"status": "measured", "marks": [], "flood": {"found": True, "height_cm": 75.0, "sigma_cm": 3.0,
                                                       "level": 4, "confident": True}}
    photos = [PhotoAnalysis(_info("f", "damage"), {"heights": fl})]
    assert [f.code for f in check.assess_claim(_ctx(photos, {"loss_type": "flood", "flood_level": 2}))] == \
        ["flood.level_mismatch"]
    assert check.assess_claim(_ctx(photos, {"loss_type": "flood", "flood_level": 4})) == []
    fl["flood"]["confident"] = False
    assert check.assess_claim(_ctx(photos, {"loss_type": "flood", "flood_level": 3})) == []


def _flood_read(jpeg, tyre):
    from claimlens.vision.geometry.flood import detect_flood_line

    rgb = decode_photo(jpeg).rgb
    m = measure(rgb, [], detect_plate=False, tyre_mm=tyre_diameter_mm(tyre), ring_wheels=True)
    assert m.status == "measured" and m.reference["kind"] == "wheels"
    return detect_flood_line(rgb, m)


@pytest.mark.parametrize("level,seed", [(3, 13), (5, 17)])
def test_flood_line_level_on_rendered_silt_any_colour(level, seed):
    rng = np.random.default_rng([seed, 13])
    jpeg, lab = hs.flood_scene(rng, level)
    fl = _flood_read(jpeg, lab["tyre"])
    assert fl.found and fl.level == level
    assert fl.height_cm == pytest.approx(lab["height_cm"], abs=6.0)


def test_no_flood_line_on_a_clean_car():
    rng = np.random.default_rng([21, 13])
    jpeg, lab = hs.clean_scene(rng)
    assert not _flood_read(jpeg, lab["tyre"]).found


def _silted_side_view(mud_rgb, mud_h_cm, seed=5):
    """A side view of a car silted up to ``mud_h_cm`` with a fixed mud colour (2.6 m wheelbase, 205/55 R16,
    camera 3.5 m away at 1.2 m, slight yaw)."""
    import math

    rng = np.random.default_rng(seed)
    dia = tyre_diameter_mm("205/55 R16") / 1000
    tex, (x0m, x1m, ytop) = hs.side_texture(rng, dia, 2.6, np.array((150, 20, 25), np.float32), mud_h_cm=mud_h_cm,
                                            roof_top=1.5, mud=mud_rgb)
    yaw = math.radians(10)
    cam = hs.Camera([3.5 * math.sin(yaw), 1.2, 3.5 * math.cos(yaw)], [0, 0.6, 0], 0.77 * hs.W)
    img = hs.render_ground(cam, rng, shadow=(x0m + 0.2, x1m - 0.2, -1.8, 0.0))
    hs.composite(img, tex, cam.quad_h([x0m, ytop, 0], [1, 0, 0], [0, -1, 0], x1m - x0m, ytop, tex.shape[1],
                                      tex.shape[0]))
    return hs.finish(img, rng), "205/55 R16"


def test_wheels_found_under_pale_silt_by_the_rim_ring():
    """Pale silt makes the tyres lighter than a red body: the dark-ring cascade fails, the rim ring finds them."""
    from claimlens.vision.geometry.detect import find_wheels_ring

    jpeg, tyre = _silted_side_view((175, 165, 140), 45.0)
    rgb = decode_photo(jpeg).rgb
    ws = find_wheels_ring(rgb)
    assert len(ws) == 2 and ws[0].centre[0] < ws[1].centre[0]
    fl = _flood_read(jpeg, tyre)
    assert fl.found and fl.level == 3
    assert fl.height_cm == pytest.approx(45.0, abs=5.0)


def test_level_one_line_with_the_contact_under_the_silt():
    """A 12 cm line: the dark tyre ring ends at the silt, the contact is refined down to the ground."""
    jpeg, tyre = _silted_side_view((118, 95, 62), 12.0)
    fl = _flood_read(jpeg, tyre)
    assert fl.found and fl.level == 1
    assert fl.height_cm == pytest.approx(12.0, abs=4.0)


@pytest.mark.parametrize("seed", [3, 8])
def test_no_flood_line_on_more_clean_cars(seed):
    rng = np.random.default_rng([seed, 13])
    sc = hs.clean_scene(rng)
    assert sc is not None
    jpeg, lab = sc
    assert not _flood_read(jpeg, lab["tyre"]).found


def test_flood_suite_is_well_posed():
    for level in range(1, 7):
        lo, hi = hs.flood_height_range(level, 158.0)
        blo, bhi = level_interval(level)
        assert blo < lo < hi < bhi  # lines keep a margin from the level boundaries
    assert hs.flood_height_range(6, 158.0)[1] <= 154.0  # a roof line leaves clean roof above it


def test_heights_check_skips_plate_closeups_and_works_on_the_shared_copy():
    rng = np.random.default_rng([3, 1])
    jpeg, lab = hs.side_heights_scene(rng, [], (0.42, 0.55))
    photo = decode_photo(jpeg)
    check = HeightsCheck()
    skipped = check.analyse_photo(photo, _info("p", "plate"))
    assert skipped.data["status"] == "skipped" and not skipped.artifacts
    x1, y1, x2, y2 = (float(v) for v in lab["mark_box"].split())
    res = check.analyse_photo(photo, _info("d", "damage", [{"x1": x1, "y1": y1, "x2": x2, "y2": y2,
                                                            "part": "scratch"}]))
    assert res.data["pixel_scale"] == pytest.approx(1.0)  # a 1600 px photo is its own shared copy
    assert res.data["status"] == "measured"


def test_subpixel_plate_corners_on_a_rendered_front_view():
    """The plate border fit (edge points on profiles normal to each side, cv2.fitLine, intersections) lands
    within ~2 px of the true corners from corners 3-4 px off (the localiser's typical error), and the
    measurer uses it (source ``subpixel``)."""
    from claimlens.vision.geometry.detect import subpixel_plate_corners

    rng = np.random.default_rng([5, 2])
    jpeg, lab = hs.heights_scene(rng, [], [], (0.3, 0.4))
    rgb = decode_photo(jpeg).rgb
    true = np.array([float(v) for v in lab["plate_corners_true"].split()]).reshape(4, 2)
    start = true + np.array([[-3.0, -2.5], [3.5, -2.0], [3.0, 3.0], [-2.5, 3.5]])
    res = subpixel_plate_corners(rgb, start)
    assert res is not None
    corners, _sig = res
    err = np.linalg.norm(corners - true, axis=1)
    assert err.max() < 2.5, err
    assert err.mean() < 0.5 * np.linalg.norm(start - true, axis=1).mean()


def _front_scene_with_camera(monkeypatch, seed):
    """A rendered front/3-4 view (synthetic plate, procedural mark 30-42 cm) and its true camera."""
    cams = []

    class Rec(hs.Camera):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            cams.append(self)

    monkeypatch.setattr(hs, "Camera", Rec)
    jpeg, lab = hs.heights_scene(np.random.default_rng(seed), [], [], (0.30, 0.42))
    true = np.array([float(v) for v in lab["plate_corners_true"].split()]).reshape(4, 2)
    return decode_photo(jpeg).rgb, lab, true, cams[-1]


def _angle_deg(k, a, b):
    a, b = np.linalg.inv(k) @ a, np.linalg.inv(k) @ b
    return float(np.degrees(np.arccos(min(1.0, abs(a @ b) / np.linalg.norm(a) / np.linalg.norm(b)))))


def test_vanishing_points_of_a_rendered_front_view(monkeypatch):
    from claimlens.vision.geometry.detect import vertical_vanishing_point

    rgb, _lab, true, cam = _front_scene_with_camera(monkeypatch, [7, 6])
    v = vertical_vanishing_point(rgb, true)
    hz = vertical_vanishing_point(rgb, true, horizontal=True)
    assert v is not None and hz is not None
    assert _angle_deg(cam.K, v["vp"], cam.K @ cam.R @ np.array([0, 1.0, 0])) < 0.3
    assert _angle_deg(cam.K, hz["vp"], cam.K @ cam.R @ np.array([1.0, 0, 0])) < 0.3


def test_front_view_tilt_from_vanishing_points_beats_the_keystone(monkeypatch):
    import sys

    mod = sys.modules["claimlens.vision.geometry.measure"]
    rgb, lab, true, _cam = _front_scene_with_camera(monkeypatch, [7, 7])
    box = Box(*[float(v) for v in lab["mark_box"].split()])
    m = measure(rgb, [box], plate_corners=true, plate_source="given")
    assert m.ground["tilt_from"] == "vertical_vanishing_point"
    mk = m.marks[0]
    assert mk["bottom_cm"] == pytest.approx(30.0, abs=5.0) and mk["top_cm"] == pytest.approx(42.0, abs=5.0)
    assert mk["bottom_sigma_cm"] < 6.5  # v10: the focal from the VPs (sigma 4 %) and the pose-dependent contact
    monkeypatch.setattr(mod, "USE_VP", False)  # the plate's keystone alone: ~10 cm off on this view
    kmk = measure(rgb, [box], plate_corners=true, plate_source="given").marks[0]
    assert abs(kmk["bottom_cm"] - 30.0) > abs(mk["bottom_cm"] - 30.0) + 3.0


def test_rectangle_gate_rejects_a_plate_fit_of_the_wrong_shape(monkeypatch):
    import sys

    mod = sys.modules["claimlens.vision.geometry.measure"]
    _rgb, _lab, true, _cam = _front_scene_with_camera(monkeypatch, [7, 6])
    assert mod._rectangle_ok(true, "cn_blue", hs.W, hs.H, None)
    c = true.mean(0)
    squashed = c + (true - c) * np.array([1.0, 0.65])  # an inner band of the plate: 440 x 91 mm
    assert not mod._rectangle_ok(squashed, "cn_blue", hs.W, hs.H, None)


def test_single_wheel_sigma_covers_a_realistic_tyre_size_error_and_refuses_a_mark_below_it(monkeypatch):
    """One side wheel, no tyre code: the measurement assumes 650 mm; the real tyre may be a 185/60 R15
    (603 mm) or a 235/55 R18 (716 mm). Its 2 sigma must cover the height that either would give, and it must
    carry the ground error (5th revision; before, sigma was |h| x 30/650 + 3 cm, 7.5 cm at 97 cm, with no
    ground term). A mark below the wheel's contact is refused, not measured."""
    from claimlens.vision.geometry import detect

    wheel = detect.Wheel(centre=(800.0, 900.0), axes=(120.0, 200.0), angle=0.0, bottom=(800.0, 1000.0),
                         top=(800.0, 800.0), rim_fraction=0.2)  # 200 px high
    monkeypatch.setattr(detect, "find_wheels", lambda rgb, **kw: [wheel])
    rgb = np.full((1200, 1600, 3), 128, np.uint8)
    box = Box(300.0, 700.0, 500.0, 840.0)  # 160-300 px above the contact
    m = measure(rgb, [box], detect_plate=False)
    assert m.status == "measured" and m.reference["kind"] == "wheel"
    mk = m.marks[0]
    for true_mm in (603.0, 716.0):
        px_per_mm = 200.0 / true_mm
        true_bottom, true_top = 160 / px_per_mm / 10, 300 / px_per_mm / 10
        assert abs(mk["bottom_cm"] - true_bottom) <= 2 * mk["bottom_sigma_cm"]
        assert abs(mk["top_cm"] - true_top) <= 2 * mk["top_sigma_cm"]
    assert mk["top_sigma_cm"] >= 12.0  # the ground under the mark is not the ground under the wheel
    below = measure(rgb, [Box(300.0, 950.0, 500.0, 1040.0)], detect_plate=False)
    assert below.status == "insufficient_reference" and "bottom_cm" not in below.marks[0]


def test_one_wheel_ground_sigma_grows_as_the_camera_comes_closer() -> None:
    """6th revision: the one-wheel scale's ground uncertainty is camera height x plane offset / distance, the
    distance from the wheel's pixel height; a wheel filling more of the photo (closer) gives a wider sigma,
    never below the 3-4 m value."""
    import importlib

    from claimlens.vision.geometry.detect import Wheel

    M = importlib.import_module("claimlens.vision.geometry.measure")
    rgb = np.full((1000, 1500, 3), 128, np.uint8)
    mark = [Box(700, 500, 800, 560)]

    def sigma(wheel_px: float) -> float:
        w = Wheel((400.0, 800.0 - wheel_px / 2), (wheel_px, wheel_px), 0.0, (400.0, 800.0), (400.0, 800.0 - wheel_px),
                  0.5)
        m = M._measure_local(rgb, mark, w, None, None, None)
        assert m.status == "measured"
        return m.reference["ground_sigma_cm"]

    far, near = sigma(140.0), sigma(450.0)  # ~5.3 m and ~1.7 m with the focal prior and a 650 mm tyre
    assert far == M.SINGLE_WHEEL_GROUND_SIGMA_CM
    assert near > 2 * far


def test_one_wheel_scale_is_refused_when_the_body_side_recedes() -> None:
    """6th revision: long body lines slanting by more than SINGLE_WHEEL_MAX_OBLIQUITY_DEG mean the side is seen
    obliquely, and a single wheel's local scale does not hold at a mark at another depth."""
    import importlib

    import cv2

    from claimlens.vision.geometry.detect import Wheel

    M = importlib.import_module("claimlens.vision.geometry.measure")

    def photo(slant_deg: float) -> np.ndarray:
        rgb = np.full((1000, 1500, 3), 200, np.uint8)
        dy = round(float(1200 * np.tan(np.radians(slant_deg))))
        for y in (300, 450, 600):  # belt, window and sill lines
            cv2.line(rgb, (150, y), (1350, y + dy), (40, 40, 40), 6)
        return rgb

    wheel = Wheel((400.0, 725.0), (150.0, 150.0), 0.0, (400.0, 800.0), (400.0, 650.0), 0.5)
    mark = [Box(700, 500, 800, 560)]
    assert M._body_line_slant_deg(photo(0.0)) < 1.0
    assert abs(M._body_line_slant_deg(photo(15.0)) - 15.0) < 1.5
    assert M._measure_local(photo(1.0), mark, wheel, None, None, None).status == "measured"
    refused = M._measure_local(photo(15.0), mark, wheel, None, None, None)
    assert refused.status == "insufficient_reference" and "bottom_cm" not in refused.marks[0]


def test_a_mark_under_the_ground_is_withdrawn_and_close_range_widens_sigma() -> None:
    import importlib

    M = importlib.import_module("claimlens.vision.geometry.measure")
    m = M.Measurement("measured", marks=[{"box": [0, 0, 1, 1], "bottom_cm": -45.8, "top_cm": -35.4,
                                          "bottom_sigma_cm": 2.0, "top_sigma_cm": 1.9}])
    out = M._below_ground_refused(m)
    assert out.status == "insufficient_reference" and "bottom_cm" not in out.marks[0]
    assert out.marks[0]["withdrawn"] == "below_ground"
    ok = M.Measurement("measured", marks=[{"box": [0, 0, 1, 1], "bottom_cm": -4.0, "top_cm": 10.0,
                                           "bottom_sigma_cm": 2.0, "top_sigma_cm": 2.0}])
    assert M._below_ground_refused(ok).status == "measured"  # within 2 sigma + 3 cm of the ground
    assert M.close_range_sigma_cm(4.0) == 0.0 == M.close_range_sigma_cm(M.CLOSE_RANGE_REF_M)
    assert M.close_range_sigma_cm(1.0) > M.close_range_sigma_cm(2.0) > 0.0


def _tyre_envelope(cam, x_plane: float, z_axle: float, radius: float, width: float, outward: float):
    """A tyre (two circles of ``radius`` in the planes x and x - outward * width, touching the ground at depth
    z_axle) rasterised through ``cam``: its lower envelope and the true contacts of both circles."""
    import cv2

    from claimlens.vision.geometry.detect import lower_envelope

    t = np.linspace(0, 2 * np.pi, 720)
    mask = np.zeros((hs.H, hs.W), np.uint8)
    rims = []
    for x in (x_plane, x_plane - outward * width):
        pts3 = np.c_[np.full_like(t, x), radius + radius * np.cos(t), z_axle + radius * np.sin(t)]
        p, _z = cam.project(pts3)
        rims.append(p)
    hull = cv2.convexHull(np.round(np.vstack(rims) * 4).astype(np.int32))
    cv2.fillPoly(mask, [hull], 1, shift=2)
    outline = lower_envelope(mask)
    contacts, _ = cam.project(np.array([[x_plane, 0, z_axle], [x_plane - outward * width, 0, z_axle]]))
    return outline, contacts


@pytest.mark.parametrize("yaw_deg", [10.0, 35.0])
def test_ground_contact_is_the_tangent_from_the_long_axis_vanishing_point(yaw_deg: float) -> None:
    """A tyre seen obliquely (3/4 front view, 1.5 m): its lowest pixel is not its contact (the old rule took
    the lowest rows), the tangent from the long axis' vanishing point on the ground side is (within 1.5 cm)."""
    from claimlens.vision.geometry.detect import ground_contact

    a = np.radians(yaw_deg)
    cam = hs.Camera([1.5 * np.sin(a) + 0.3, 1.3, 1.5 * np.cos(a)], [0.5, 0.3, -0.4], 1200.0)
    outline, contacts = _tyre_envelope(cam, 0.9, -0.85, 0.32, 0.2, 1.0)
    along = cam.K @ cam.R @ np.array([0, 0, -1.0])  # the car's long axis, into the scene
    down = np.diff(cam.project(np.array([[0.9, 0.3, -0.85], [0.9, 0.2, -0.85]]))[0], axis=0)[0]
    kinv = np.linalg.inv(cam.K)

    def height_cm(p):  # the pixel's ray met at the axle's depth, as the measurement does
        d = cam.R.T @ kinv @ np.array([p[0], p[1], 1.0])
        return 100 * (cam.c + (-0.85 - cam.c[2]) / d[2] * d)[1]

    got = ground_contact(outline, along, down)
    assert abs(height_cm(got)) < 1.5
    assert min(np.linalg.norm(contacts - got, axis=1)) < 6.0  # (along the steep tangent: cheap in height)
    assert height_cm(outline[np.argmax(outline[:, 1])]) < -4.0  # the blob's lowest pixel: 5-7 cm under


def test_focal_length_from_two_orthogonal_vanishing_points() -> None:
    import importlib

    M = importlib.import_module("claimlens.vision.geometry.measure")
    cam = hs.Camera([0.9, 1.2, 1.6], [0.0, 0.4, 0.0], 1150.0, roll_deg=2.0)
    vy = cam.K @ cam.R @ np.array([0, 1.0, 0])
    vx = cam.K @ cam.R @ np.array([1.0, 0, 0])
    assert M.focal_from_vanishing_points(vx, vy, hs.W, hs.H) == pytest.approx(1150.0, rel=1e-6)
    assert M.focal_from_vanishing_points(np.array([1.0, 0.0, 0.0]), vy, hs.W, hs.H) is None  # at infinity


def test_plate_quad_in_a_loose_crop_is_the_plates_own() -> None:
    """A tilted plate inside its axis-aligned crop (as the LPRNet crops are): the suite rectifies by the
    plate's own corners (within 1.5 px), not by the crop's; a plate whose corner the crop cuts off is skipped."""
    import cv2

    crop = np.full((24, 94, 3), (60, 70, 80), np.uint8)  # bumper-grey background (BGR)
    quad = np.array([[4.0, 5.0], [88.0, 1.5], [90.0, 19.0], [6.0, 22.5]])
    cv2.fillConvexPoly(crop, np.round(quad * 16).astype(np.int32), (170, 60, 20), cv2.LINE_AA, 4)
    for i in range(6):
        cv2.putText(crop, "A", (12 + 12 * i, 17), cv2.FONT_HERSHEY_PLAIN, 0.8, (230, 230, 230), 1)
    got = hs.plate_quad_in_crop(crop)  # ~1 px outward on an anti-aliased edge; the repainted rim makes it moot
    assert got is not None and np.abs(got - quad).max() < 1.5
    cut = np.full((24, 94, 3), (60, 70, 80), np.uint8)  # a tilted plate whose top-right corner is outside
    cv2.fillConvexPoly(cut, np.array([[4, 8], [104, -6], [106, 14], [6, 23]], np.int32), (170, 60, 20))
    assert hs.plate_quad_in_crop(cut) is None


def test_band_balanced_quantile_weights_each_band_alike() -> None:
    """The balanced heights bench pools bands of unequal size with equal weight: a small band of large errors
    moves the pooled p90 as much as a large band would."""
    from claimlens.bench.heights import _weighted_quantile

    small_bad, big_good = np.full(10, 20.0), np.full(90, 1.0)
    e = np.r_[small_bad, big_good]
    w = np.r_[np.full(10, 1 / 10), np.full(90, 1 / 90)]
    assert _weighted_quantile(e, w, 0.9) == 20.0  # half the weight is in the bad band
    assert _weighted_quantile(e, np.ones(100), 0.9) == 1.0  # unweighted: 10 % bad, p90 still good
    assert _weighted_quantile(e, w, 0.4) == 1.0


def test_flood_line_and_reported_level_against_the_record_at_the_loss_place_and_time():
    check = HeightsCheck()
    fl = {"status": "measured", "marks": [], "flood": {"found": True, "height_cm": 95.0, "sigma_cm": 4.0,
                                                       "level": 5, "confident": True}}
    photos = [PhotoAnalysis(_info("f", "damage"), {"heights": fl})]
    rec = {"depth_cm": 40.0, "source": "gauge 17", "time": "2026-07-01T10:00:00+08:00", "lat": 31.20, "lon": 121.40}
    claim = {"loss_type": "flood", "flood_level": 5, "loss_time": "2026-07-01T08:30:00+08:00",
             "loss_lat": 31.21, "loss_lon": 121.41, "flood_record": rec}
    codes = sorted(f.code for f in check.assess_claim(_ctx(photos, claim)))
    assert codes == ["flood.above_recorded_depth", "flood.reported_above_recorded"]  # 95 - 8 > 40 + 30; 90 > 70
    # within tolerance: a line at 75 +- 4 cm over 40 cm recorded (a dip) and a reported level 4 (64-90 cm)
    fl["flood"].update(height_cm=75.0, level=4)
    assert [f.code for f in check.assess_claim(_ctx(photos, claim | {"flood_level": 4}))] == []
    # a record of another day or another town is not compared, and the report says why
    claim4 = claim | {"flood_level": 4}
    far = check.assess_claim(_ctx(photos, claim4 | {"flood_record": rec | {"time": "2026-07-04T10:00:00+08:00"}}))
    assert [f.code for f in far] == ["flood.record_not_comparable"] and "h from the loss" in far[0].message
    far = check.assess_claim(_ctx(photos, claim4 | {"flood_record": rec | {"lat": 31.5}}))
    assert [f.code for f in far] == ["flood.record_not_comparable"] and far[0].severity == Severity.INFO


def test_flood_record_is_validated_with_the_claim():
    from pydantic import ValidationError

    from claimlens.core.schemas import ClaimData

    ok = ClaimData(flood_record={"depth_cm": 40, "source": "gauge 17", "time": "2026-07-01T10:00:00+08:00"})
    assert ok.flood_record is not None and ok.flood_record.depth_cm == 40
    with pytest.raises(ValidationError):
        ClaimData(flood_record={"depth_cm": -5, "source": "gauge"})
    with pytest.raises(ValidationError):
        ClaimData(flood_record={"depth_cm": 40})  # no source: a number without provenance is not evidence


def test_tyre_size_code_read_off_a_rendered_sidewall_and_not_off_a_plain_one():
    from claimlens.datasets.tyre_codes import render_wheel
    from claimlens.vision.geometry.tyre_code import parse_code, read_tyre_code

    assert parse_code("265/5520") == ("265/55 R20", pytest.approx(2 * 265 * 0.55 + 20 * 25.4))  # R dropped
    assert parse_code("2O5/55ZR16")[0] == "205/55 R16"  # O read for 0, the speed-rating ZR
    assert parse_code("173/45R20") is None and parse_code("205/55 R30") is None  # not a size that exists
    rgb, lab = render_wheel(np.random.default_rng([0, 1, 71]), "225/45 R17", 380)
    got = read_tyre_code(rgb, lab["centre"], lab["axes"], lab["angle"], lab["rim_fraction"])
    assert got is not None and got.code == "225/45 R17" and got.diameter_mm == pytest.approx(634.3, abs=0.1)
    plain, lab = render_wheel(np.random.default_rng([0, 1, 71]), None, 380)
    assert read_tyre_code(plain, lab["centre"], lab["axes"], lab["angle"], lab["rim_fraction"]) is None


@pytest.mark.parametrize("kind", ["cn_blue", "eu", "us"])
def test_plate_kind_told_from_the_corners_shape(kind: str) -> None:
    """A plate of each size class seen obliquely (exact corners): its class is the one whose rectangle fits;
    a green Chinese-shaped plate is the new-energy one."""
    import importlib

    import cv2

    M = importlib.import_module("claimlens.vision.geometry.measure")
    from claimlens.vision.geometry.references import PLATE_SIZES_MM

    cam = hs.Camera([0.6, 1.2, 2.5], [0.0, 0.45, 0.0], 1230.0, roll_deg=2.0)
    w, h = (v / 1000 for v in PLATE_SIZES_MM[kind])
    corners, _ = cam.project(np.array([[-w / 2, 0.45 + h / 2, 0], [w / 2, 0.45 + h / 2, 0],
                                       [w / 2, 0.45 - h / 2, 0], [-w / 2, 0.45 - h / 2, 0]]))
    rgb = np.full((hs.H, hs.W, 3), 120, np.uint8)
    cv2.fillConvexPoly(rgb, np.round(corners).astype(np.int32), (20, 60, 170))
    assert M.infer_plate_kind(rgb, corners)[0] == kind
    if kind == "cn_blue":
        cv2.fillConvexPoly(rgb, np.round(corners).astype(np.int32), (40, 170, 80))
        assert M.infer_plate_kind(rgb, corners)[0] == "cn_nev"


def test_sidewall_strip_stays_bounded_when_the_rim_fills_the_wheel():
    """A false "wheel" whose rim fills its ellipse once unwrapped into a strip of unbounded length (1.3 GB)."""
    from claimlens.vision.geometry.tyre_code import STRIP_HEIGHT, unwrap_sidewall

    rgb = np.zeros((600, 600, 3), np.uint8)
    for rim in (0.38, 0.9, 0.99, 1.0):
        strip = unwrap_sidewall(rgb, (300.0, 300.0), (500.0, 520.0), 0.0, rim)
        assert strip.shape[0] == STRIP_HEIGHT and strip.shape[1] < 40 * STRIP_HEIGHT
