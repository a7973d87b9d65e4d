"""The workbench's API routes over HTTP against the real stack: queue, links, decisions, precision table,
audit log, presigned photo/evidence URLs, roles."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from tests.e2e.conftest import Stack
from tests.e2e.workbench_seed import Seeded, seed

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def wb(stack: Stack) -> Seeded:
    import secrets

    return seed(stack, secrets.token_hex(3))


def test_queue_filters_search_and_cursor(stack: Stack, wb: Seeded) -> None:
    ids = set(wb.claims.values())
    with stack.client() as c:
        r = c.get("/v1/claims", params={"q": f"WB-{wb.run}", "limit": 2, "counts": "true"})
        assert r.status_code == 200, r.text
        page1 = r.json()
        assert page1["total"] == 4 and len(page1["claims"]) == 2 and page1["next_cursor"]
        assert page1["counts"]["status"] == {"final": 4}
        page2 = c.get("/v1/claims", params={"q": f"WB-{wb.run}", "limit": 2,
                                            "cursor": page1["next_cursor"]}).json()
        got = [x["claim_id"] for x in page1["claims"] + page2["claims"]]
        assert set(got) == ids and len(got) == 4 and page2["next_cursor"] is None
        scores = [x["score"] for x in page1["claims"] + page2["claims"]]
        assert scores == sorted(scores, reverse=True)
        # the claims that reuse an earlier claim's photo carry a high finding; A1 (the original) does not
        high = c.get("/v1/claims", params={"q": f"WB-{wb.run}", "severity": "high"}).json()
        assert {x["claim_id"] for x in high["claims"]} == {wb.claims["A2"], wb.claims["C"], wb.claims["B1"]}
        assert c.get("/v1/claims", params={"q": wb.plates["A2"]}).json()["claims"][0]["claim_id"] == wb.claims["A2"]
        assert c.get("/v1/claims", params={"q": f"POL-{wb.claims['C']}"}).json()["total"] == 1
        assert c.get("/v1/claims", params={"severity": "huge"}).json()["error"]["code"] == "invalid_request"
        assert c.get("/v1/claims", params={"cursor": "!!"}).status_code == 422
    with stack.client(wb.keys[wb.names["adj_b"]]) as c:
        mine = c.get("/v1/claims", params={"q": f"WB-{wb.run}"}).json()
        assert [x["claim_id"] for x in mine["claims"]] == [wb.claims["B1"]]


def test_links_graph_depth_and_visibility(stack: Stack, wb: Seeded) -> None:
    a1, a2, cc, b1 = (wb.claims[k] for k in ("A1", "A2", "C", "B1"))
    with stack.client() as c:
        one = c.get(f"/v1/claims/{a1}/links", params={"depth": 1}).json()
        assert {n["claim_id"] for n in one["nodes"]} == {a1, a2, b1}
        assert one["truncated"] is True  # C lies one hop further
        two = c.get(f"/v1/claims/{a1}/links", params={"depth": 2}).json()
        assert {n["claim_id"] for n in two["nodes"]} == {a1, a2, b1, cc}
        edge = next(e for e in two["edges"] if {e["source"], e["target"]} == {a2, cc})
        assert edge["labels"] and "photo" in edge["labels"][0]
        assert c.get(f"/v1/claims/{a1}/links", params={"depth": 9}).status_code == 422
        capped = c.get(f"/v1/claims/{a1}/links", params={"depth": 2, "max_nodes": 2}).json()
        assert len(capped["nodes"]) == 2 and capped["truncated"]
    with stack.client(wb.keys[wb.names["adj_a"]]) as c:
        mine = c.get(f"/v1/claims/{a1}/links", params={"depth": 3}).json()
        assert b1 not in {n["claim_id"] for n in mine["nodes"]}
        assert all(b1 not in (e["source"], e["target"]) for e in mine["edges"])
        assert c.get(f"/v1/claims/{b1}/links").status_code == 404


def test_decisions_precision_and_report(stack: Stack, wb: Seeded) -> None:
    a2 = wb.claims["A2"]
    inv = wb.keys[wb.names["inv"]]
    with stack.client(inv) as c:
        report = c.get(f"/v1/claims/{a2}/report").json()
        assert report["decisions"] == {"outcome": None, "findings": {}, "history": []}
        state = c.get(f"/v1/claims/{a2}/decisions").json()
        assert state["current"] == {} and state["outcome"] is None
    with stack.client() as c:
        page = c.get("/v1/claims", params={"q": a2}).json()
        assert page["claims"][0]["outcome"] is None
    high = next(f for f in report["findings"] if f["severity"] == "high")
    key = high["finding_key"]  # the report served by the API names each finding's stable key
    with stack.client(wb.keys[wb.names["adj_a"]]) as c:
        r = c.post(f"/v1/claims/{a2}/decisions", json={"finding_key": key, "action": "confirm"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    with stack.client(inv) as c:
        r = c.post(f"/v1/claims/{a2}/decisions", json={"finding_key": key, "action": "dismiss"})
        assert r.status_code == 422 and "reason" in r.json()["error"]["message"]
        r = c.post(f"/v1/claims/{a2}/decisions", json={"finding_key": "0" * 16, "action": "confirm"})
        assert r.status_code == 422
        r = c.post(f"/v1/claims/{a2}/decisions", json={"finding_key": key, "action": "dismiss",
                                                       "reason": "same_car_second_visit", "note": "re-survey"})
        assert r.status_code == 201, r.text
        r = c.post(f"/v1/claims/{a2}/decisions", json={"finding_key": key, "action": "confirm"})
        assert r.status_code == 201
        r = c.post(f"/v1/claims/{a2}/decisions", json={"action": "referred_siu", "note": "ring"})
        assert r.status_code == 201
        state = c.get(f"/v1/claims/{a2}/decisions").json()
        assert state["current"][key]["action"] == "confirm" and len(state["history"]) == 3
        assert state["outcome"]["action"] == "referred_siu"
        report = c.get(f"/v1/claims/{a2}/report").json()
        assert report["decisions"]["findings"][key]["principal"] == wb.names["inv"]
        stats = c.get("/v1/stats/decisions").json()["rows"]
        row = next(x for x in stats if x["code"] == high["code"] and x["severity"] == "high")
        assert row["confirmed"] >= 1 and row["precision"] is not None
    with stack.client() as c:
        assert c.get("/v1/claims", params={"q": a2, "decision": "referred_siu"}).json()["total"] == 1
        assert c.get("/v1/claims", params={"q": a2, "decision": "undecided"}).json()["total"] == 0
    with stack.client(wb.keys[wb.names["adj_a"]]) as c:
        assert c.get("/v1/stats/decisions").status_code == 403


def test_presigned_urls_are_scoped_and_audited(stack: Stack, wb: Seeded) -> None:
    a2, b1 = wb.claims["A2"], wb.claims["B1"]
    inv = wb.keys[wb.names["inv"]]
    with stack.client(inv) as c:
        photos = c.get(f"/v1/claims/{a2}/photos").json()
        pid = photos[0]["photo_id"]
        r = c.get(f"/v1/claims/{a2}/photos/{pid}/url", params={"variant": "thumbnail"},
                  headers={"X-Request-ID": f"req-{wb.run}-thumb"})
        assert r.status_code == 200 and r.headers["x-request-id"] == f"req-{wb.run}-thumb"
        img = httpx.get(r.json()["url"], timeout=10)
        assert img.status_code == 200 and img.content[:2] == b"\xff\xd8"
        report = c.get(f"/v1/claims/{a2}/report").json()
        ev_key = next(k for f in report["findings"] for k in f["evidence_images"].values())
        ev = c.get(f"/v1/claims/{a2}/evidence/url", params={"key": ev_key})
        assert ev.status_code == 200 and httpx.get(ev.json()["url"], timeout=10).status_code == 200
        # a key of another claim, or an object that is not evidence, gets no URL
        assert c.get(f"/v1/claims/{a2}/evidence/url",
                     params={"key": f"claims/{b1}/report.json"}).status_code == 404
        assert c.get(f"/v1/claims/{a2}/evidence/url",
                     params={"key": f"claims/{a2}/report.json"}).status_code == 404
        assert c.get(f"/v1/claims/{a2}/photos/{pid}/url").status_code == 200
        assert c.get(f"/v1/claims/{b1}/photos/{pid}/url").status_code == 404
    with stack.client(wb.keys[wb.names["adj_b"]]) as c:
        assert c.get(f"/v1/claims/{a2}/photos/{pid}/url").status_code == 404
        assert c.get(f"/v1/claims/{a2}/report").status_code == 404
        assert c.get("/v1/audit").status_code == 403
    with stack.client() as c:
        events = c.get("/v1/audit", params={"principal": wb.names["inv"], "claim_id": a2}).json()["events"]
        actions = {e["action"] for e in events}
        assert {"read_photo", "read_report", "read_evidence", "read_claim", "decision"} <= actions
        thumb = next(e for e in events if e["request_id"] == f"req-{wb.run}-thumb")
        assert thumb["action"] == "read_photo" and thumb["client_addr"] == "127.0.0.1"
        page = c.get("/v1/audit", params={"limit": 2}).json()
        assert len(page["events"]) == 2 and page["next_cursor"]
        more = c.get("/v1/audit", params={"limit": 2, "cursor": page["next_cursor"]}).json()
        assert more["events"][0]["id"] < page["events"][-1]["id"]


def test_audit_table_refuses_update_and_delete(stack: Stack) -> None:
    engine = create_engine(stack.env["CLAIMLENS_DATABASE_URL"])
    try:
        for stmt in ("UPDATE audit_events SET principal = 'x'", "DELETE FROM audit_events"):
            with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
                conn.execute(text(stmt))
    finally:
        engine.dispose()


def test_openapi_lists_the_workbench_routes(stack: Stack) -> None:
    paths = httpx.get(f"{stack.base_url}/v1/openapi.json", timeout=10).json()["paths"]
    for p in ("/v1/claims", "/v1/claims/{claim_id}/links", "/v1/claims/{claim_id}/decisions",
              "/v1/stats/decisions", "/v1/audit", "/v1/claims/{claim_id}/photos/{photo_id}/url",
              "/v1/claims/{claim_id}/evidence/url"):
        assert p in paths, p
