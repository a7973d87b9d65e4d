"""The Hamming index on PostgreSQL: exactness, and concurrent idempotent inserts from several processes.

Needs PostgreSQL at CLAIMLENS_TEST_DATABASE_URL (default: the one scripts/services starts); skipped when it is
not reachable. Works on its own copy of the table (same DDL, its own name), dropped at the end.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import uuid

import pytest
from sqlalchemy import MetaData, create_engine, func, insert, select, text
from sqlalchemy.orm import Session

from claimlens.core.db import NAMING
from claimlens.core.hamming_index import HammingIndex, hamming, make_table
from tests.conftest import TEST_DB

pytestmark = pytest.mark.integration

URL = os.environ.get("CLAIMLENS_TEST_DATABASE_URL",
                     f"postgresql+psycopg://claimlens:claimlens@127.0.0.1:5432/{TEST_DB}")
KIND = "phash64"


def _table(name: str):
    return make_table(MetaData(naming_convention=NAMING), name)


@pytest.fixture()
def pg():
    engine = create_engine(URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure to connect means "no PostgreSQL here"
        engine.dispose()
        pytest.skip(f"PostgreSQL not reachable at {URL} ({type(exc).__name__}); start it with scripts/services "
                    f"or set CLAIMLENS_TEST_DATABASE_URL")
    table = _table(f"hamming_codes_it_{uuid.uuid4().hex[:8]}")
    table.create(engine)
    try:
        yield engine, table
    finally:
        table.drop(engine, checkfirst=True)
        engine.dispose()


def _flip(code: int, d: int, rng: random.Random) -> int:
    for b in rng.sample(range(64), d):
        code ^= 1 << b
    return code


def test_search_is_exact_against_brute_force(pg):
    engine, table = pg
    index = HammingIndex(table)
    rng = random.Random(3)
    radius = 10
    queries = [rng.getrandbits(64) for _ in range(8)]
    stored: dict[str, tuple[str, list[int]]] = {}
    for i in range(5000):
        stored[f"bg-{i}"] = (f"claim-{i // 5}", [rng.getrandbits(64) for _ in range(rng.choice([1, 1, 8]))])
    for qi, q in enumerate(queries):
        for d in range(radius + 3):
            stored[f"q{qi}-d{d}"] = (f"claim-q{qi}", [rng.getrandbits(64), _flip(q, d, rng)])
    with Session(engine) as s:
        rows = [r for pid, (cid, codes) in stored.items() for r in index.rows(KIND, pid, cid, codes)]
        s.execute(insert(table), rows)
        s.commit()
        s.execute(text(f"ANALYZE {table.name}"))
        s.execute(text("SET max_parallel_workers_per_gather = 1"))

        def brute(qs: list[int], exclude: str | None = None) -> list[tuple[str, str, int]]:
            out = [(pid, cid, min(hamming(c, q) for c in codes for q in qs)) for pid, (cid, codes) in stored.items()]
            return sorted([o for o in out if o[2] <= radius and o[0] != exclude], key=lambda o: (o[2], o[0]))

        for qi, q in enumerate(queries):
            got = [tuple(h) for h in index.search(s, KIND, [q], radius, limit=1000)]
            assert got == brute([q])
            assert {d for pid, _, d in got if pid.startswith(f"q{qi}-")} == set(range(radius + 1))
        got = index.search(s, KIND, queries, radius, limit=7, exclude_photo_id="q1-d0")
        assert [tuple(h) for h in got] == brute(queries, exclude="q1-d0")[:7]
        # a radius beyond the bands' budget: the exact scan
        got = index.search(s, KIND, queries[:3], 20, limit=40, exclude_photo_id="q1-d0")
        radius_20 = [(pid, cid, min(hamming(c, q) for c in codes for q in queries[:3]))
                     for pid, (cid, codes) in stored.items() if pid != "q1-d0"]
        assert [tuple(h) for h in got] == sorted([o for o in radius_20 if o[2] <= 20],
                                                 key=lambda o: (o[2], o[0]))[:40]
        # the search turns parallel workers off for its own statement only
        assert s.execute(text("SHOW max_parallel_workers_per_gather")).scalar_one() == "1"


def test_wide_codes_and_remove(pg):
    engine, table = pg
    index = HammingIndex(table)
    rng = random.Random(11)
    q = rng.getrandbits(256)
    stored = {f"d{d}": _flip256(q, d, rng) for d in range(8)}
    stored["far"] = q ^ ((1 << 100) - 1)  # same top 64 bits, 100 bits away below them
    with Session(engine) as s:
        for pid, code in stored.items():
            assert index.add(s, "emb256", pid, "c", [code]) == 1
        assert index.add(s, "emb256", "d0", "c", [stored["d0"]]) == 0
        got = index.search(s, "emb256", [q], 5)
        want = sorted((pid, "c", hamming(c, q)) for pid, c in stored.items() if hamming(c, q) <= 5)
        assert [tuple(h) for h in got] == sorted(want, key=lambda t: (t[2], t[0]))
        assert index.remove(s, "d0") == 1
        assert all(h.photo_id != "d0" for h in index.search(s, "emb256", [q], 5))


def _flip256(code: int, d: int, rng: random.Random) -> int:
    for b in rng.sample(range(256), d):
        code ^= 1 << b
    return code


def _insert_worker(args: tuple[str, str, int]) -> int:
    url, name, seed = args
    engine = create_engine(url)
    index = HammingIndex(_table(name))
    rng = random.Random(seed)
    photos = list(range(150))
    rng.shuffle(photos)
    new = 0
    try:
        for p in photos:
            codes = [random.Random(p * 100 + k).getrandbits(64) for k in range(8)]  # same codes in every worker
            rng.shuffle(codes)
            with Session(engine) as s, s.begin():
                new += index.add(s, KIND, f"photo-{p}", f"claim-{p // 3}", codes)
    finally:
        engine.dispose()
    return new


def test_concurrent_overlapping_inserts_make_no_duplicates(pg):
    engine, table = pg
    ctx = mp.get_context("spawn")
    with ctx.Pool(4) as pool:
        inserted = pool.map(_insert_worker, [(URL, table.name, seed) for seed in range(4)])
    expected = 150 * 8
    assert sum(inserted) == expected  # every row inserted exactly once across the 4 workers
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(table)) == expected
        dup = s.execute(text(f"SELECT count(*) FROM (SELECT 1 FROM {table.name} GROUP BY kind, photo_id, code "
                             f"HAVING count(*) > 1) d")).scalar_one()
        assert dup == 0
        # and they are all findable
        code = random.Random(42 * 100 + 3).getrandbits(64)
        assert HammingIndex(table).search(s, KIND, [code], 0) == [("photo-42", "claim-14", 0)]
