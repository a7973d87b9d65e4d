"""The score bench's pieces: the histogram, the old score it compares with, and the generated claim set."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from claimlens.bench.score import distribution, legacy_score
from claimlens.datasets.claim_suite import SCENARIOS, build_claim_suite
from claimlens.datasets.demo import SHARED_DAMAGE


def test_distribution_bins_and_shares() -> None:
    d = distribution([0, 0, 9, 10, 50, 89, 100])
    assert d["histogram"]["0-9"] == 3 and d["histogram"]["10-19"] == 1 and d["histogram"]["90-100"] == 1
    assert d["histogram"]["80-89"] == 1 and sum(d["histogram"].values()) == 7
    assert d["distinct_values"] == 6 and d["share_zero"] == round(2 / 7, 3) and d["share_ge_89"] == round(2 / 7, 3)
    assert d["p50"] == 10.0 and d["max"] == 100


def test_legacy_score_is_the_old_per_finding_product() -> None:
    high, low = {"severity": "high"}, {"severity": "low"}
    assert legacy_score([]) == 0 and legacy_score([high]) == 60 and legacy_score([high, high]) == 84
    assert legacy_score([high, high, high]) == 94 and legacy_score([low] * 3) == 27


def test_claim_suite_writes_claims_and_labels(tmp_path: Path) -> None:
    if not SHARED_DAMAGE.is_dir():
        pytest.skip(f"real photos missing: {SHARED_DAMAGE}")
    out = build_claim_suite(tmp_path / "claims", n=8, seed=3)
    with (out / "labels.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 8 and all(r["scenario"] in SCENARIOS for r in rows)
    assert all(r["planted"] == str(int(SCENARIOS[r["scenario"]][1])) for r in rows)
    for r in rows:
        folder = out / r["claim_id"]
        fields = json.loads((folder / "claim.json").read_text())
        assert fields["claim_id"] == r["claim_id"] and fields["loss_time"] < fields["report_time"]
        assert len(list(folder.rglob("*.jpg"))) >= 3
    again = build_claim_suite(tmp_path / "again", n=8, seed=3)
    assert (again / "labels.csv").read_text() == (out / "labels.csv").read_text()  # seeded
