"""One finding per fact, and a claim score that ranks.

Several findings often state one fact: the same pair of photos is flagged by ``exact_duplicate`` and by
``reused_photo``, and five copies of one picture give ten pairwise findings per check. Summing them made one
reused photo plus one timeline flag score 89-100, so a queue sorted by score could not rank. Here the report's
findings are grouped by fact and the score counts each group once.

Groups:

* **copies**: the connected components of the photo-pair findings (:data:`PAIR_EVIDENCE`: the finding's photo
  and the other photo its evidence names). One component is one picture and every place it was used: copies
  inside this claim and in other claims land in the same group (a picture submitted twice here *and* taken
  from an earlier claim is one fact: "this picture was reused"). Members are ordered strongest evidence
  first: most severe, then identical bytes, identical pixels, a verified exact copy, then by match score.
* **finding**: every other finding is a group of its own (the checks already merge what they report per rule).

Score: each group weighs the points of its severity (:data:`SEVERITY_POINTS`); groups of one family (the
producing check; ``copies`` for copy groups, whichever check found them) add with diminishing returns, the
k-th strongest (k = 0, 1, ...) times ``REPEAT_DECAY ** k``; the sum S saturates as
``score = round(100 * S / (S + HALF_POINTS))``. One high group scores 50, two high groups of different checks
67, three 75; a low one 9. Documented with its distribution in docs/checks.md and docs/benchmarks.md.

Pure functions over the report's finding dicts (``code, severity, check, photo_id, evidence, ...``), so the
embedded and the Celery mode, which both build the report in :func:`claimlens.core.pipeline.assess_claim`,
group and score the same way, and a bench can re-score stored reports.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2, "info": 3}
"""Most severe first (the report's sort order)."""

SEVERITY_POINTS = {"high": 1.0, "medium": 0.35, "low": 0.1, "info": 0.0}
"""Evidence points of one group by its severity. A high group alone is the half-way mark of the score; a
medium is about a third of it; a low flag (often noise on an honest claim) stays in single digits."""

REPEAT_DECAY = 0.5
"""The k-th group of one family (k = 0 for the strongest) weighs REPEAT_DECAY ** k: three reused pictures
say more than one, not three times as much, and one noisy check cannot fill the score on its own."""

HALF_POINTS = 1.0
"""Points at which the score is 50 (score = 100 * S / (S + HALF_POINTS)): saturating, never 100."""

COPIES_FAMILY = "copies"

PAIR_EVIDENCE: dict[str, tuple[str, str | None]] = {
    "exact_duplicate.same_claim": ("other_photo_id", None),
    "exact_duplicate.cross_claim": ("other_photo_id", "linked_claim_id"),
    "exact_duplicate.reused_elsewhere": ("other_photo_id", "linked_claim_id"),
    "reused_photo.same_claim": ("matched_photo_id", "matched_claim_id"),
    "reused_photo.cross_claim": ("matched_photo_id", "matched_claim_id"),
    "reused_photo.reused_elsewhere": ("matched_photo_id", "matched_claim_id"),
}
"""Codes whose finding says "photo ``photo_id`` and the other photo are copies of one picture": code ->
(evidence key of the other photo, evidence key of its claim; None: the same claim)."""


@dataclass(frozen=True)
class GroupedFindings:
    """The report's findings (sorted most severe first, each with its ``group_id``) and their groups."""

    findings: list[dict[str, Any]]
    groups: list[dict[str, Any]]
    points: float
    score: int


def group_findings(findings: Iterable[Mapping[str, Any]], claim_id: str) -> GroupedFindings:
    """Group ``findings`` by fact and score the claim. Inputs are not modified; nothing is dropped."""
    ordered = sorted((dict(f) for f in findings), key=_report_order)
    pairs = [copy_pair(f, claim_id) for f in ordered]
    parent: dict[str, str] = {}  # union-find over photo nodes
    for pair in pairs:
        if pair is not None:
            _union(parent, *pair)
    members_of: dict[str, list[int]] = defaultdict(list)  # component root -> indices of its copy findings
    singles: list[int] = []
    for i, pair in enumerate(pairs):
        if pair is None:
            singles.append(i)
        else:
            members_of[_find(parent, pair[0])].append(i)

    drafts: list[dict[str, Any]] = []
    for indices in members_of.values():
        indices.sort(key=lambda i: _evidence_strength(ordered[i]))
        drafts.append(_copies_group(ordered, indices, claim_id))
    for i in singles:
        f = ordered[i]
        drafts.append({"kind": "finding", "family": f.get("check") or f["code"].split(".")[0],
                       "severity": f["severity"], "members": [i], "lead": i, "codes": [f["code"]],
                       "checks": [f.get("check")], "photo_ids": [f["photo_id"]] if f.get("photo_id") else [],
                       "linked_claims": _linked(f), "summary": f.get("message", "")})
    # most severe first; among equals, copy groups, then the larger set of copies, then report order
    drafts.sort(key=lambda g: (SEVERITY_ORDER[g["severity"]], g["kind"] != "copies",
                               -len(g["photo_ids"]) - len(g.get("other_photos", ())), g["lead"]))
    points = _weigh(drafts)
    for n, g in enumerate(drafts, start=1):
        g["group_id"] = f"g{n}"
        for i in g["members"]:
            ordered[i]["group_id"] = g["group_id"]
    groups = [{"group_id": g["group_id"], **{k: v for k, v in g.items() if k != "group_id"}} for g in drafts]
    return GroupedFindings(findings=ordered, groups=groups, points=round(points, 4), score=score_from_points(points))


def copy_pair(finding: Mapping[str, Any], claim_id: str) -> tuple[str, str] | None:
    """The two photo nodes ("claim/photo") a copy finding joins, or None for any other finding."""
    keys = PAIR_EVIDENCE.get(finding.get("code", ""))
    evidence = finding.get("evidence") or {}
    if keys is None or not finding.get("photo_id") or not evidence.get(keys[0]):
        return None
    other_claim = evidence.get(keys[1]) if keys[1] else None
    return f"{claim_id}/{finding['photo_id']}", f"{other_claim or claim_id}/{evidence[keys[0]]}"


def score_from_points(points: float) -> int:
    """0-100, saturating: 100 * S / (S + HALF_POINTS)."""
    return round(100 * points / (points + HALF_POINTS)) if points > 0 else 0


def claim_score(severities: Iterable[str], families: Iterable[str] | None = None) -> int:
    """The score of groups given by severity label (and family; default: each its own family)."""
    sev = list(severities)
    fam = list(families) if families is not None else [str(i) for i in range(len(sev))]
    drafts = [{"severity": s, "family": f} for s, f in zip(sev, fam, strict=True)]
    return score_from_points(_weigh(drafts))


# ------------------------------------------------------------------------------------------------ helpers

def _report_order(f: Mapping[str, Any]) -> tuple[Any, ...]:
    """Most severe first, then code and photo; the evidence breaks ties so the order never depends on the
    order the checks produced the findings in (a re-run writes the same report)."""
    evidence = json.dumps(f.get("evidence") or {}, sort_keys=True, default=str)
    return SEVERITY_ORDER[f["severity"]], f["code"], f.get("photo_id") or "", evidence


def _find(parent: dict[str, str], x: str) -> str:
    parent.setdefault(x, x)
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


def _union(parent: dict[str, str], a: str, b: str) -> None:
    ra, rb = _find(parent, a), _find(parent, b)
    if ra != rb:
        parent[max(ra, rb)] = min(ra, rb)


def _evidence_strength(f: Mapping[str, Any]) -> tuple[Any, ...]:
    """Sort key, strongest first: severity, then how exact the match is, then the match score."""
    ev = f.get("evidence") or {}
    if f["code"].startswith("exact_duplicate."):
        exactness, score = (0 if ev.get("match") == "identical bytes" else 1), 1.0
    else:
        exactness, score = (2 if ev.get("exact") else 3), float(ev.get("score") or 0.0)
    return SEVERITY_ORDER[f["severity"]], exactness, -score, f["code"], f.get("photo_id") or ""


def _linked(f: Mapping[str, Any]) -> list[str]:
    other = (f.get("evidence") or {}).get("linked_claim_id")
    return [str(other)] if other else []


def _copies_group(ordered: list[dict[str, Any]], indices: list[int], claim_id: str) -> dict[str, Any]:
    own: set[str] = set()
    elsewhere: dict[str, set[str]] = defaultdict(set)
    for i in indices:
        for node in copy_pair(ordered[i], claim_id) or ():
            node_claim, photo = node.split("/", 1)
            if node_claim == claim_id:
                own.add(photo)
            else:
                elsewhere[node_claim].add(photo)
    lead = ordered[indices[0]]
    where = [f"{len(own)} photo(s) of this claim"]
    where += [f"{len(p)} photo(s) of claim {c}" for c, p in sorted(elsewhere.items())]
    return {
        "kind": "copies", "family": COPIES_FAMILY, "severity": lead["severity"], "members": indices,
        "lead": indices[0], "codes": sorted({ordered[i]["code"] for i in indices}),
        "checks": sorted({str(ordered[i].get("check")) for i in indices}),
        "photo_ids": sorted(own), "linked_claims": sorted(elsewhere),
        "other_photos": [{"claim_id": c, "photo_id": p} for c in sorted(elsewhere) for p in sorted(elsewhere[c])],
        "summary": (f"One picture, {len(own) + sum(map(len, elsewhere.values()))} copies: {', '.join(where)}; "
                    f"{len(indices)} finding(s) state it. Strongest: {lead.get('message', '')}"),
    }


def _weigh(groups: list[dict[str, Any]]) -> float:
    """Sum of group points with diminishing returns per family; sets each group's ``points`` and ``weight``."""
    by_family: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for g in groups:
        g["points"] = SEVERITY_POINTS[g["severity"]]
        by_family[g["family"]].append(g)
    total = 0.0
    for members in by_family.values():
        for k, g in enumerate(sorted(members, key=lambda g: -g["points"])):
            g["weight"] = round(g["points"] * REPEAT_DECAY ** k, 4)
            total += g["points"] * REPEAT_DECAY ** k
    return total
