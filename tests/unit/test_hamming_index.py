"""The Hamming index on SQLite (embedded mode) and its pure band functions."""

from __future__ import annotations

import random
from math import comb

import numpy as np
import pytest
from sqlalchemy import MetaData, create_engine, event, func, insert, select
from sqlalchemy.orm import Session

from claimlens.core.db import NAMING
from claimlens.core.hamming_index import (
    MAX_PROBES,
    HammingIndex,
    band_neighbours,
    band_radii,
    band_widths,
    flip_masks,
    hamming,
    hamming_codes,
    join_code,
    kind_bits,
    make_table,
    n_probes,
    probe_keys,
    split_bands,
    split_code,
    to_signed64,
    to_unsigned64,
)

KIND = "phash64"


# -- pure functions -----------------------------------------------------------------------------------------

def test_band_widths_cover_the_word_wider_first():
    assert band_widths(3) == (22, 21, 21)
    assert band_widths(4) == (16, 16, 16, 16)
    assert band_widths(5) == (13, 13, 13, 13, 12)
    assert sum(band_widths(7)) == 64
    with pytest.raises(ValueError):
        band_widths(0)


def test_split_bands_round_trips():
    rng = random.Random(0)
    for widths in [(22, 21, 21), (16,) * 4, (64,)]:
        for _ in range(100):
            word = rng.getrandbits(64)
            bands = split_bands(word, widths)
            back = 0
            for b, w in zip(bands, widths):
                assert 0 <= b < 1 << w
                back = (back << w) | b
            assert back == word


def test_band_radii_tightened_pigeonhole():
    assert band_radii(10, 3) == (3, 3, 2)  # 10 = 3*3 + 1
    assert band_radii(10, 4) == (2, 2, 2, 1)  # 10 = 2*4 + 2
    assert band_radii(12, 4) == (3, 2, 2, 2)
    assert band_radii(1, 3) == (0, 0, -1)  # one differing bit leaves band 0 or 1 intact
    assert band_radii(0, 3) == (0, -1, -1)
    # exhaustive check of the guarantee on small cases: any split of d <= r differing bits over the bands
    # puts at most radius[i] of them in some probed band i
    for m in (2, 3, 4):
        for r in range(9):
            radii = band_radii(r, m)
            for counts in np.ndindex(*([r + 1] * m)):
                if sum(counts) <= r:
                    assert any(c <= rad for c, rad in zip(counts, radii)), (m, r, counts)


def test_flip_masks_and_neighbours():
    masks = flip_masks(10, 2)
    assert len(masks) == 1 + 10 + 45 == len(set(masks.tolist()))
    assert all(int(x).bit_count() <= 2 for x in masks)
    nb = band_neighbours(0b1011, 10, 2)
    assert int(nb[0]) == 0b1011
    assert {hamming(int(v), 0b1011) for v in nb} == {0, 1, 2}
    assert len(band_neighbours(5, 10, -1)) == 0
    assert n_probes(10, (22, 21, 21)) == (sum(comb(22, k) for k in range(4)) + sum(comb(21, k) for k in range(4))
                                          + sum(comb(21, k) for k in range(3)))


def test_probe_keys_find_every_code_within_radius():
    rng = random.Random(1)
    widths = band_widths(3)
    for _ in range(200):
        q = rng.getrandbits(64)
        d = rng.randint(0, 10)
        c = q
        for b in rng.sample(range(64), d):
            c ^= 1 << b
        keys = probe_keys(q, 10, widths)
        assert any(cb in set(k.tolist()) for cb, k in zip(split_bands(c, widths), keys))


def test_code_layout_helpers():
    assert kind_bits("phash64") == 64 and kind_bits("emb256") == 256
    with pytest.raises(ValueError):
        kind_bits("phash")
    for word in (0, 1, (1 << 63) - 1, 1 << 63, (1 << 64) - 1):
        assert to_unsigned64(to_signed64(word)) == word
        assert -(1 << 63) <= to_signed64(word) < 1 << 63
    code = (0xDEADBEEF << 192) | 12345
    word, ext = split_code(code, 256)
    assert word == 0xDEADBEEF and len(ext) == 24 and join_code(word, ext) == code
    assert split_code(7, 64) == (7, b"")
    with pytest.raises(ValueError):
        split_code(1 << 64, 64)


# -- SQLite ---------------------------------------------------------------------------------------------------

@pytest.fixture()
def engine(tmp_path):
    eng = create_engine(f"sqlite:///{tmp_path / 'index.db'}")

    @event.listens_for(eng, "connect")
    def _wal(conn, _rec):
        conn.execute("PRAGMA journal_mode=WAL")

    hamming_codes.metadata.create_all(eng, tables=[hamming_codes])
    yield eng
    eng.dispose()


def _flip(code: int, d: int, rng: random.Random, bits: int = 64) -> int:
    for b in rng.sample(range(bits), d):
        code ^= 1 << b
    return code


def _brute(stored: dict[str, tuple[str, list[int]]], queries: list[int], r: int,
           exclude: str | None = None) -> list[tuple[str, str, int]]:
    out = []
    for pid, (cid, codes) in stored.items():
        d = min(hamming(c, q) for c in codes for q in queries)
        if d <= r and pid != exclude:
            out.append((pid, cid, d))
    return sorted(out, key=lambda t: (t[2], t[0]))


@pytest.mark.parametrize("radius", [4, 10, 12])
def test_search_is_exact_against_brute_force(engine, radius):
    rng = random.Random(radius)
    index = HammingIndex()
    stored: dict[str, tuple[str, list[int]]] = {}
    queries = [rng.getrandbits(64) for _ in range(6)]
    with Session(engine) as s:
        # random background, several codes per photo (like dihedral variants)
        for i in range(3000):
            codes = [rng.getrandbits(64) for _ in range(rng.choice([1, 1, 8]))]
            stored[f"bg-{i}"] = (f"claim-{i // 5}", codes)
        # planted neighbours of every query at every distance 0..radius+2
        for qi, q in enumerate(queries):
            for d in range(radius + 3):
                stored[f"q{qi}-d{d}"] = (f"claim-q{qi}", [rng.getrandbits(64), _flip(q, d, rng)])
        background = [row for pid, (cid, codes) in stored.items() if pid.startswith("bg-")
                      for row in index.rows(KIND, pid, cid, codes)]
        s.execute(insert(hamming_codes), background)  # bulk: one executemany
        for pid, (cid, codes) in stored.items():
            if not pid.startswith("bg-"):
                index.add(s, KIND, pid, cid, codes)
        s.commit()
        for q in queries:
            got = index.search(s, KIND, [q], radius, limit=1000)
            assert [tuple(h) for h in got] == _brute(stored, [q], radius)
            assert {h.distance for h in got if h.photo_id.startswith(f"q{queries.index(q)}-")} == set(range(radius + 1))
        # several query codes at once (e.g. the dihedral variants of the query), limit and exclusion
        got = index.search(s, KIND, queries[:3], radius, limit=5, exclude_photo_id="q0-d0")
        assert [tuple(h) for h in got] == _brute(stored, queries[:3], radius, exclude="q0-d0")[:5]


def test_add_is_idempotent_and_remove_deletes(engine):
    index = HammingIndex()
    t = hamming_codes
    with Session(engine) as s:
        assert index.add(s, KIND, "p1", "c1", [1, 2, 3, 3]) == 3
        assert index.add(s, KIND, "p1", "c1", [3, 2, 1]) == 0
        assert index.add(s, KIND, "p1", "c1", [(1 << 64) - 1]) == 1  # top bit set: stored as a negative BIGINT
        assert index.add(s, "emb64", "p1", "c1", [1]) == 1  # another kind is another row
        assert index.add(s, KIND, "p2", "c2", [1]) == 1
        s.commit()
        assert s.scalar(select(func.count()).select_from(t)) == 6
        assert [h.photo_id for h in index.search(s, KIND, [1], 0)] == ["p1", "p2"]
        assert index.search(s, KIND, [(1 << 64) - 2], 1)[0] == ("p1", "c1", 1)
        assert index.search(s, "emb64", [1], 3) == [("p1", "c1", 0)]
        assert index.remove(s, "p1") == 5
        s.commit()
        assert index.search(s, KIND, [1], 0) == [("p2", "c2", 0)]
        assert index.remove(s, "p1") == 0


def test_wide_codes_are_verified_on_all_bits(engine):
    index = HammingIndex()
    rng = random.Random(7)
    q = rng.getrandbits(256)
    stored = {f"d{d}": ("c", [_flip(q, d, rng, 256)]) for d in range(8)}
    # same top 64 bits as the query, far away in the other 192: the bands match, the full check must not
    stored["far"] = ("c", [q ^ ((1 << 100) - 1)])
    with Session(engine) as s:
        for pid, (cid, codes) in stored.items():
            index.add(s, "emb256", pid, cid, codes)
        got = index.search(s, "emb256", [q], 5)
        assert [tuple(h) for h in got] == _brute(stored, [q], 5)


def test_radius_beyond_probe_budget_falls_back_to_an_exact_scan(engine):
    rng = random.Random(5)
    index = HammingIndex()
    q = rng.getrandbits(64)
    stored = {f"p{i}": (f"c{i}", [_flip(q, rng.randint(0, 40), rng)]) for i in range(300)}
    stored["wide"] = ("cw", [rng.getrandbits(64)])
    with Session(engine) as s:
        for pid, (cid, codes) in stored.items():
            index.add(s, KIND, pid, cid, codes)
        assert n_probes(30, index.widths) > MAX_PROBES
        queries = [q, rng.getrandbits(64)]
        got = index.search(s, KIND, queries, 30, limit=1000, exclude_photo_id="p0")
        assert [tuple(h) for h in got] == _brute(stored, queries, 30, exclude="p0")
        assert len(got) > 100
        assert [tuple(h) for h in index.search(s, KIND, queries, 30, limit=3)] == _brute(stored, queries, 30)[:3]


def test_bench_table_copy_has_other_bands(engine):
    t = make_table(MetaData(naming_convention=NAMING), "hamming_codes_t4", 4)
    t.create(engine)
    index = HammingIndex(t)
    assert index.widths == (16, 16, 16, 16)
    with Session(engine) as s:
        index.add(s, KIND, "p", "c", [0xFFFF])
        assert index.search(s, KIND, [0], 16) == [("p", "c", 16)]
