"""The Milvus code index against the real Milvus server that ``scripts/services`` starts: the same answers as
the exact Hamming search, idempotent replaces, deletes by photo and by claim, and ``claimlens index rebuild``
from the database's ``hamming_codes`` table.

Each test works under a collection prefix of its own (dropped at the end), so lanes and runs do not meet.
"""

from __future__ import annotations

import random
import uuid

import numpy as np
import pytest
from sqlalchemy import delete

from claimlens.core.db import session_scope
from claimlens.core.hamming_index import HammingIndex, hamming, hamming_codes
from claimlens.core.milvus_index import IndexUnavailable, MilvusCodeIndex
from tests.conftest import TEST_LANE

pytestmark = pytest.mark.integration


@pytest.fixture()
def milvus(services: dict[str, str]):
    index = MilvusCodeIndex(services["CLAIMLENS_MILVUS_URI"],
                            prefix=f"it{TEST_LANE}_{uuid.uuid4().hex[:8]}")
    try:
        yield index
    finally:
        index.drop()
        index.drop_vectors()


def _flip(code: int, d: int, rng: random.Random) -> int:
    for b in rng.sample(range(64), d):
        code ^= 1 << b
    return code


def test_search_equals_brute_force(milvus: MilvusCodeIndex) -> None:
    rng = random.Random(7)
    photos: dict[str, tuple[str, list[int]]] = {}
    bases = [rng.getrandbits(64) for _ in range(20)]
    for i in range(300):
        base = bases[i % len(bases)]
        codes = [_flip(base, rng.randrange(0, 14), rng) for _ in range(rng.randrange(1, 5))]
        photos[str(uuid.uuid4())] = (f"claim-{i // 5}", codes)
    for pid, (cid, codes) in photos.items():
        milvus.replace_photo(pid, cid, {"phash64": codes})
    for q in range(20):
        query = [_flip(bases[q], rng.randrange(0, 4), rng) for _ in range(3)]
        got = milvus.search("phash64", query, max_distance=10, limit=50)
        best = {pid: min(hamming(c, x) for c in codes for x in query) for pid, (_, codes) in photos.items()}
        want = sorted(((d, pid) for pid, d in best.items() if d <= 10))[:50]
        assert [(h.distance, h.photo_id) for h in got] == want
        assert all(h.claim_id == photos[h.photo_id][0] for h in got)


def test_replace_is_idempotent_and_drops_stale_codes(milvus: MilvusCodeIndex) -> None:
    pid = str(uuid.uuid4())
    for _ in range(3):  # a task that runs twice (retry after a lost ack) writes the same rows
        milvus.replace_photo(pid, "CL-1", {"phash64": [1, 2, 3], "emb64": [9]})
    assert milvus.count("phash64") == 3 and milvus.count("emb64") == 1
    milvus.replace_photo(pid, "CL-1", {"phash64": [2, 4]})  # re-analysed: new codes, no embedding
    assert milvus.count("phash64") == 2 and milvus.count("emb64") == 0
    assert [h.distance for h in milvus.search("phash64", [1], max_distance=3)] == [2]  # 0b001 vs 0b010, 0b100
    milvus.remove_photo(pid)
    assert milvus.count("phash64") == 0
    assert milvus.search("phash64", [2], max_distance=64) == []


def test_remove_claim_leaves_other_claims(milvus: MilvusCodeIndex) -> None:
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    milvus.replace_photo(a, "ERASE-ME", {"phash64": [5], "emb64": [5]})
    milvus.replace_photo(b, "KEEP", {"phash64": [5]})
    milvus.remove_claim("ERASE-ME")
    assert [h.photo_id for h in milvus.search("phash64", [5], max_distance=0)] == [b]
    assert milvus.count("emb64") == 0


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def test_float_search_finds_the_planted_neighbour_and_respects_deletes(milvus: MilvusCodeIndex) -> None:
    """The float collection (HNSW, IP on unit vectors): the planted near copy of the query is the nearest
    photo of another claim; the asking claim's photos are left out; re-analysis without an embedding,
    photo removal and claim erasure delete the row; re-running an upsert writes one row."""
    from claimlens.core.index import vector_distance
    from claimlens.vision.duplicates import VECTOR_KIND

    rng = np.random.default_rng(3)
    others = {str(uuid.uuid4()): _unit(rng.standard_normal(256)) for _ in range(300)}
    for i, (pid, v) in enumerate(others.items()):
        milvus.replace_photo(pid, f"other-{i % 30}", {}, {VECTOR_KIND: v.tolist()})
    query = _unit(rng.standard_normal(256))
    planted, same_claim = str(uuid.uuid4()), str(uuid.uuid4())
    for _ in range(2):  # idempotent: a retried task writes the same single row
        milvus.replace_photo(planted, "EARLIER", {"phash64": [7]},
                             {VECTOR_KIND: _unit(query + 0.2 * rng.standard_normal(256)).tolist()})
    milvus.replace_photo(same_claim, "ASKING", {}, {VECTOR_KIND: query.tolist()})  # the exact vector

    hits = milvus.search_vectors(VECTOR_KIND, query.tolist(), limit=10, exclude_claim="ASKING")
    assert hits[0][:2] == (planted, "EARLIER")
    assert all(cid != "ASKING" for _, cid, _ in hits) and len(hits) == 10
    exact = sorted(((float(v @ query), pid) for pid, v in others.items()), reverse=True)
    assert hits[1][0] == exact[0][1]  # the ANN order is the exact order here
    assert 0 <= vector_distance(hits[0][2]) < vector_distance(hits[1][2])
    assert milvus.search_vectors(VECTOR_KIND, query.tolist(), limit=1)[0][0] == same_claim
    rows = milvus._call(lambda c: c.query(milvus.vector_collection(VECTOR_KIND), filter=f'pk == "{planted}"',
                                          output_fields=["pk"]))
    assert len(rows) == 1

    milvus.replace_photo(planted, "EARLIER", {"phash64": [7]})  # re-analysed without an embedding
    assert planted not in [h[0] for h in milvus.search_vectors(VECTOR_KIND, query.tolist(), limit=10)]
    milvus.replace_photo(planted, "EARLIER", {}, {VECTOR_KIND: query.tolist()})
    milvus.remove_photo(planted)
    assert planted not in [h[0] for h in milvus.search_vectors(VECTOR_KIND, query.tolist(), limit=10)]
    milvus.remove_claim("ASKING")
    assert same_claim not in [h[0] for h in milvus.search_vectors(VECTOR_KIND, query.tolist(), limit=10)]
    assert milvus.kinds() == ["phash64"]  # the float collection is not a code kind


def test_unknown_kind_and_bad_ids() -> None:
    index = MilvusCodeIndex("http://127.0.0.1:1", prefix="never", timeout=1)
    with pytest.raises(ValueError):
        index.collection("Bad-Kind")
    with pytest.raises(ValueError):
        index.remove_claim('x" or claim_id != "')
    with pytest.raises(IndexUnavailable):  # nothing listens there: a transient failure, not a crash
        index.search("phash64", [1], max_distance=4)


def test_rebuild_from_the_database(milvus: MilvusCodeIndex, settings_env: dict[str, str]) -> None:
    from claimlens.core.index import rebuild_code_index

    url = settings_env["CLAIMLENS_DATABASE_URL"]
    claim = f"RB-{uuid.uuid4().hex[:6]}"
    rows = {str(uuid.uuid4()): [random.getrandbits(64) for _ in range(3)] for _ in range(40)}
    with session_scope(url) as s:
        for pid, codes in rows.items():
            HammingIndex().add(s, "phash64", pid, claim, codes)
        HammingIndex().add(s, "emb256", next(iter(rows)), claim, [random.getrandbits(256)])
    try:
        milvus.replace_photo("stale-photo", "gone", {"phash64": [1]})  # not in the database: must go
        counts = rebuild_code_index(url, milvus, batch=50)
        assert counts["phash64"] >= 120 and counts["emb256"] >= 1
        pid, codes = next(iter(rows.items()))
        hits = milvus.search("phash64", [codes[1]], max_distance=0)
        assert [(h.photo_id, h.claim_id) for h in hits] == [(pid, claim)]
        assert all(h.photo_id != "stale-photo" for h in milvus.search("phash64", [1], max_distance=0))
        assert milvus.count("phash64") == counts["phash64"]
    finally:
        with session_scope(url) as s:
            s.execute(delete(hamming_codes).where(hamming_codes.c.claim_id == claim))
