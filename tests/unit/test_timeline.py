"""The metadata_timeline check: every rule firing and not firing at its threshold, time-zone handling and
the ceiling on missing-metadata findings."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfoNotFoundError

import numpy as np
import pytest

from claimlens.checks.base import ClaimContext, Finding, IndexHit, PhotoAnalysis, PhotoInfo, Severity
from claimlens.checks.metadata_timeline import MetadataTimelineCheck, editing_software, haversine_km
from claimlens.config import TimelineSettings
from claimlens.vision.decode import DecodedPhoto
from claimlens.vision.metadata import PhotoMetadata

NAME = "metadata_timeline"
SETTINGS = TimelineSettings()  # the documented defaults, independent of the environment
CHECK = MetadataTimelineCheck(SETTINGS)
LOSS_LAT, LOSS_LON = 31.2304, 121.4737  # Shanghai
KM_PER_DEGREE_LAT = haversine_km(0.0, 0.0, 1.0, 0.0)


class NoIndex:
    def lookup(self, kind: str, values: list[str]) -> list[IndexHit]:
        return []

    def search_codes(self, kind: str, codes: list[int], max_distance: int, limit: int = 50) -> list[Any]:
        return []


def meta(time: str | None = "2024-05-12T10:00:00+08:00", *, make: str | None = "Apple",
         model: str | None = "iPhone 13", software: str | None = "17.1", gps: tuple[float, float] | None = None,
         has_exif: bool | None = None, problems: list[str] | None = None) -> PhotoMetadata:
    dt = datetime.fromisoformat(time) if time else None
    return PhotoMetadata(
        capture_time=dt, capture_time_has_offset=bool(dt and dt.tzinfo),
        capture_time_source="DateTimeOriginal" if dt else None, make=make, model=model, software=software,
        gps_lat=gps[0] if gps else None, gps_lon=gps[1] if gps else None,
        has_exif=has_exif if has_exif is not None else bool(dt or make or model or software or gps),
        problems=problems or [],
    )


def photo(pid: str, stage: str = "survey", time: str | None = "2024-05-12T10:00:00+08:00",
          **kw: Any) -> PhotoAnalysis:
    md = kw.pop("md", None) or meta(time, **kw)
    data = json.loads(json.dumps(md.to_json() | {"format": "JPEG", "width": 64, "height": 48}))
    info = PhotoInfo(photo_id=pid, claim_id="C1", stage=stage, role=None, sha256=pid * 4, size_bytes=1000,
                     filename=None, uploaded_at=None)
    return PhotoAnalysis(info=info, data={NAME: data})


def no_exif(pid: str, stage: str = "survey") -> PhotoAnalysis:
    return photo(pid, stage, md=PhotoMetadata())


CLAIM: dict[str, Any] = {
    "claim_id": "C1",
    "policy_start": "2024-05-10T00:00:00+08:00",
    "loss_time": "2024-05-11T18:00:00+08:00",
    "report_time": "2024-05-11T20:00:00+08:00",
    "loss_lat": LOSS_LAT,
    "loss_lon": LOSS_LON,
}


def assess(photos: list[PhotoAnalysis], claim: dict[str, Any] | None = None,
           check: MetadataTimelineCheck = CHECK) -> list[Finding]:
    return check.assess_claim(ClaimContext(claim=CLAIM if claim is None else claim, photos=photos,
                                           index=NoIndex(), load_artifact=lambda *a: None,
                                           load_thumbnail=lambda *a: None))


def codes(findings: list[Finding]) -> dict[str, Finding]:
    out = {f.code: f for f in findings}
    assert len(out) == len(findings) or all(f.code in ("metadata.stage_span", "metadata.camera_change",
                                                       "metadata.missing") for f in findings)
    return out


def iso(base: str, **delta: float) -> str:
    return (datetime.fromisoformat(base) + timedelta(**delta)).isoformat()


# ---------------------------------------------------------------------------------------------- baseline


def test_consistent_claim_has_no_findings() -> None:
    photos = [photo("s1", gps=(LOSS_LAT, LOSS_LON)), photo("s2", time="2024-05-12T10:20:00+08:00"),
              photo("u1", "underwriting", "2024-05-09T09:00:00+08:00"),
              photo("d1", "document", "2020-01-01T10:00:00+08:00", make="Canon", model="LiDE")]
    assert assess(photos) == []


def test_no_photos_and_undecodable_photos() -> None:
    assert assess([]) == []
    broken = PhotoAnalysis(info=photo("x").info, data={}, error="corrupt")
    assert assess([broken]) == []


def test_deterministic() -> None:
    photos = [photo("b", time="2024-05-01T10:00:00"), photo("a", time="2024-05-01T10:00:00+08:00",
                                                              make="HUAWEI", model="P60"), no_exif("c")]
    assert assess(photos) == assess(list(photos))


# ------------------------------------------------------------------------------------ before_policy_start

POLICY_START = "2024-05-10T00:00:00+08:00"
GRACE_PS = SETTINGS.policy_start_grace_hours


def test_before_policy_start_boundary() -> None:
    at_limit = photo("s1", time=iso(POLICY_START, hours=-GRACE_PS))
    assert "metadata.before_policy_start" not in codes(assess([at_limit]))
    beyond = photo("s1", time=iso(POLICY_START, hours=-GRACE_PS, minutes=-1))
    f = codes(assess([beyond]))["metadata.before_policy_start"]
    assert f.severity == Severity.HIGH
    assert f.photo_id == "s1"
    assert f.evidence["grace_hours"] == GRACE_PS
    assert f.evidence["photo_ids"] == ["s1"]
    assert f.evidence["photos"][0]["hours_before"] == pytest.approx(GRACE_PS + 1 / 60, abs=0.01)
    assert f.evidence["assumed_timezone"] == SETTINGS.default_timezone
    assert "policy" in f.message and "24" in f.message


@pytest.mark.parametrize("stage, fires", [("survey", True), ("assessment", True), ("reinspection", True),
                                          ("underwriting", False), ("document", False)])
def test_before_policy_start_stages(stage: str, fires: bool) -> None:
    p = photo("p1", stage, "2024-04-01T10:00:00+08:00")
    assert ("metadata.before_policy_start" in codes(assess([p]))) is fires


def test_before_policy_start_lists_all_photos() -> None:
    photos = [photo("s1", time="2024-04-01T10:00:00+08:00"), photo("s2", time="2024-04-03T10:00:00+08:00"),
              photo("s3")]
    f = codes(assess(photos))["metadata.before_policy_start"]
    assert f.photo_id is None
    assert f.evidence["photo_ids"] == ["s1", "s2"]
    assert "2 survey photos" in f.message


# ----------------------------------------------------------------------------------------- before_loss

LOSS = "2024-05-11T18:00:00+08:00"
GRACE_BL = SETTINGS.before_loss_grace_hours


def test_before_loss_boundary() -> None:
    claim = CLAIM | {"policy_start": None}
    assert "metadata.before_loss" not in codes(assess([photo("s1", time=iso(LOSS, hours=-GRACE_BL))], claim))
    f = codes(assess([photo("a1", "assessment", iso(LOSS, hours=-GRACE_BL, seconds=-1))], claim))[
        "metadata.before_loss"]
    assert f.severity == Severity.HIGH
    assert f.evidence["loss_time"] == datetime.fromisoformat(LOSS).isoformat()
    assert f.evidence["grace_hours"] == GRACE_BL


@pytest.mark.parametrize("stage, fires", [("survey", True), ("assessment", True), ("reinspection", False),
                                          ("underwriting", False), ("document", False)])
def test_before_loss_stages(stage: str, fires: bool) -> None:
    p = photo("p1", stage, iso(LOSS, hours=-30))
    assert ("metadata.before_loss" in codes(assess([p]))) is fires


# ----------------------------------------------------------------------------------------- after_report

REPORT = "2024-05-11T20:00:00+08:00"
GRACE_AR = SETTINGS.after_report_grace_hours


def test_after_report_boundary() -> None:
    assert "metadata.after_report" not in codes(assess([photo("s1", time=iso(REPORT, hours=GRACE_AR))]))
    f = codes(assess([photo("s1", time=iso(REPORT, hours=GRACE_AR, minutes=1))]))["metadata.after_report"]
    assert f.severity == Severity.LOW
    assert f.evidence["photos"][0]["hours_after"] == pytest.approx(GRACE_AR + 1 / 60, abs=0.01)


@pytest.mark.parametrize("stage", ["assessment", "reinspection", "underwriting", "document"])
def test_after_report_only_survey(stage: str) -> None:
    assert "metadata.after_report" not in codes(assess([photo("p1", stage, iso(REPORT, hours=GRACE_AR + 50))]))


# ------------------------------------------------------------------------------------------- stage_span

SPAN = SETTINGS.max_stage_span_hours
T0 = "2024-05-12T09:00:00+08:00"


def test_stage_span_boundary() -> None:
    ok = [photo("s1", time=T0), photo("s2", time=iso(T0, hours=SPAN)), photo("s3", time=iso(T0, hours=1))]
    assert "metadata.stage_span" not in codes(assess(ok))
    too_long = [photo("s1", time=T0), photo("s2", time=iso(T0, hours=SPAN, minutes=1))]
    f = codes(assess(too_long))["metadata.stage_span"]
    assert f.severity == Severity.MEDIUM
    assert f.evidence["stage"] == "survey"
    assert f.evidence["span_hours"] == pytest.approx(SPAN + 1 / 60, abs=0.01)
    assert (f.evidence["earliest_photo_id"], f.evidence["latest_photo_id"]) == ("s1", "s2")
    assert f.evidence["max_span_hours"] == SPAN


def test_stage_span_is_per_stage_and_skips_documents() -> None:
    photos = [photo("s1", time=T0), photo("a1", "assessment", iso(T0, hours=SPAN + 10)),
              photo("d1", "document", "2024-05-01T10:00:00+08:00"), photo("d2", "document", iso(T0, hours=200))]
    assert "metadata.stage_span" not in codes(assess(photos))


def test_stage_span_without_offsets_compares_wall_clocks() -> None:
    # two offset-less photos from one camera: their difference does not depend on the zone
    fine = [photo("s1", time="2024-05-12T09:00:00"), photo("s2", time=iso("2024-05-12T09:00:00", hours=SPAN))]
    assert "metadata.stage_span" not in codes(assess(fine))
    long = [photo("s1", time="2024-05-12T09:00:00"), photo("s2", time=iso("2024-05-12T09:00:00", hours=SPAN + 1))]
    assert "metadata.stage_span" in codes(assess(long))


def test_stage_span_mixed_offsets_is_widened() -> None:
    # aware photo at T0; offset-less photo whose wall clock is SPAN + 10 h later (assumed Shanghai): a zone
    # up to UTC+14 could shrink that by 6 h, still over the limit; 5 h over could be a wrong zone
    wall_t0 = "2024-05-12T09:00:00"
    over = [photo("s1", time=T0), photo("s2", time=iso(wall_t0, hours=SPAN + 7))]
    f = codes(assess(over))["metadata.stage_span"]
    assert f.evidence["span_hours_any_zone"] == pytest.approx(SPAN + 1)
    assert f.evidence["offset_missing_photo_ids"] == ["s2"]
    maybe = [photo("s1", time=T0), photo("s2", time=iso(wall_t0, hours=SPAN + 6))]
    assert "metadata.stage_span" not in codes(assess(maybe))


# ---------------------------------------------------------------------------------------------- gps_far

LIMIT_KM = SETTINGS.max_gps_distance_km


def test_gps_far_boundary() -> None:
    just_inside = LOSS_LAT + (LIMIT_KM - 0.05) / KM_PER_DEGREE_LAT
    just_outside = LOSS_LAT + (LIMIT_KM + 0.05) / KM_PER_DEGREE_LAT
    assert "metadata.gps_far" not in codes(assess([photo("s1", gps=(just_inside, LOSS_LON))]))
    f = codes(assess([photo("s1", gps=(just_outside, LOSS_LON))]))["metadata.gps_far"]
    assert f.severity == Severity.MEDIUM
    assert f.evidence["photos"][0]["distance_km"] == pytest.approx(LIMIT_KM + 0.05, abs=0.01)
    assert f.evidence["max_distance_km"] == LIMIT_KM
    assert f"{LIMIT_KM + 0.05:.1f} km" in f.message


def test_gps_far_exact_threshold_does_not_fire() -> None:
    lat = LOSS_LAT + 0.3
    exact = TimelineSettings(max_gps_distance_km=haversine_km(LOSS_LAT, LOSS_LON, lat, LOSS_LON))
    assert assess([photo("s1", gps=(lat, LOSS_LON))], check=MetadataTimelineCheck(exact)) == []


def test_gps_far_only_survey_and_needs_loss_location() -> None:
    beijing = (39.9042, 116.4074)
    assert haversine_km(LOSS_LAT, LOSS_LON, *beijing) == pytest.approx(1067, abs=5)
    assert "metadata.gps_far" not in codes(assess([photo("a1", "assessment", gps=beijing)]))
    assert "metadata.gps_far" not in codes(assess([photo("s1", gps=beijing)], CLAIM | {"loss_lat": None}))
    f = codes(assess([photo("s1", gps=beijing), photo("s2", gps=(LOSS_LAT, LOSS_LON))]))["metadata.gps_far"]
    assert f.photo_id == "s1" and f.evidence["photo_ids"] == ["s1"]


# ---------------------------------------------------------------------------------------- camera_change


def test_camera_change() -> None:
    same = [photo("s1"), photo("s2", make="APPLE ", model="iphone 13"), no_exif("s3"),
            photo("s4", make=None, model=None, software=None, time="2024-05-12T10:05:00+08:00")]
    assert "metadata.camera_change" not in codes(assess(same))
    mixed = [photo("s1"), photo("s2"), photo("s3", make="HUAWEI", model="Mate 60"), no_exif("s4")]
    f = codes(assess(mixed))["metadata.camera_change"]
    assert f.severity == Severity.LOW
    assert f.evidence["stage"] == "survey"
    assert [c["photo_ids"] for c in f.evidence["cameras"]] == [["s1", "s2"], ["s3"]]
    assert f.evidence["photo_ids"] == ["s1", "s2", "s3"]
    assert "HUAWEI Mate 60" in f.message and "Apple iPhone 13" in f.message


def test_camera_change_is_per_stage() -> None:
    photos = [photo("u1", "underwriting", "2024-05-09T10:00:00+08:00", make="HUAWEI", model="P60"),
              photo("s1"), photo("d1", "document", make="Canon", model="LiDE 400")]
    assert "metadata.camera_change" not in codes(assess(photos))


# ---------------------------------------------------------------------------------------------- missing


def test_missing_mixed_stage_is_low() -> None:
    photos = [photo("s1"), no_exif("s2"), photo("s3", time=None, problems=["DateTimeOriginal: zero or blank date"]),
              photo("a1", "assessment"), photo("a2", "assessment")]
    found = [f for f in assess(photos) if f.code == "metadata.missing"]
    assert len(found) == 1
    f = found[0]
    assert f.severity == Severity.LOW
    assert f.evidence["stage"] == "survey"
    assert f.evidence["photo_ids"] == ["s2", "s3"]
    assert f.evidence["photo_ids_without_exif"] == ["s2"]
    assert f.evidence["metadata_problems"] == {"s3": ["DateTimeOriginal: zero or blank date"]}


def test_missing_everywhere_is_info() -> None:
    findings = assess([no_exif("s1"), no_exif("s2"), no_exif("a1", "assessment")])
    assert [f.code for f in findings] == ["metadata.missing"]
    assert findings[0].severity == Severity.INFO
    assert "could not run" in findings[0].message


def test_missing_ignores_documents_and_full_stages() -> None:
    photos = [photo("s1"), no_exif("d1", "document"), photo("d2", "document"), no_exif("a1", "assessment")]
    assert "metadata.missing" not in codes(assess(photos))


@pytest.mark.parametrize("seed", range(20))
def test_missing_metadata_is_never_above_low(seed: int) -> None:
    rng = np.random.default_rng(seed)
    stages = ["underwriting", "survey", "assessment", "reinspection", "document"]
    photos = []
    for i in range(8):
        stage = stages[rng.integers(len(stages))]
        photos.append(no_exif(f"p{i}", stage) if rng.random() < 0.6 else photo(f"p{i}", stage))
    for f in assess(photos):
        if f.code == "metadata.missing":
            assert f.severity <= Severity.LOW


# ---------------------------------------------------------------------------------------------- time zones

# policy start 2024-05-10 00:00 +08:00 = 2024-05-09 16:00 UTC; minus 24 h grace = 2024-05-08 16:00 UTC.
# An offset-less wall time W could be any instant in [W - 14 h, W + 12 h] (UTC): it fires only when
# W + 12 h < 2024-05-08 16:00, i.e. W < 2024-05-08 04:00.


def test_missing_offset_widens_high_rules() -> None:
    at_bound = photo("s1", time="2024-05-08T04:00:00")
    # read in Asia/Shanghai it is 44 h before the policy start, but UTC-12 would make it exactly 24 h
    assert "metadata.before_policy_start" not in codes(assess([at_bound]))
    assert "metadata.before_policy_start" in codes(assess([photo("s1", time="2024-05-08T04:00:00+08:00")]))
    beyond = photo("s1", time="2024-05-08T03:59:00")
    f = codes(assess([beyond]))["metadata.before_policy_start"]
    assert f.evidence["assumed_timezone"] == "Asia/Shanghai"
    assert f.evidence["offset_missing_photo_ids"] == ["s1"]
    assert f.evidence["photos"][0]["hours_before"] == pytest.approx(44 + 1 / 60, abs=0.01)
    assert f.evidence["photos"][0]["hours_before_any_zone"] == pytest.approx(24 + 1 / 60, abs=0.01)
    assert f.evidence["photos"][0]["offset_recorded"] is False


def test_wrong_zone_alone_never_raises_a_high_flag() -> None:
    # whenever an offset-less time fires a HIGH rule, the same wall time fires it in every real zone
    offsets = [60 * h for h in range(-12, 15)] + [-570, 330, 345, 525, 765]  # whole hours + odd zones
    fired_count = 0
    for minutes in [*range(0, 60 * 60, 71), 1679, 1680, 1681]:  # 1680 min = the policy-start bound
        wall = datetime(2024, 5, 7, 0, 0) + timedelta(minutes=minutes)
        fired = any(f.severity == Severity.HIGH for f in assess([photo("s1", time=wall.isoformat())]))
        if not fired:
            continue
        fired_count += 1
        for offset in offsets:
            aware = wall.replace(tzinfo=timezone(timedelta(minutes=offset)))
            high = [f for f in assess([photo("s1", time=aware.isoformat())]) if f.severity == Severity.HIGH]
            assert high, (wall, offset)
    assert fired_count > 5


def test_before_loss_widening() -> None:
    # loss 2024-05-11 18:00 +08:00 = 10:00 UTC; minus 24 h = 2024-05-10 10:00 UTC -> wall bound 2024-05-09 22:00
    claim = CLAIM | {"policy_start": None}
    assert "metadata.before_loss" not in codes(assess([photo("s1", time="2024-05-09T22:00:00")], claim))
    assert "metadata.before_loss" in codes(assess([photo("s1", time="2024-05-09T21:59:00")], claim))


def test_claim_times_without_offset_use_the_default_zone() -> None:
    claim = CLAIM | {"policy_start": "2024-05-10T00:00:00"}  # read as Asia/Shanghai
    assert "metadata.before_policy_start" not in codes(assess([photo("s1", time="2024-05-09T00:00:00+08:00")],
                                                              claim))
    f = codes(assess([photo("s1", time="2024-05-08T23:59:00+08:00")], claim))["metadata.before_policy_start"]
    assert f.evidence["claim_time_zone_assumed"] is True
    assert f.evidence["policy_start"] == "2024-05-10T00:00:00+08:00"
    # a date-only value and a 'Z' time are accepted too
    assert "metadata.before_policy_start" in codes(assess([photo("s1", time="2024-05-08T23:59:00+08:00")],
                                                          CLAIM | {"policy_start": "2024-05-10"}))
    assert "metadata.before_policy_start" in codes(assess([photo("s1", time="2024-05-08T15:59:00+00:00")],
                                                          CLAIM | {"policy_start": "2024-05-09T16:00:00Z"}))


def test_default_timezone_setting() -> None:
    utc_check = MetadataTimelineCheck(TimelineSettings(default_timezone="UTC"))
    claim = CLAIM | {"policy_start": "2024-05-10T00:00:00", "loss_time": None}  # midnight UTC now
    assert "metadata.before_policy_start" not in codes(
        assess([photo("s1", time="2024-05-09T00:00:00+00:00")], claim, utc_check))
    assert "metadata.before_policy_start" in codes(
        assess([photo("s1", time="2024-05-08T23:59:00+00:00")], claim, utc_check))
    with pytest.raises(ZoneInfoNotFoundError):
        MetadataTimelineCheck(TimelineSettings(default_timezone="Mars/Olympus_Mons"))


def test_unreadable_claim_times_skip_the_rules() -> None:
    claim = CLAIM | {"policy_start": "soon", "loss_time": 12, "report_time": ""}
    assert assess([photo("s1", time="2000-01-01T00:00:00+08:00")], claim) == []


def test_default_settings_come_from_config() -> None:
    assert MetadataTimelineCheck().settings.default_timezone


# ---------------------------------------------------------------------------------------------- per photo


def decoded(md: PhotoMetadata) -> DecodedPhoto:
    return DecodedPhoto(rgb=np.zeros((48, 64, 3), np.uint8), format="JPEG", metadata=md)


def info(pid: str = "p1") -> PhotoInfo:
    return photo(pid).info


def test_analyse_photo_data() -> None:
    result = CHECK.analyse_photo(decoded(meta(gps=(LOSS_LAT, LOSS_LON))), info())
    assert result.findings == []
    data = json.loads(json.dumps(result.data))
    assert (data["format"], data["width"], data["height"]) == ("JPEG", 64, 48)
    assert data["capture_time"] == "2024-05-12T10:00:00+08:00"
    assert data["gps_lat"] == LOSS_LAT and data["has_exif"] is True


def test_missing_exif_is_not_a_photo_finding() -> None:
    assert CHECK.analyse_photo(decoded(PhotoMetadata()), info()).findings == []


@pytest.mark.parametrize("software, editor", [
    ("Adobe Photoshop 25.0 (Windows)", "Photoshop"), ("GIMP 2.10.34", "GIMP"), ("Snapseed 2.0", "Snapseed"),
    ("Adobe Photoshop Lightroom Classic 13.0", "Photoshop"), ("PicsArt", "PicsArt"), ("美图秀秀", "Meitu"),
    ("MeituXiuXiu 9.9", "Meitu"), ("醒图", "Xingtu"),
])
def test_editing_software_flagged(software: str, editor: str) -> None:
    assert editing_software(software) == editor
    result = CHECK.analyse_photo(decoded(meta(software=software)), info("p9"))
    [f] = result.findings
    assert (f.code, f.severity, f.photo_id) == ("metadata.editing_software", Severity.LOW, "p9")
    assert f.evidence["software"] == software and f.evidence["photo_ids"] == ["p9"]


@pytest.mark.parametrize("software", ["17.1", "G991BXXU5CVLL", "HDR+ 1.0.540104", "MediaTek Camera Application",
                                      "Ver.1.00", "ELS-AN00 3.0.0.170(C00E165R5P3)", "Android", None, ""])
def test_camera_firmware_not_flagged(software: str | None) -> None:
    assert editing_software(software) is None
    assert CHECK.analyse_photo(decoded(meta(software=software)), info()).findings == []
