"""The embedded mode end to end: ``claimlens scan`` over the demo set with SQLite and a local bucket."""

from __future__ import annotations

import json
from pathlib import Path

from claimlens.cli import main
from claimlens.datasets.demo import build_demo


def test_scan_demo_flags_reuse_and_backdating(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    claims = build_demo(tmp_path / "claims")
    assert main(["scan", str(claims), "--data-dir", str(tmp_path / "data")]) == 0
    out = capsys.readouterr().out
    assert "CLM-2026-0002" in out and "report.html" in out
    bucket = tmp_path / "data" / "objects" / "claimlens" / "claims"
    r2 = json.loads((bucket / "CLM-2026-0002" / "report.json").read_text())
    r3 = json.loads((bucket / "CLM-2026-0003" / "report.json").read_text())
    codes2 = {f["code"] for f in r2["findings"]}
    assert {"exact_duplicate.cross_claim", "metadata.before_loss", "reused_photo.cross_claim"} <= codes2
    names = {p["photo_id"]: p["filename"] for p in r2["photos"]}
    edited = [f for f in r2["findings"]
              if f["code"] == "reused_photo.cross_claim" and names[f["photo_id"]] == "b_edited.jpg"]
    assert edited and edited[0]["evidence"]["linked_claim_id"] == "CLM-2026-0001"
    assert edited[0]["evidence_images"]  # the side-by-side match image is stored
    assert "metadata.before_policy_start" in {f["code"] for f in r3["findings"]}
    # one fact, one group: a0's picture as b_reused (bytes) and b_resaved (pixels), by both duplicate checks
    copies = [f for f in r2["findings"] if names.get(f["photo_id"]) in ("b_reused.jpg", "b_resaved.png")
              and f["code"].split(".")[0] in ("exact_duplicate", "reused_photo")]
    assert len(copies) >= 4 and len({f["group_id"] for f in copies}) == 1
    group = next(g for g in r2["groups"] if g["group_id"] == copies[0]["group_id"])
    assert group["kind"] == "copies" and group["linked_claims"] == ["CLM-2026-0001"] and len(group["photo_ids"]) == 2
    assert r2["findings"][group["lead"]]["code"] == "exact_duplicate.cross_claim"
    assert r2["schema_version"] == "1.1" and r2["score"] < 100
    assert (bucket / "CLM-2026-0002" / "report.html").read_text().count("data:image/jpeg;base64") >= 4
    # a second scan is idempotent: same photos, a new report revision, no duplicated findings
    assert main(["scan", str(claims), "--data-dir", str(tmp_path / "data")]) == 0
    again = json.loads((bucket / "CLM-2026-0002" / "report.json").read_text())
    assert again["revision"] == r2["revision"] + 1
    assert sorted(f["code"] for f in again["findings"]) == sorted(f["code"] for f in r2["findings"])
