"""The plate/VIN claim rules with a fake cross-claim index (as test_core_logic does for exact_duplicate),
and the per-photo phase on real photos from ../shared/data (skipped where the data is missing)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from claimlens.checks.base import ClaimContext, IndexHit, PhotoAnalysis, PhotoInfo, Severity
from claimlens.checks.plate_vin import CLAIM_KEY, PlateVinCheck

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _chars(text: str, alts: dict[int, dict[str, float]] | None = None) -> list[dict]:
    return [{"char": c, "prob": 0.99, "alternatives": (alts or {}).get(i, {c: 0.99})} for i, c in enumerate(text)]


def plate(text: str, conf: float = 0.97, alts: dict | None = None) -> dict:
    return {"text": text, "confidence": conf, "valid": True, "kind": "cn", "layout": "ordinary",
            "det_score": 0.99, "box": [0, 0, 10, 3], "corners": [], "raw": {}, "chars": _chars(text, alts),
            "confident": conf >= 0.8}


def vin(text: str, conf: float = 0.95, alts: dict | None = None) -> dict:
    return {"vin": text, "raw": text, "confidence": conf, "check_digit_ok": False, "check_digit_expected": False,
            "corrected": [], "wmi": {}, "model_years": [], "box": [0, 0, 1, 1], "line_text": text,
            "chars": _chars(text, alts), "confident": conf >= 0.7}


def photo(pid: str, claim: str, role: str | None, plates=(), vins=(), registration=None) -> PhotoAnalysis:
    info = PhotoInfo(photo_id=pid, claim_id=claim, stage="survey", role=role, sha256=pid, size_bytes=1,
                     filename=None, uploaded_at=T0)
    data = {"role": role, "plates": list(plates), "vins": list(vins), "registration": registration}
    return PhotoAnalysis(info=info, data={"plate_vin": data})


class FakeIndex:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, IndexHit]] = []

    def add(self, claim: str, pid: str, role: str | None, kind: str, value: str) -> None:
        self.rows.append((kind, value, IndexHit(pid, claim, "survey", role, T0, kind, value)))

    def lookup(self, kind: str, values: list[str]) -> list[IndexHit]:
        return [h for k, v, h in self.rows if k == kind and v in values]

    def search_codes(self, kind: str, codes: list[int], max_distance: int, limit: int = 50) -> list:
        return []


def ctx(claim: dict, photos: list[PhotoAnalysis], index: FakeIndex | None = None,
        artifacts: dict | None = None) -> ClaimContext:
    artifacts = artifacts or {}
    return ClaimContext(claim=claim, photos=photos, index=index or FakeIndex(),
                        load_artifact=lambda c, p, chk, n: artifacts.get((c, p, chk, n)),
                        load_thumbnail=lambda c, p: None)


def codes(findings) -> list[str]:
    return sorted(f.code for f in findings)


CHECK = PlateVinCheck()
GOOD_VIN = "WVWZZZ1KZ8M317048"


def test_consistent_claim_has_no_findings() -> None:
    c = {"claim_id": "C1", "plate": "皖A12345", "vin": GOOD_VIN, "make": "Volkswagen", "loss_time": "2026-01-01"}
    photos = [photo("p1", "C1", "plate", plates=[plate("皖A12345")]), photo("p2", "C1", "vin", vins=[vin(GOOD_VIN)])]
    assert CHECK.assess_claim(ctx(c, photos)) == []


def test_plate_read_different_from_policy() -> None:
    c = {"claim_id": "C1", "plate": "皖A12345"}
    photos = [photo("p1", "C1", "plate", plates=[plate("苏E9E0A5")])]
    art = {("C1", "p1", "plate_vin", "plate_0.jpg"): b"\xff\xd8jpeg"}
    (f,) = CHECK.assess_claim(ctx(c, photos, artifacts=art))
    assert f.code == "plate_vin.plate_mismatch" and f.severity == Severity.HIGH and f.photo_id == "p1"
    assert f.evidence["read"] == "苏E9E0A5" and f.evidence["policy"] == "皖A12345"
    assert list(f.evidence_images.values()) == [b"\xff\xd8jpeg"]
    # on an overview photo (might be another car in the scene) it is medium
    photos = [photo("p1", "C1", "overview", plates=[plate("苏E9E0A5")])]
    assert CHECK.assess_claim(ctx(c, photos))[0].severity == Severity.MEDIUM


def test_ocr_near_miss_and_unconfident_reads_are_not_mismatches() -> None:
    # issue 15: before, these gave no finding at all; now one LOW "could not be confirmed" with both reads
    c = {"claim_id": "C1", "plate": "皖A12345"}
    near = plate("皖A12348", alts={6: {"8": 0.7, "5": 0.25}})  # the recogniser hesitated 8/5
    weak = plate("苏E9E0A5", conf=0.5)
    photos = [photo("p1", "C1", "plate", plates=[near]), photo("p2", "C1", "overview", plates=[weak])]
    art = {("C1", "p1", "plate_vin", "plate_0.jpg"): b"\xff\xd8near"}
    (f,) = CHECK.assess_claim(ctx(c, photos, artifacts=art))
    assert f.code == "plate_vin.plate_unconfirmed" and f.severity == Severity.LOW
    assert {r["read"]: r["why"] for r in f.evidence["reads"]} == {
        "皖A12348": "near-miss of the policy", "苏E9E0A5": "below the operating point"}
    assert b"\xff\xd8near" in f.evidence_images.values()
    # the policy plate read confidently on another photo confirms it: nothing to report
    photos.append(photo("p3", "C1", "plate", plates=[plate("皖A12345")]))
    assert CHECK.assess_claim(ctx(c, photos)) == []


# --- issue 15: a HIGH mismatch only from a read at the family's accusation operating point -------------
def _no_high_or_medium(findings) -> bool:
    return all(f.severity == Severity.LOW for f in findings)


@pytest.mark.parametrize("read", [
    "皖A12346",   # one substitution
    "皖A1234",    # one deletion
    "皖A123456",  # one insertion
    "皖A1Z34S",   # look-alikes only at two positions: Z/2 and S/5
    "皖B12345",   # one substitution in the series letter
])
def test_near_misses_of_the_policy_plate_never_give_more_than_low(read: str) -> None:
    c = {"claim_id": "C1", "plate": "皖A12345"}
    photos = [photo("p1", "C1", "plate", plates=[plate(read, conf=0.99)])]
    found = CHECK.assess_claim(ctx(c, photos))
    assert found and _no_high_or_medium(found), [(f.code, f.severity) for f in found]
    assert {f.code for f in found} == {"plate_vin.plate_unconfirmed"}


@pytest.mark.parametrize("pair", ["O0", "I1", "B8", "S5", "Z2"])
def test_look_alike_pairs_are_near_misses_even_at_two_positions(pair: str) -> None:
    from claimlens.checks.plate_vin import _near_miss

    a, b = pair
    policy = f"X{a}1{a}Y"
    assert _near_miss({"text": f"X{b}1{b}Y", "chars": []}, policy)
    assert not _near_miss({"text": "XQ1QY", "chars": []}, "XW1WY")  # two edits, no look-alikes


def test_weak_reads_far_from_the_policy_give_low_not_high() -> None:
    from claimlens.checks.plate_vin import PLATE_MIN_CONFIDENCE, PLATE_MIN_DET_SCORE

    c = {"claim_id": "C1", "plate": "皖A12345"}
    below_conf = plate("苏E9E0A5", conf=PLATE_MIN_CONFIDENCE - 0.01)
    below_conf["confident"] = True  # a stored flag from an older rule carries no accusing power
    below_det = {**plate("浙G857PM"), "det_score": PLATE_MIN_DET_SCORE - 0.01}
    photos = [photo("p1", "C1", "plate", plates=[below_conf]), photo("p2", "C1", "plate", plates=[below_det])]
    (f,) = CHECK.assess_claim(ctx(c, photos))
    assert f.code == "plate_vin.plate_unconfirmed" and f.severity == Severity.LOW
    assert sorted(r["read"] for r in f.evidence["reads"]) == ["浙G857PM", "苏E9E0A5"]
    assert f.evidence["operating_point"]["family"] == "cn"
    # the same reads at the operating point do accuse (the rule can fire: this test can fail)
    strong = {**plate("苏E9E0A5", conf=PLATE_MIN_CONFIDENCE), "confident": True}
    (f,) = CHECK.assess_claim(ctx(c, [photo("p1", "C1", "plate", plates=[strong])]))
    assert f.code == "plate_vin.plate_mismatch" and f.severity == Severity.HIGH


def test_weak_latin_read_gives_low_and_strong_one_high() -> None:
    from claimlens.checks.plate_vin import LATIN_MIN_CONFIDENCE, LATIN_MIN_PLATE_SCORE, plate_confident

    def latin(text: str, conf: float, score: float, layout: str = "GB") -> dict:
        e = {**plate(text, conf), "kind": "latin", "layout": layout, "det_score": 0.3, "plate_score": score}
        e["confident"] = plate_confident(e)
        return e

    c = {"claim_id": "C1", "plate": "AB12 CDE"}
    for weak in (latin("XY65ZZT", LATIN_MIN_CONFIDENCE - 0.01, 0.999),
                 latin("XY65ZZT", 0.999, LATIN_MIN_PLATE_SCORE - 0.01),
                 latin("XY65ZZT", 0.999, 0.999, layout="generic")):
        (f,) = CHECK.assess_claim(ctx(c, [photo("p1", "C1", "plate", plates=[weak])]))
        assert f.code == "plate_vin.plate_unconfirmed" and f.severity == Severity.LOW
        assert f.evidence["operating_point"]["family"] == "latin"
    strong = latin("XY65ZZT", max(LATIN_MIN_CONFIDENCE, 0.5), min(1.0, LATIN_MIN_PLATE_SCORE))
    (f,) = CHECK.assess_claim(ctx(c, [photo("p1", "C1", "plate", plates=[strong])]))
    assert f.code == "plate_vin.plate_mismatch" and f.severity == Severity.HIGH


def test_weak_or_near_miss_vin_reads_give_low_even_with_a_valid_check_digit() -> None:
    from claimlens.checks.plate_vin import VIN_MIN_CONFIDENCE

    us = "1G1ZE5EU0CF133434"  # check digit valid
    other_us = "1HGCM82633A004352"  # check digit valid, far from the policy
    c = {"claim_id": "C1", "vin": us, "loss_time": "2015-01-01"}
    weak = {**vin(other_us, conf=VIN_MIN_CONFIDENCE - 0.01), "check_digit_ok": True, "confident": True}
    found = CHECK.assess_claim(ctx(c, [photo("p1", "C1", "vin", vins=[weak])]))
    assert [(f.code, f.severity) for f in found] == [("plate_vin.vin_unconfirmed", Severity.LOW)]
    near = vin(us[:-1] + "5", conf=0.99)  # one character off
    found = CHECK.assess_claim(ctx(c, [photo("p1", "C1", "vin", vins=[near])]))
    assert [(f.code, f.severity) for f in found] == [("plate_vin.vin_unconfirmed", Severity.LOW)]
    strong = vin(other_us, conf=max(VIN_MIN_CONFIDENCE, 0.5))
    found = CHECK.assess_claim(ctx(c, [photo("p1", "C1", "vin", vins=[strong])]))
    assert ("plate_vin.vin_mismatch", Severity.HIGH) in [(f.code, f.severity) for f in found]


def test_third_party_photos_and_plate_are_ignored() -> None:
    c = {"claim_id": "C1", "plate": "皖A12345", "third_party": {"plate": "苏E9E0A5"}}
    photos = [photo("p1", "C1", "third_party", plates=[plate("浙G857PM")]),
              photo("p2", "C1", "overview", plates=[plate("苏E9E0A5"), plate("皖A12345")])]
    assert CHECK.assess_claim(ctx(c, photos)) == []


def test_vin_mismatch_make_mismatch_and_two_vins() -> None:
    c = {"claim_id": "C1", "vin": GOOD_VIN, "make": "Toyota"}
    photos = [photo("p1", "C1", "vin", vins=[vin("TMBJG65J483141944")])]
    found = codes(CHECK.assess_claim(ctx(c, photos)))
    # the read differs from the policy; both VINs name a manufacturer that does not make Toyotas; and the
    # read VIN differs from the policy one (multiple_vins counts reads only: one read here)
    assert found == ["plate_vin.make_mismatch", "plate_vin.make_mismatch", "plate_vin.vin_mismatch"]


def test_two_different_plates_on_the_insured_vehicle() -> None:
    c = {"claim_id": "C1"}
    photos = [photo("p1", "C1", "plate", plates=[plate("皖A12345")]),
              photo("p2", "C1", "damage", plates=[plate("苏E9E0A5")])]
    (f,) = CHECK.assess_claim(ctx(c, photos))
    assert f.code == "plate_vin.multiple_plates" and set(f.evidence["reads"]) == {"皖A12345", "苏E9E0A5"}


def test_registration_certificate_against_policy_and_vehicle() -> None:
    c = {"claim_id": "C1", "plate": "皖A12345", "vin": GOOD_VIN}
    reg = {"plate": "皖A99999", "vin": GOOD_VIN, "vin_confidence": 0.9, "register_date": "2020-01-02",
           "issue_date": None, "lines": []}
    photos = [photo("r1", "C1", "registration", registration=reg),
              photo("p1", "C1", "plate", plates=[plate("皖A12345")])]
    found = CHECK.assess_claim(ctx(c, photos))
    assert codes(found) == ["plate_vin.registration_mismatch", "plate_vin.registration_mismatch"]
    against = sorted(f.evidence["against"] for f in found)
    assert against == ["policy", "vehicle photos"]
    assert {f.severity for f in found} == {Severity.HIGH, Severity.MEDIUM}


def test_policy_vin_check_digit_only_where_the_region_computes_it() -> None:
    bad_us = "1HGCM82634A004352"  # check digit 3 no longer matches
    (f,) = CHECK.assess_claim(ctx({"claim_id": "C1", "vin": bad_us}, []))
    assert f.code == "plate_vin.policy_vin_invalid" and f.severity == Severity.LOW
    # a European VIN without a check digit is fine
    assert CHECK.assess_claim(ctx({"claim_id": "C1", "vin": GOOD_VIN}, [])) == []
    (f,) = CHECK.assess_claim(ctx({"claim_id": "C1", "vin": "WVWZZZ1KZ8M3170"}, []))
    assert f.code == "plate_vin.policy_vin_invalid"


def test_model_year_after_the_loss() -> None:
    # 1G1ZE5EU0CF133434 is a valid check-digit VIN of model year 2012
    c = {"claim_id": "C1", "vin": "1G1ZE5EU0CF133434", "loss_time": "2009-06-01T10:00:00+08:00"}
    (f,) = CHECK.assess_claim(ctx(c, []))
    assert f.code == "plate_vin.model_year_implausible" and f.evidence["candidate_years"] == [2012]
    c["loss_time"] = "2015-06-01T10:00:00+08:00"
    assert CHECK.assess_claim(ctx(c, [])) == []


def _other_claim(index: FakeIndex, artifacts: dict, claim: str, pid: str, plates=(), vins=(), role="plate") -> None:
    for p in plates:
        index.add(claim, pid, role, "plate", p)
    for v in vins:
        index.add(claim, pid, role, "vin", v)
    index.add(claim, pid, role, CLAIM_KEY, claim)
    artifacts[(claim, pid, "plate_vin", "reads.json")] = json.dumps(
        {"role": role, "plates": list(plates), "vins": list(vins), "pairs": [], "crops": {}}).encode()


def test_cloned_plate_same_vin_under_another_plate_in_another_claim() -> None:
    index, art = FakeIndex(), {}
    _other_claim(index, art, "OLD1", "o1", vins=[GOOD_VIN])          # their VIN photo
    _other_claim(index, art, "OLD1", "o2", plates=["苏E9E0A5"])       # their plate photo
    _other_claim(index, art, "OLD2", "o3", vins=[GOOD_VIN], plates=["皖A12345"])  # same car, same plate: fine
    c = {"claim_id": "NEW", "plate": "皖A12345", "vin": GOOD_VIN}
    photos = [photo("p1", "NEW", "vin", vins=[vin(GOOD_VIN)])]
    (f,) = CHECK.assess_claim(ctx(c, photos, index, art))
    assert f.code == "plate_vin.cloned_plate" and f.severity == Severity.HIGH
    assert f.evidence["linked_claim_id"] == "OLD1"
    assert f.evidence["reasons"][0]["rule"] == "same VIN under a different plate"
    assert f.evidence["reasons"][0]["their_plates"] == ["苏E9E0A5"]


def test_cloned_plate_same_plate_on_another_vin_one_finding_per_claim() -> None:
    index, art = FakeIndex(), {}
    _other_claim(index, art, "A", "a1", plates=["皖A12345"], vins=["TMBJG65J483141944"])
    _other_claim(index, art, "B", "b1", plates=["皖A12345"], vins=["XW8ZZZ5NZKG223241"])
    _other_claim(index, art, "C", "c1", plates=["皖A12345"], role="third_party")  # a third party: ignored
    c = {"claim_id": "NEW", "plate": "皖A12345", "vin": GOOD_VIN}
    found = CHECK.assess_claim(ctx(c, [], index, art))
    assert [f.evidence["linked_claim_id"] for f in found] == ["A", "B"]
    assert all(f.code == "plate_vin.cloned_plate" and f.evidence["reasons"][0]["rule"] ==
               "same plate on a different VIN" for f in found)


def test_other_claim_without_the_other_entity_is_not_a_clone() -> None:
    index, art = FakeIndex(), {}
    _other_claim(index, art, "A", "a1", plates=["皖A12345"])  # no VIN read there: nothing to compare
    c = {"claim_id": "NEW", "plate": "皖A12345", "vin": GOOD_VIN}
    assert CHECK.assess_claim(ctx(c, [], index, art)) == []


# ------------------------------------------------------------------------------------ per-photo phase
def _info(pid: str, role: str | None) -> PhotoInfo:
    return PhotoInfo(photo_id=pid, claim_id="C9", stage="survey", role=role, sha256=pid, size_bytes=1,
                     filename=None, uploaded_at=T0)


@pytest.mark.data
@pytest.mark.skipif(not (SHARED / "plates_cn").is_dir(), reason="../shared/data/plates_cn is not on this machine")
def test_analyse_photo_indexes_a_confident_plate() -> None:
    from claimlens.vision.decode import decode_photo

    data = (SHARED / "plates_cn" / "ccpd_official_samples" / "demo_3.jpg").read_bytes()
    res = CHECK.analyse_photo(decode_photo(data), _info("p1", "overview"))
    assert res.index_keys["plate"] == ["皖AMK620"]
    assert res.index_keys[CLAIM_KEY] == ["C9"]
    assert res.data["plates"][0]["confident"] and res.data["vins"] == []
    assert res.artifacts["plate_0.jpg"][:2] == b"\xff\xd8"
    assert json.loads(res.artifacts["reads.json"])["plates"] == ["皖AMK620"]


@pytest.mark.data
@pytest.mark.skipif(not (SHARED / "vin_plates").is_dir(), reason="../shared/data/vin_plates is not on this machine")
def test_analyse_photo_reads_a_vin_photo() -> None:
    import csv

    from claimlens.vision.decode import decode_photo

    labels = Path(__file__).resolve().parents[2] / "datasets" / "vin_labels_holdout.csv"
    with open(labels, encoding="utf-8") as f:
        row = next(r for r in csv.DictReader(f) if r["vin"] == "XWEKN814DK0005681")
    path = SHARED / "vin_plates" / "roboflow_vin_detection" / row["image"]
    res = CHECK.analyse_photo(decode_photo(path.read_bytes()), _info("p2", "vin"))
    assert res.data["plates"] == [] and res.data["vins"]
    assert res.data["vins"][0]["vin"] == "XWEKN814DK0005681" and res.data["vins"][0]["confident"]
    assert res.index_keys["vin"] == ["XWEKN814DK0005681"]
    assert res.artifacts["vin_0.jpg"][:2] == b"\xff\xd8"


def test_would_accuse_counts_only_far_confident_misreads() -> None:
    from claimlens.checks.plate_vin import would_accuse

    assert would_accuse("EA1382HB", "AI1382HB")  # two substitutions: a HIGH on an honest claim
    assert not would_accuse("AB7642C", "AB7642CT")  # a dropped character: near-miss, LOW at most
    assert not would_accuse("WB07D51O6", "WB07D5106")  # look-alike O/0
    assert not would_accuse("AB7642CT", "AB7642CT") and not would_accuse("", "AB7642CT")
    assert would_accuse("WVWZZZ1KZ8M317048", "TMBJG65J483141944", vin=True)
