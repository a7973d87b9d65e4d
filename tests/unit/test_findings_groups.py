"""Grouping of findings that state one fact, and the claim score that counts each group once."""

from __future__ import annotations

import itertools
import json
import random
from typing import Any

import pytest

from claimlens.core.findings import claim_score, group_findings, score_from_points

CLAIM = "C-1"


def exact(photo: str, other: str, *, claim: str | None = None, how: str = "identical bytes",
          severity: str | None = None) -> dict[str, Any]:
    code = "exact_duplicate.cross_claim" if claim else "exact_duplicate.same_claim"
    evidence: dict[str, Any] = {"match": how, "other_photo_id": other}
    if claim:
        evidence["linked_claim_id"] = claim
    return {"code": code, "severity": severity or ("high" if claim else "low"), "check": "exact_duplicate",
            "photo_id": photo, "message": f"{photo}={other}", "evidence": evidence, "evidence_images": {}}


def reused(photo: str, other: str, *, claim: str = CLAIM, score: float = 0.9, is_exact: bool = False,
           severity: str | None = None) -> dict[str, Any]:
    code = "reused_photo.same_claim" if claim == CLAIM else "reused_photo.cross_claim"
    evidence: dict[str, Any] = {"matched_claim_id": claim, "matched_photo_id": other, "score": score,
                                "exact": is_exact}
    if claim != CLAIM:
        evidence["linked_claim_id"] = claim
    return {"code": code, "severity": severity or ("high" if claim != CLAIM else "info"), "check": "reused_photo",
            "photo_id": photo, "message": f"{photo}~{other}", "evidence": evidence,
            "evidence_images": {"m.jpg": f"k/{photo}"}}


def timeline(code: str = "metadata.before_loss", photo: str | None = "p1", severity: str = "high") -> dict[str, Any]:
    return {"code": code, "severity": severity, "check": "metadata_timeline", "photo_id": photo,
            "message": code, "evidence": {"rule": code}, "evidence_images": {}}


def members(result: Any, group: dict[str, Any]) -> list[dict[str, Any]]:
    return [result.findings[i] for i in group["members"]]


def test_two_checks_on_one_pair_are_one_group_with_the_strongest_evidence_first() -> None:
    found = [reused("p1", "x9", claim="C-0", score=0.97, is_exact=True), exact("p1", "x9", claim="C-0")]
    result = group_findings(found, CLAIM)
    assert len(result.groups) == 1
    g = result.groups[0]
    assert g["kind"] == "copies" and g["severity"] == "high" and g["linked_claims"] == ["C-0"]
    assert [f["check"] for f in members(result, g)] == ["exact_duplicate", "reused_photo"]
    assert result.findings[g["lead"]]["code"] == "exact_duplicate.cross_claim"
    assert {f["group_id"] for f in result.findings} == {g["group_id"]}
    assert result.score == claim_score(["high"]) == 50


def test_five_copies_in_one_claim_give_one_group_not_ten() -> None:
    photos = [f"p{i}" for i in range(5)]
    found = [exact(a, b) for a, b in itertools.combinations(photos, 2)]
    found += [reused(a, b, score=0.6 + 0.01 * n) for n, (a, b) in enumerate(itertools.combinations(photos, 2))]
    result = group_findings(found, CLAIM)
    assert len(found) == 20 and len(result.groups) == 1
    g = result.groups[0]
    assert g["photo_ids"] == photos and g["linked_claims"] == [] and len(g["members"]) == 20
    assert g["severity"] == "low"  # the most severe member (exact, low) leads; reused_photo's info ones follow
    strengths = [f["evidence"].get("score", 1.0) for f in members(result, g) if f["check"] == "reused_photo"]
    assert strengths == sorted(strengths, reverse=True)  # strongest match first within the same severity
    assert result.score == claim_score(["low"]) == 9


def test_copies_inside_the_claim_and_in_another_claim_are_one_fact() -> None:
    found = [exact("p1", "p2", how="identical pixels"), reused("p1", "p2"), reused("p2", "x9", claim="C-0"),
             exact("p3", "y1", claim="C-7")]  # p3: another picture, from another claim
    result = group_findings(found, CLAIM)
    assert len(result.groups) == 2
    first, second = result.groups
    assert first["photo_ids"] == ["p1", "p2"] and first["linked_claims"] == ["C-0"]
    assert first["other_photos"] == [{"claim_id": "C-0", "photo_id": "x9"}]
    assert second["photo_ids"] == ["p3"] and second["linked_claims"] == ["C-7"]
    # two reused pictures: the second counts half (diminishing returns within the family)
    assert [g["weight"] for g in result.groups] == [1.0, 0.5]
    assert result.score == score_from_points(1.5) == 60


def test_nothing_is_lost_and_findings_keep_their_evidence() -> None:
    found = [exact("p1", "p2"), reused("p2", "p1"), timeline(), timeline("metadata.gps_far", None, "medium"),
             {**timeline("check.failed", "p4", "info"), "check": "heights"},
             {"code": "exact_duplicate.same_claim", "severity": "low", "check": "exact_duplicate",
              "photo_id": "p5", "message": "no other photo named", "evidence": {}, "evidence_images": {}}]
    before = json.dumps(found, sort_keys=True)
    result = group_findings(found, CLAIM)
    assert json.dumps(found, sort_keys=True) == before  # inputs untouched
    assert len(result.findings) == len(found)
    indices = sorted(i for g in result.groups for i in g["members"])
    assert indices == list(range(len(found)))  # each finding in exactly one group
    for g in result.groups:
        assert all(result.findings[i]["group_id"] == g["group_id"] for i in g["members"])
    stripped = [{k: v for k, v in f.items() if k != "group_id"} for f in result.findings]
    assert sorted(map(json.dumps, stripped)) == sorted(map(json.dumps, found))
    kinds = sorted(g["kind"] for g in result.groups)
    assert kinds == ["copies", "finding", "finding", "finding", "finding"]  # a pair without the other photo: alone
    assert [f["severity"] for f in result.findings] == sorted((f["severity"] for f in result.findings),
                                                              key=["high", "medium", "low", "info"].index)


def test_grouping_does_not_depend_on_input_order() -> None:
    found = [exact("p1", "p2"), reused("p2", "p1"), reused("p3", "x", claim="C-0"), exact("p3", "x", claim="C-0"),
             timeline(), timeline("metadata.editing_software", "p2", "low"), reused("p4", "p3", score=0.7)]
    want = group_findings(found, CLAIM)
    for seed in range(5):
        shuffled = found[:]
        random.Random(seed).shuffle(shuffled)
        got = group_findings(shuffled, CLAIM)
        assert got.groups == want.groups and got.findings == want.findings and got.score == want.score
    assert len(want.groups) == 4  # p1-p2; p3-x-p4; two timeline findings


def test_reused_photo_plus_timeline_flag_no_longer_saturates() -> None:
    # the case: one photo from an earlier claim (both duplicate checks) and its timeline flag
    found = [exact("p1", "x9", claim="C-0"), reused("p1", "x9", claim="C-0", is_exact=True), timeline()]
    result = group_findings(found, CLAIM)
    assert result.score == 67  # 1 - (0.4 ** 3) = 94 with the old per-finding product
    assert len(result.groups) == 2


@pytest.mark.parametrize(("severities", "families", "expected"), [
    ([], [], 0),
    (["info"] * 10, list("abcdefghij"), 0),
    (["low"], ["a"], 9),
    (["medium"], ["a"], 26),
    (["high"], ["a"], 50),
    (["high", "high"], ["a", "b"], 67),
    (["high", "high"], ["a", "a"], 60),
    (["high", "high", "high"], ["a", "b", "c"], 75),
    (["low"] * 3, ["a", "a", "a"], 15),
])
def test_claim_score_counts_groups_with_diminishing_returns(severities: list[str], families: list[str],
                                                            expected: int) -> None:
    assert claim_score(severities, families) == expected


def test_claim_score_keeps_ranking_where_the_old_product_saturated() -> None:
    ladder = [claim_score(["high"] * n, [str(i) for i in range(n)]) for n in range(1, 9)]
    assert ladder == sorted(ladder) and len(set(ladder)) == len(ladder)  # strictly increasing
    assert ladder[-1] < 100
    one_check = [claim_score(["low"] * n, ["metadata_timeline"] * n) for n in range(1, 30)]
    assert max(one_check) < claim_score(["medium"])  # one noisy check alone stays below one medium flag
