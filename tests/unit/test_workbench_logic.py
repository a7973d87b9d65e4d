"""The workbench's core logic on a real SQLite database (migrations applied): sessions and their expiry,
decisions and the precision table, the queue's filters and cursor, the link graph's bounds and visibility,
the append-only audit table, signed object URLs. No services needed."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import DatabaseError

from claimlens.config import Settings, UiSettings
from claimlens.core.audit import AuditContext, AuditFilters, query_events, record
from claimlens.core.auth import Principal, create_key, revoke_key
from claimlens.core.db import session_scope
from claimlens.core.decisions import (
    DecisionError,
    DecisionInput,
    claim_decisions,
    current_by_key,
    precision_table,
    record_decision,
    row_key,
)
from claimlens.core.links import link_graph
from claimlens.core.migrate import upgrade
from claimlens.core.models import Claim, ClaimLink, FindingRow, UiSession
from claimlens.core.object_urls import verify, view_url
from claimlens.core.pipeline import Runtime
from claimlens.core.queue import QueueFilters, decode_cursor, facet_counts, list_claims
from claimlens.core.sessions import resolve, revoke, sign_in_with_key
from claimlens.core.storage import LocalStore

INV = Principal("inv", "investigator")


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'wb.db'}"
    upgrade(url)
    return url


def _claims(url: str) -> None:
    """c0..c5: owners a/b, scores 90..40, one HIGH reuse finding on c0 and c1, links c0-c1-c2-c3 (a chain)."""
    with session_scope(url) as s:
        for i in range(6):
            s.add(Claim(id=f"c{i}", owner="a" if i % 2 == 0 else "b", fields={"claim_id": f"c{i}"},
                        plate=f"沪A0000{i}", vin=None, policy_id=f"P{i}", status="final", revision=1,
                        score=90 - 10 * i))
        s.flush()
        for cid in ("c0", "c1"):
            s.add(FindingRow(claim_id=cid, photo_id=None, phase="claim", check="reused_photo", check_version="1",
                             code="reused_photo.cross_claim", severity=3, message="m",
                             evidence={"linked_claim_id": "c9"}, evidence_keys={}))
        s.add(FindingRow(claim_id="c2", photo_id=None, phase="claim", check="metadata_timeline",
                         check_version="1", code="metadata.no_exif", severity=0, message="m", evidence={},
                         evidence_keys={}))
        for a, b in (("c0", "c1"), ("c1", "c2"), ("c2", "c3")):
            s.add(ClaimLink(claim_a=a, claim_b=b, reason="exact_duplicate.cross_claim", source_claim=b))


def test_sessions_expire_idle_absolute_and_with_their_key(db: str) -> None:
    ui = UiSettings(session_idle_minutes=30, session_max_hours=12)
    with session_scope(db) as s:
        key = create_key(s, name="inv", role="investigator")
    with session_scope(db) as s:
        token, active = sign_in_with_key(s, key)  # type: ignore[misc]
        assert sign_in_with_key(s, key + "x") is None
    with session_scope(db) as s:
        assert resolve(s, token, ui).principal == Principal("inv", "investigator")
        assert resolve(s, "not-a-token", ui) is None
    with session_scope(db) as s:  # idle for 31 minutes: gone, and stays gone
        s.execute(update(UiSession).values(last_seen_at=datetime.now(UTC) - timedelta(minutes=31)))
    with session_scope(db) as s:
        assert resolve(s, token, ui) is None
    with session_scope(db) as s:
        token2, _ = sign_in_with_key(s, key)  # type: ignore[misc]
        s.execute(update(UiSession).where(UiSession.token_hash != active.token_hash)
                  .values(created_at=datetime.now(UTC) - timedelta(hours=13)))
    with session_scope(db) as s:  # active a second ago but signed in 13 h ago: absolute expiry
        assert resolve(s, token2, ui) is None
    with session_scope(db) as s:
        token3, a3 = sign_in_with_key(s, key)  # type: ignore[misc]
        token4, _ = sign_in_with_key(s, key)  # type: ignore[misc]
        revoke(s, a3.token_hash)
    with session_scope(db) as s:
        assert resolve(s, token3, ui) is None and resolve(s, token4, ui) is not None
        revoke_key(s, "inv", actor="test")
    with session_scope(db) as s:
        assert resolve(s, token4, ui) is None  # the key is revoked: its sessions end


def test_decisions_validate_and_the_latest_counts(db: str) -> None:
    _claims(db)
    with session_scope(db) as s:
        row = s.query(FindingRow).filter_by(claim_id="c0").one()
        key = row_key(row)
        for bad in (DecisionInput(action="dismiss", finding_key=key),  # no reason
                    DecisionInput(action="cleared", finding_key=key),  # an outcome on a finding
                    DecisionInput(action="confirm", finding_key="f" * 16),  # unknown finding
                    DecisionInput(action="confirm"),  # a finding action without a finding
                    DecisionInput(action="confirm", finding_key=key, reason="wrong_match")):
            with pytest.raises(DecisionError):
                record_decision(s, "c0", "inv", bad)
        record_decision(s, "c0", "inv", DecisionInput(action="dismiss", finding_key=key, reason="wrong_match"))
        record_decision(s, "c0", "inv2", DecisionInput(action="confirm", finding_key=key))
        other = row_key(s.query(FindingRow).filter_by(claim_id="c1").one())
        record_decision(s, "c1", "inv", DecisionInput(action="dismiss", finding_key=other,
                                                      reason="same_car_second_visit"))
        record_decision(s, "c0", "inv", DecisionInput(action="referred_siu", note="ring"))
    with session_scope(db) as s:
        current = current_by_key(claim_decisions(s, "c0"))
        assert current[key].action == "confirm" and current[key].principal == "inv2"
        assert current[""].action == "referred_siu"
        table = precision_table(s)
    assert table == [{"code": "reused_photo.cross_claim", "check": "reused_photo", "severity": "high",
                      "confirmed": 1, "dismissed": 1, "escalated": 0, "decided": 2, "precision": 0.5}]


def test_finding_key_is_stable_across_revisions(db: str) -> None:
    _claims(db)
    with session_scope(db) as s:
        old = s.query(FindingRow).filter_by(claim_id="c0").one()
        again = FindingRow(claim_id="c0", photo_id=None, phase="claim", check=old.check, check_version="2",
                           code=old.code, severity=old.severity, message="reworded", evidence=dict(old.evidence),
                           evidence_keys={})
        elsewhere = FindingRow(claim_id="c0", photo_id=None, phase="claim", check=old.check, check_version="1",
                               code=old.code, severity=3, message="m", evidence={"linked_claim_id": "c8"},
                               evidence_keys={})
        assert row_key(again) == row_key(old) != row_key(elsewhere)


def test_queue_filters_scope_counts_and_cursor(db: str) -> None:
    _claims(db)
    with session_scope(db) as s:
        page = list_claims(s, INV, QueueFilters(), limit=4)
        assert [c["claim_id"] for c in page.claims] == ["c0", "c1", "c2", "c3"] and page.total == 6
        rest = list_claims(s, INV, QueueFilters(), cursor=page.next_cursor, limit=4)
        assert [c["claim_id"] for c in rest.claims] == ["c4", "c5"] and rest.next_cursor is None
        assert decode_cursor(page.next_cursor) == (60, "c3")  # type: ignore[arg-type]
        assert [c["claim_id"] for c in list_claims(s, INV, QueueFilters(severity="high")).claims] == ["c0", "c1"]
        assert list_claims(s, INV, QueueFilters(q="沪A00003")).claims[0]["claim_id"] == "c3"
        assert list_claims(s, INV, QueueFilters(q="P4")).claims[0]["claim_id"] == "c4"
        assert list_claims(s, INV, QueueFilters(q="c%")).total == 0  # LIKE wildcards are literal
        adjuster_b = Principal("b", "adjuster")
        assert [c["claim_id"] for c in list_claims(s, adjuster_b, QueueFilters()).claims] == ["c1", "c3", "c5"]
        record_decision(s, "c3", "inv", DecisionInput(action="cleared"))
        assert list_claims(s, INV, QueueFilters(decision="cleared")).total == 1
        assert list_claims(s, INV, QueueFilters(decision="undecided")).total == 5
        counts = facet_counts(s, INV, QueueFilters(severity="high"))
        assert counts["severity"] == {"high": 2, "info": 1}  # other values are counted without this filter
        assert counts["code"] == {"reused_photo.cross_claim": 2}
        assert counts["decision"] == {"undecided": 2} and counts["adjuster"] == {"a": 1, "b": 1}
        assert "adjuster" not in facet_counts(s, adjuster_b, QueueFilters())
    with pytest.raises(ValueError):
        QueueFilters(severity="huge").validate()
    with pytest.raises(ValueError):
        decode_cursor("!!")


def test_link_graph_depth_nodes_and_visibility(db: str) -> None:
    _claims(db)
    with session_scope(db) as s:
        one = link_graph(s, INV, "c0", depth=1)
        assert {n["claim_id"] for n in one.nodes} == {"c0", "c1"} and one.truncated
        three = link_graph(s, INV, "c0", depth=3)
        assert {n["claim_id"] for n in three.nodes} == {"c0", "c1", "c2", "c3"} and not three.truncated
        assert three.edges[0]["labels"] == ["shared photo (same picture)"]
        capped = link_graph(s, INV, "c0", depth=3, max_nodes=2)
        assert len(capped.nodes) == 2 and capped.truncated
        mine = link_graph(s, Principal("a", "adjuster"), "c0", depth=3)
        assert {n["claim_id"] for n in mine.nodes} == {"c0", "c2"} and mine.edges == []


def test_link_graph_joins_claims_naming_the_same_vin_or_plate(db: str) -> None:
    _claims(db)
    with session_scope(db) as s:
        s.add(Claim(id="c7", owner="a", fields={}, plate="沪A00005", vin="LSVAU2180N2183294", status="final",
                    revision=1, score=10))
        s.add(Claim(id="c8", owner="a", fields={}, plate="浙B12345", vin="LSVAU2180N2183294", status="final",
                    revision=1, score=5))
    with session_scope(db) as s:
        graph = link_graph(s, INV, "c7", depth=1)
        edges = {(e["source"], e["target"]): e["labels"] for e in graph.edges}
        assert edges == {("c5", "c7"): ["same plate on both claims"], ("c7", "c8"): ["same VIN on both claims"]}
        two = link_graph(s, INV, "c8", depth=2)  # c8 -VIN- c7 -plate- c5
        assert {n["claim_id"]: n["level"] for n in two.nodes} == {"c8": 0, "c7": 1, "c5": 2}
        assert link_graph(s, INV, "c4", depth=1).edges == []  # a plate no other claim names links nothing


def test_audit_is_append_only_and_filtered(db: str) -> None:
    ctx = AuditContext("inv", "investigator", "127.0.0.1", "req-1", channel="ui")
    with session_scope(db) as s:
        for i in range(3):
            record(s, ctx, "read_claim", claim_id=f"c{i}")
        record(s, ctx, "decision", claim_id="c0", decision="confirm")
        with pytest.raises(ValueError):
            record(s, ctx, "made_up_action")
    with session_scope(db) as s:
        rows, nxt = query_events(s, AuditFilters(action="read_claim"), limit=2)
        assert [r.claim_id for r in rows] == ["c2", "c1"] and nxt
        rows, nxt = query_events(s, AuditFilters(action="read_claim"), cursor=nxt, limit=2)
        assert [r.claim_id for r in rows] == ["c0"] and nxt is None
        assert query_events(s, AuditFilters(claim_id="c0", action="decision"))[0][0].details == {"decision": "confirm"}
    for stmt in ("UPDATE audit_events SET principal = 'x'", "DELETE FROM audit_events"):
        with pytest.raises(DatabaseError, match="append-only"), session_scope(db) as s:
            s.execute(text(stmt))


def test_signed_object_urls_are_scoped_and_expire(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, storage_backend="local")
    rt = Runtime(settings=settings, store=LocalStore(settings.objects_dir))
    url = view_url(rt, "claims/c0/photos/p/thumb.jpg", 60)
    query = dict(part.split("=") for part in url.split("?")[1].split("&"))
    expires, sig = int(query["expires"]), query["signature"]
    assert verify(rt, "claims/c0/photos/p/thumb.jpg", expires, sig)
    assert not verify(rt, "claims/c1/photos/p/thumb.jpg", expires, sig)  # another object
    assert not verify(rt, "claims/c0/photos/p/thumb.jpg", expires + 1, sig)  # a longer life
    assert not verify(rt, "claims/c0/photos/p/thumb.jpg", int(time.time()) - 1, sig)  # expired
    assert not verify(rt, "claims/c0/photos/p/thumb.jpg", expires, "é" * 64)


def _facet_counts_one_query_per_facet(s, principal: Principal, f: QueueFilters) -> dict[str, dict[str, int]]:  # type: ignore[no-untyped-def]
    """The former facet_counts (one COUNT(DISTINCT) query per facet), kept as the reference the two-query
    version must agree with."""
    from sqlalchemy import func, select

    from claimlens.core.models import ClaimOutcome
    from claimlens.core.queue import SEVERITIES, _filtered, _scope

    out: dict[str, dict[str, int]] = {}
    for facet, col in (("severity", FindingRow.severity), ("check", FindingRow.check), ("code", FindingRow.code)):
        scoped = _filtered(_scope(select(Claim.id), principal), f, skip=facet).subquery()
        rows = s.execute(select(col, func.count(func.distinct(FindingRow.claim_id)))
                         .where(FindingRow.claim_id.in_(select(scoped.c.id))).group_by(col)).all()
        labels = {v: k for k, v in SEVERITIES.items()}
        out[facet] = ({labels[int(k)]: int(n) for k, n in rows} if facet == "severity"
                      else {str(k): int(n) for k, n in rows})
    st = _filtered(_scope(select(Claim.status, func.count()), principal), f, skip="status")
    out["status"] = {k: int(n) for k, n in s.execute(st.group_by(Claim.status)).all()}
    dq = _filtered(_scope(select(ClaimOutcome.outcome, func.count()), principal), f, skip="decision")
    dq = dq.select_from(Claim).outerjoin(ClaimOutcome, ClaimOutcome.claim_id == Claim.id)
    out["decision"] = {(k or "undecided"): int(n) for k, n in s.execute(dq.group_by(ClaimOutcome.outcome)).all()}
    if principal.can_read_all():
        aq = _filtered(select(Claim.owner, func.count()), f, skip="adjuster")
        out["adjuster"] = {k: int(n) for k, n in s.execute(aq.group_by(Claim.owner)).all()}
    return out


def test_facet_counts_agree_with_one_query_per_facet(db: str) -> None:
    from claimlens.bench.queue import _populate

    _populate(db, 400, seed=3)
    cases = [QueueFilters(), QueueFilters(severity="high"), QueueFilters(code="reused_photo.cross_claim"),
             QueueFilters(check="metadata_timeline"), QueueFilters(severity="medium", check="integrity"),
             QueueFilters(severity="high", code="metadata.before_policy_start", decision="undecided"),
             QueueFilters(decision="cleared"), QueueFilters(status="final", adjuster="adjuster-03"),
             QueueFilters(q="BENCHQ-0001", severity="low"), QueueFilters(code="heights.inconsistent",
                                                                         decision="fraud_confirmed"),
             QueueFilters(date_from=datetime(2026, 1, 3, tzinfo=UTC), date_to=datetime(2026, 1, 8, tzinfo=UTC),
                          check="plate_vin"), QueueFilters(severity="info", status="open")]
    with session_scope(db) as s:
        for principal in (INV, Principal("adjuster-07", "adjuster")):
            for f in cases:
                got = facet_counts(s, principal, f)
                want = _facet_counts_one_query_per_facet(s, principal, f)
                assert {k: dict(sorted(v.items())) for k, v in got.items()} == {
                    k: dict(sorted(v.items())) for k, v in want.items()}, f
        assert facet_counts(s, INV, QueueFilters())["severity"]["high"] > 0  # the data is not empty


def test_claim_page_shows_each_fact_group_once() -> None:
    """Five copies of one picture in a claim, flagged pairwise by both duplicate checks (20 findings), are one
    group on the claim page, shown under one photo with the other 19 findings folded in; the other photos
    point to it. A finding of another check stays a group of its own."""
    from itertools import combinations

    from claimlens.ui.pages import fact_groups, place_groups

    photos = [f"p{i}" for i in range(1, 6)]
    items = []
    for a, b in combinations(photos, 2):
        items.append({"key": f"x-{a}-{b}", "code": "exact_duplicate.same_claim", "check": "exact_duplicate",
                      "photo_id": b, "severity": "medium", "message": "same bytes",
                      "evidence_raw": {"match": "identical bytes", "other_photo_id": a}})
        items.append({"key": f"r-{a}-{b}", "code": "reused_photo.same_claim", "check": "reused_photo",
                      "photo_id": b, "severity": "medium", "message": "near copy",
                      "evidence_raw": {"matched_photo_id": a, "score": 0.9}})
    items.append({"key": "t", "code": "metadata.no_exif", "check": "metadata_timeline", "photo_id": "p2",
                  "severity": "low", "message": "no EXIF", "evidence_raw": {}})
    groups = fact_groups(items, "C1")
    assert [(g["kind"], len(g["others"]) + 1) for g in groups] == [("copies", 20), ("finding", 1)]
    copies = groups[0]
    assert copies["lead"]["code"] == "exact_duplicate.same_claim"  # identical bytes is the strongest evidence
    assert sorted(copies["photo_ids"]) == photos and set(copies["checks"]) == {"exact_duplicate", "reused_photo"}
    assert len({id(it) for it in [copies["lead"], *copies["others"]]}) == 20  # every finding once, none lost
    by_photo, also_in = place_groups(groups, photos)
    shown = [g["group_id"] for gs in by_photo.values() for g in gs]
    assert sorted(shown) == sorted(g["group_id"] for g in groups)  # each group shown exactly once
    home = copies["lead"]["photo_id"]
    assert by_photo[home][0] is copies and by_photo[None] == []
    assert sorted(also_in) == sorted(set(photos) - {home}) and all(v == [copies] for v in also_in.values())
    assert groups[1] in by_photo["p2"]
