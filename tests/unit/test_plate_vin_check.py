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
    c = {"claim_id": "C1", "plate": "皖A12345"}
    near = plate("皖A12348", alts={6: {"8": 0.7, "5": 0.25}})  # the recogniser hesitated 8/5
    weak = plate("苏E9E0A5", conf=0.5)
    photos = [photo("p1", "C1", "plate", plates=[near]), photo("p2", "C1", "overview", plates=[weak])]
    assert CHECK.assess_claim(ctx(c, photos)) == []


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
