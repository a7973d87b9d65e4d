"""``claimlens bench queue [--opt claims=10000] [--opt requests=30]``: how fast the workbench's queue page
answers with many claims in the database (issue target: < 300 ms with 10,000 claims).

The database is CLAIMLENS_DATABASE_URL (PostgreSQL in the service stack), else a fresh SQLite file. The bench
writes N generated claims (ids ``BENCHQ-...``) with 0-5 findings each, outcomes on some, 25 adjusters, then
times the full request in-process (ASGI, no network): the page as the queue opens (sorted by score, counts per
filter), filtered pages, a search, the second page, and ``GET /v1/claims`` for comparison. The generated claims
are deleted afterwards unless ``--opt keep=1``.
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, insert, select

PREFIX = "BENCHQ-"
CODES = [("exact_duplicate", "exact_duplicate.cross_claim", 3), ("reused_photo", "reused_photo.cross_claim", 3),
         ("reused_photo", "reused_photo.same_claim", 1), ("metadata_timeline", "metadata.before_policy_start", 3),
         ("metadata_timeline", "metadata.gps_far_from_loss", 2), ("metadata_timeline", "metadata.no_exif", 0),
         ("plate_vin", "plate_vin.plate_mismatch", 2), ("integrity", "integrity.recaptured", 2),
         ("damage_forensics", "damage.artificial_scratch_suspected", 2), ("heights", "heights.inconsistent", 2)]


def _populate(url: str, n: int, seed: int = 0) -> None:
    from claimlens.core.db import session_scope
    from claimlens.core.models import Claim, ClaimOutcome, FindingRow

    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with session_scope(url) as s:
        have = s.scalar(select(func.count()).select_from(Claim).where(Claim.id.startswith(PREFIX)))
        if have == n:
            return
        _cleanup(s)
    claims, findings, outcomes = [], [], []
    for i in range(n):
        cid = f"{PREFIX}{i:06d}"
        created = start + timedelta(minutes=47 * i)
        picked = rng.sample(CODES, rng.choice([0, 0, 1, 1, 2, 3, 4, 5]))
        score = min(100, sum({3: 50, 2: 20, 1: 5, 0: 0}[sev] for _, _, sev in picked))
        plate = f"沪{chr(65 + i % 26)}{i:05d}"
        claims.append({"id": cid, "owner": f"adjuster-{i % 25:02d}", "fields": {"claim_id": cid, "plate": plate,
                       "loss_type": "collision"}, "policy_id": f"POL-{i:06d}", "plate": plate,
                       "vin": f"LSVAB{i:012d}", "status": "final", "revision": 1, "report_revision": 1,
                       "score": score, "created_at": created, "updated_at": created})
        for check, code, sev in picked:
            findings.append({"claim_id": cid, "photo_id": None, "phase": "claim", "check": check,
                             "check_version": "1", "code": code, "severity": sev, "message": code,
                             "evidence": {}, "evidence_keys": {}, "created_at": created})
        if i % 10 == 0:
            outcomes.append({"claim_id": cid, "outcome": rng.choice(["cleared", "referred_siu", "fraud_confirmed"]),
                             "principal": "bench", "decided_at": created})
    with session_scope(url) as s:
        for table, rows in ((Claim, claims), (FindingRow, findings), (ClaimOutcome, outcomes)):
            for k in range(0, len(rows), 2000):
                s.execute(insert(table), rows[k:k + 2000])
    from sqlalchemy import text

    from claimlens.core.db import get_engine

    engine = get_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE claims; ANALYZE findings; ANALYZE claim_outcomes"))


def _cleanup(s: Any) -> None:
    from claimlens.core.models import Claim, ClaimOutcome, FindingRow

    s.execute(delete(FindingRow).where(FindingRow.claim_id.startswith(PREFIX)))
    s.execute(delete(ClaimOutcome).where(ClaimOutcome.claim_id.startswith(PREFIX)))
    s.execute(delete(Claim).where(Claim.id.startswith(PREFIX)))


def _time(client: Any, url: str, requests: int, **kw: Any) -> dict[str, float]:
    client.get(url, **kw)  # warm-up (template compile, connection pool)
    times = []
    for _ in range(requests):
        t0 = time.perf_counter()
        r = client.get(url, **kw)
        times.append((time.perf_counter() - t0) * 1000)
        if r.status_code != 200:
            raise RuntimeError(f"{url} answered {r.status_code}: {r.text[:300]}")
    times.sort()
    return {"p50_ms": round(statistics.median(times), 1),
            "p95_ms": round(times[max(0, round(0.95 * len(times)) - 1)], 1), "max_ms": round(times[-1], 1)}


def run(dataset_dir: Path | None, *, suite: bool, options: dict[str, str]) -> dict[str, Any]:
    n = int(options.get("claims", "10000"))
    requests = int(options.get("requests", "30"))
    tmp = None
    if not os.environ.get("CLAIMLENS_DATABASE_URL"):
        tmp = tempfile.mkdtemp(prefix="claimlens-bench-queue-")
        os.environ["CLAIMLENS_DATA_DIR"] = tmp
        os.environ["CLAIMLENS_STORAGE_BACKEND"] = "local"
    os.environ["CLAIMLENS_RATE_LIMIT__ENABLED"] = "false"
    from claimlens.config import get_settings

    get_settings.cache_clear()
    settings = get_settings()
    url = settings.effective_database_url
    from claimlens.core.migrate import upgrade

    upgrade(url)
    t0 = time.perf_counter()
    _populate(url, n)
    populate_s = time.perf_counter() - t0
    from fastapi.testclient import TestClient

    from claimlens.api.main import create_app
    from claimlens.core.auth import create_key
    from claimlens.core.db import session_scope
    from claimlens.core.sessions import sign_in_with_key

    name = f"bench-queue-{os.getpid()}-{int(time.time())}"
    with session_scope(url) as s:
        key = create_key(s, name=name, role="investigator")
    with session_scope(url) as s:
        token, _ = sign_in_with_key(s, key)  # type: ignore[misc]
    metrics: dict[str, Any] = {}
    with TestClient(create_app()) as client:
        client.cookies.set("cl_session", token)
        first = client.get("/ui/")
        if first.status_code != 200 or PREFIX not in first.text:
            raise RuntimeError(f"queue page did not list the bench claims: {first.status_code}")
        nxt = first.text.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
        cases = {"queue_page": "/ui/", "queue_page_high": "/ui/?severity=high",
                 "queue_page_code_undecided": "/ui/?code=reused_photo.cross_claim&decision=undecided",
                 "queue_page_search_plate": f"/ui/?q=沪C{2:05d}", "queue_page_second_page": nxt}
        for label, path in cases.items():
            metrics[label] = _time(client, path, requests)
        metrics["api_claims_list"] = _time(client, "/v1/claims?limit=50", requests, headers={"X-API-Key": key})
    if options.get("keep") != "1":
        with session_scope(url) as s:
            _cleanup(s)
    return {"bench": "queue", "dataset": f"{n} generated claims in {url.split('://')[0]}", "n_images": 0,
            "seconds": round(time.perf_counter() - t0, 1),
            "metrics": {"claims": n, "requests_per_case": requests, "populate_seconds": round(populate_s, 1),
                        "target_ms": 300, **metrics}, "peers": {}}
