"""Claims for the workbench tests, built through the real API and worker: two adjusters, an investigator,
and claims linked by shared photos so that the graph has more than one hop.

    A1 (adjuster A) --shared photo p1-- A2 (A) --shared photo p3-- C (A)
    A1, A2 --shared photo p1-- B1 (adjuster B)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import httpx

from tests.e2e.conftest import Stack
from tests.support.photos import jpeg

CST = timezone(timedelta(hours=8))


@dataclass
class Seeded:
    run: str
    keys: dict[str, str]  # name -> API key
    names: dict[str, str]  # role label (adj_a, adj_b, inv) -> key name
    claims: dict[str, str]  # label (A1, A2, C, B1) -> claim id
    plates: dict[str, str]  # label -> the claim's plate


def _key(c: httpx.Client, name: str, role: str) -> str:
    r = c.post("/v1/keys", json={"name": name, "role": role})
    assert r.status_code == 201, r.text
    return r.json()["key"]


def _claim(stack: Stack, key: str, claim_id: str, photos: list[bytes], plate: str, day: int) -> None:
    loss = datetime(2026, 5, day, 10, 0, tzinfo=CST)
    with stack.client(key) as c:
        r = c.put(f"/v1/claims/{claim_id}", json={
            "policy_id": f"POL-{claim_id}", "plate": plate, "loss_type": "collision",
            "policy_start": "2026-01-01T00:00:00+08:00", "loss_time": loss.isoformat(),
            "report_time": (loss + timedelta(hours=2)).isoformat()})
        assert r.status_code == 201, r.text
        for i, data in enumerate(photos):
            r = c.post(f"/v1/claims/{claim_id}/photos", files={"file": (f"p{i}.jpg", data, "image/jpeg")},
                       data={"stage": "survey"})
            assert r.status_code in (200, 201), r.text
        assert c.post(f"/v1/claims/{claim_id}/submit").status_code == 202
    stack.wait_final(claim_id, key)


def seed(stack: Stack, run: str) -> Seeded:
    names = {"adj_a": f"adj-a-{run}", "adj_b": f"adj-b-{run}", "inv": f"inv-{run}"}
    with stack.client() as admin:
        keys = {names["adj_a"]: _key(admin, names["adj_a"], "adjuster"),
                names["adj_b"]: _key(admin, names["adj_b"], "adjuster"),
                names["inv"]: _key(admin, names["inv"], "investigator")}
    when = datetime(2026, 5, 1, 11, 0, tzinfo=CST)
    p1, p2, p3, p4, p5 = (jpeg(f"{run}-wb{i}", when=when + timedelta(minutes=i)) for i in range(5))
    claims = {label: f"WB-{run}-{label}" for label in ("A1", "A2", "C", "B1")}
    ka, kb = keys[names["adj_a"]], keys[names["adj_b"]]
    # plates differ per run: the graph joins claims naming the same plate, and several test modules seed the
    # same database, so fixed plates would link one run's claims to another's
    tag = f"{int(hashlib.sha256(run.encode()).hexdigest(), 16) % 10**4:04d}"
    plates = {"A1": f"沪A{tag}1", "A2": f"沪A{tag}2", "C": f"沪A{tag}3", "B1": f"苏B{tag}4"}
    _claim(stack, ka, claims["A1"], [p1, p2], plates["A1"], 1)
    _claim(stack, ka, claims["A2"], [p1, p3], plates["A2"], 2)
    _claim(stack, ka, claims["C"], [p3, p4], plates["C"], 3)
    _claim(stack, kb, claims["B1"], [p1, p5], plates["B1"], 4)
    return Seeded(run=run, keys=keys, names=names, claims=claims, plates=plates)
