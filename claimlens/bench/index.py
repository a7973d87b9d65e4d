"""``claimlens bench index``: the cross-claim Hamming index at scale, on synthetic codes.

Fills a throw-away table (``hamming_codes_bench``, same DDL as the real ``hamming_codes`` but its own
name, dropped at the end) with ``n`` uniformly random 64-bit codes, plants near-matches of half the queries
at every distance 0..plant (plus decoys at plant+1 and plant+2), runs the
queries through :class:`claimlens.core.hamming_index.HammingIndex` and checks every answer against a
numpy brute force over all codes (which is also reported as a peer).

Options (``--opt KEY=VALUE``):
  n=100000         codes (= photos) in the table
  db=URL           SQLAlchemy URL; default: a SQLite file in a temporary folder
  radius=10        search radius in bits
  queries=200      number of queries (half planted, half random)
  plant=12         planted matches at distances 0..plant (those within the radius count for recall), decoys
                   at plant+1 and plant+2
  codes=1          codes per query (8 mimics querying with the 8 dihedral variants of a pHash)
  bands=3          number of bands (substrings) of the multi-index hashing table
  seed=0
  keep=0           1: keep the bench table afterwards
  reuse=0          1: reuse a kept bench table (same n, bands, seed, queries, plant) instead of loading again
PostgreSQL tables are bulk-loaded with binary COPY and indexed after the load.

With ``--opt engine=milvus|postgres`` the bench is :mod:`claimlens.bench.index_engines` instead (the
reused-photo check's whole query, real planted photos, Milvus or the PostgreSQL table).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import MetaData, create_engine, text
from sqlalchemy.orm import Session

from claimlens.bench.common import peak_rss_mb
from claimlens.core.db import NAMING, get_engine
from claimlens.core.hamming_index import N_BANDS, HammingIndex, band_widths, make_table, n_probes, probe_keys

KIND = "phash64"
TABLE = "hamming_codes_bench"
_CHUNK = 1_000_000


def _photo_ids(idx: np.ndarray) -> np.ndarray:
    """36-char UUID-shaped ids that encode the row number (decoded back with :func:`_row_of`)."""
    hexd = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    out = np.frombuffer(b"00000000-0000-4000-8000-000000000000" * len(idx), dtype=np.uint8).reshape(-1, 36).copy()
    v = idx.astype(np.uint64)
    for k in range(12):
        out[:, 35 - k] = hexd[((v >> np.uint64(4 * k)) & np.uint64(15)).astype(np.intp)]
    return out.view("S36").ravel()


def _claim_ids(idx: np.ndarray) -> np.ndarray:
    hexd = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    out = np.frombuffer(b"claim-0000000000" * len(idx), dtype=np.uint8).reshape(-1, 16).copy()
    v = (idx // 4).astype(np.uint64)  # four photos per claim
    for k in range(10):
        out[:, 15 - k] = hexd[((v >> np.uint64(4 * k)) & np.uint64(15)).astype(np.intp)]
    return out.view("S16").ravel()


def _row_of(photo_id: str) -> int:
    return int(photo_id[-12:], 16)


def _bands(codes: np.ndarray, widths: tuple[int, ...]) -> list[np.ndarray]:
    out, shift = [], 64
    for w in widths:
        shift -= w
        out.append(((codes >> np.uint64(shift)) & np.uint64((1 << w) - 1)).astype(np.int32))
    return out


def _copy_block(start: int, codes: np.ndarray, widths: tuple[int, ...]) -> bytes:
    """Rows ``start..start+len(codes)`` in PostgreSQL's binary COPY format (no header/trailer)."""
    n = len(codes)
    fields: list[tuple[str, str]] = [("nf", ">i2"), ("lk", ">i4"), ("kind", "S7"), ("lp", ">i4"), ("pid", "S36"),
                                     ("lc", ">i4"), ("cid", "S16"), ("lcode", ">i4"), ("code", ">i8"),
                                     ("lext", ">i4")]
    for i in range(len(widths)):
        fields += [(f"lb{i}", ">i4"), (f"b{i}", ">i4")]
    rec = np.empty(n, dtype=np.dtype(fields))
    rec["nf"] = 5 + len(widths)
    rec["lk"], rec["kind"] = 7, KIND.encode()
    idx = np.arange(start, start + n)
    rec["lp"], rec["pid"] = 36, _photo_ids(idx)
    rec["lc"], rec["cid"] = 16, _claim_ids(idx)
    rec["lcode"], rec["code"] = 8, codes.view(np.int64)
    rec["lext"] = 0
    for i, b in enumerate(_bands(codes, widths)):
        rec[f"lb{i}"], rec[f"b{i}"] = 4, b
    return rec.tobytes()


def _load_postgres(engine, table, codes: np.ndarray, widths: tuple[int, ...]) -> dict[str, float]:
    pk = table.primary_key
    cols = ["kind", "photo_id", "claim_id", "code", "code_ext"] + [f"b{i}" for i in range(len(widths))]
    with engine.begin() as conn:
        table.drop(conn, checkfirst=True)
        table.create(conn)
        for ix in table.indexes:
            ix.drop(conn)
        conn.exec_driver_sql(f'ALTER TABLE {table.name} DROP CONSTRAINT "{pk.name}"')
    t0 = time.perf_counter()
    raw = engine.raw_connection()
    try:
        copy_sql = f"COPY {table.name} ({', '.join(cols)}) FROM STDIN (FORMAT BINARY)"
        with raw.cursor() as cur, cur.copy(copy_sql) as cp:
            cp.write(b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8)  # signature, flags, header extension length
            for s in range(0, len(codes), _CHUNK):
                cp.write(_copy_block(s, codes[s:s + _CHUNK], widths))
            cp.write(b"\xff\xff")  # trailer
        raw.commit()
    finally:
        raw.close()
    t1 = time.perf_counter()
    with engine.begin() as conn:
        conn.exec_driver_sql("SET maintenance_work_mem = '512MB'")
        pk_cols = ", ".join(c.name for c in pk.columns)
        conn.exec_driver_sql(f'ALTER TABLE {table.name} ADD CONSTRAINT "{pk.name}" PRIMARY KEY ({pk_cols})')
        for ix in table.indexes:
            ix.create(conn)
    t2 = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f"VACUUM (ANALYZE) {table.name}")  # visibility map for index-only scans
    t3 = time.perf_counter()
    return {"copy_s": t1 - t0, "index_build_s": t2 - t1, "vacuum_analyze_s": t3 - t2}


def _load_sqlite(engine, table, codes: np.ndarray, widths: tuple[int, ...]) -> dict[str, float]:
    with engine.begin() as conn:
        table.drop(conn, checkfirst=True)
        table.create(conn)
    t0 = time.perf_counter()
    bands = _bands(codes, widths)
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        ph = ", ".join("?" * (5 + len(widths)))
        for s in range(0, len(codes), _CHUNK):
            idx = np.arange(s, min(s + _CHUNK, len(codes)))
            rows = zip([KIND] * len(idx), _photo_ids(idx).astype(str).tolist(), _claim_ids(idx).astype(str).tolist(),
                       codes[idx].view(np.int64).tolist(), [b""] * len(idx), *[b[idx].tolist() for b in bands])
            cur.executemany(f"INSERT INTO {table.name} VALUES ({ph})", rows)
        raw.commit()
        cur.execute(f"ANALYZE {table.name}")
        raw.commit()
    finally:
        raw.close()
    return {"copy_s": time.perf_counter() - t0, "index_build_s": 0.0, "vacuum_analyze_s": 0.0}


def _reuse(engine, table, n: int) -> dict[str, float] | None:
    """Timings of the load that filled a kept table (NaN: not measured in this run), or None to load."""
    from sqlalchemy import inspect

    if not inspect(engine).has_table(table.name):
        return None
    with engine.connect() as conn:
        if conn.execute(text(f"SELECT count(*) FROM {table.name}")).scalar_one() != n:
            return None
    return {"copy_s": float("nan"), "index_build_s": float("nan"), "vacuum_analyze_s": float("nan")}


def _sizes(engine, table, url: str) -> dict[str, int | None]:
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            row = conn.execute(text("SELECT pg_total_relation_size(:t), pg_relation_size(:t), pg_indexes_size(:t)"),
                               {"t": table.name}).one()
            per_index = dict(conn.execute(text(
                "SELECT c.relname, pg_relation_size(c.oid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE i.indrelid = CAST(:t AS regclass) ORDER BY c.relname"), {"t": table.name}).all())
        return {"table_bytes_total": int(row[0]), "heap_bytes": int(row[1]), "index_bytes": int(row[2]),
                "index_bytes_each": {k: int(v) for k, v in per_index.items()}}
    path = url.split("///", 1)[1]
    with engine.connect() as conn:  # fold the WAL back so the file size is the database size
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return {"table_bytes_total": os.path.getsize(path), "heap_bytes": None, "index_bytes": None}


def _pg_settings(engine) -> dict[str, str]:
    if engine.dialect.name != "postgresql":
        return {}
    with engine.connect() as conn:
        return {k: conn.execute(text(f"SHOW {k}")).scalar_one()
                for k in ("server_version", "shared_buffers", "work_mem", "effective_cache_size")}


def run(dataset_dir: Path | None, *, suite: bool, options: dict[str, str]) -> dict[str, Any]:
    if "engine" in options:  # the check's whole query on real + synthetic codes, Milvus or PostgreSQL
        from claimlens.bench.index_engines import run as run_engines

        return run_engines(options)
    t_start = time.perf_counter()
    load_before = os.getloadavg()
    n = int(float(options.get("n", "100000")))
    radius = int(options.get("radius", "10"))
    n_queries = int(options.get("queries", "200"))
    per_query = int(options.get("codes", "1"))
    n_bands = int(options.get("bands", str(N_BANDS)))
    plant = int(options.get("plant", "12"))
    seed = int(options.get("seed", "0"))
    keep = options.get("keep", "0") == "1"
    reuse = options.get("reuse", "0") == "1"
    tmpdir = None
    url = options.get("db")
    if not url:
        tmpdir = tempfile.TemporaryDirectory(prefix="claimlens-bench-index-")
        url = f"sqlite:///{tmpdir.name}/index.db"
    widths = band_widths(n_bands)
    n_planted = n_queries // 2
    if n < 3 * n_planted:
        raise SystemExit(f"n must be at least {3 * n_planted} for {n_queries} queries")

    # the table depends on n, seed, queries and plant only (so reuse=1 can try other radii and codes)
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, np.iinfo(np.uint64).max, size=n, dtype=np.uint64, endpoint=True)
    queries = np.empty((n_queries, per_query), dtype=np.uint64)
    queries[:, 0] = rng.integers(0, np.iinfo(np.uint64).max, size=n_queries, dtype=np.uint64, endpoint=True)
    queries[:, 1:] = np.random.default_rng(seed + 1).integers(
        0, np.iinfo(np.uint64).max, size=(n_queries, per_query - 1), dtype=np.uint64, endpoint=True)
    slots = rng.choice(n, size=3 * n_planted, replace=False)
    planted: dict[int, tuple[int, int]] = {}  # query -> (row, distance) of its planted match
    for j in range(n_planted):
        q = int(queries[j, 0])
        d_match = j % (plant + 1)
        for k, d in enumerate((d_match, plant + 1, plant + 2)):  # a match and two decoys beyond plant
            flip = rng.choice(64, size=d, replace=False)
            codes[slots[3 * j + k]] = np.uint64(q ^ sum(1 << int(b) for b in flip))
        if d_match <= radius:
            planted[j] = (int(slots[3 * j]), d_match)

    # ground truth (and the brute-force peer): numpy XOR + popcount over every code
    truth, bf_ms = [], []
    for j in range(n_queries):
        t0 = time.perf_counter()
        d = np.min(np.stack([np.bitwise_count(codes ^ q) for q in queries[j]]), axis=0)
        rows = np.flatnonzero(d <= radius)
        bf_ms.append(1000 * (time.perf_counter() - t0))
        truth.append({int(r): int(d[r]) for r in rows})

    engine = create_engine(url) if url.startswith("postgresql") else get_engine(url)
    table = make_table(MetaData(naming_convention=NAMING), TABLE, n_bands)
    index = HammingIndex(table)
    try:
        load = _reuse(engine, table, n) if reuse else None
        if load is None:
            loader = _load_postgres if engine.dialect.name == "postgresql" else _load_sqlite
            load = loader(engine, table, codes, widths)
        sizes = _sizes(engine, table, url)
        lat_ms, exact, found_planted = [], 0, 0
        with Session(engine) as session:
            for j in range(n_queries):
                qs = [int(c) for c in queries[j]]
                t0 = time.perf_counter()
                hits = index.search(session, KIND, qs, radius, limit=50)
                lat_ms.append(1000 * (time.perf_counter() - t0))
                got = {_row_of(h.photo_id): h.distance for h in hits}
                exact += got == truth[j] or (len(truth[j]) > 50 and len(got) == 50)
                if j in planted:
                    row, d = planted[j]
                    found_planted += got.get(row) == d
            session.rollback()
        # candidates (rows fetched before the distance check) for a sample of queries, from the codes
        bands = _bands(codes, widths)
        cands = []
        for j in range(min(10, n_queries)):
            hit = np.zeros(n, dtype=bool)
            for q in queries[j]:
                for b, keys in zip(bands, probe_keys(int(q), radius, widths)):
                    if len(keys):
                        hit |= np.isin(b, keys.astype(np.int32))
            cands.append(int(hit.sum()))
        settings = _pg_settings(engine)
    finally:
        if not keep:
            with engine.begin() as conn:
                table.drop(conn, checkfirst=True)
        engine.dispose()
        if tmpdir is not None:
            tmpdir.cleanup()

    lat = np.asarray(lat_ms)
    bf = np.asarray(bf_ms)
    db_label = url.split("@")[-1] if "@" in url else url.split(":", 1)[0]
    return {
        "bench": "index",
        "dataset": "synthetic uniform random 64-bit codes",
        "n_images": n,
        "seconds": round(time.perf_counter() - t_start, 2),
        "metrics": {
            "reused_table": bool(reuse and np.isnan(load["copy_s"])),
            "db": engine.dialect.name, "db_target": db_label, "radius": radius, "queries": n_queries,
            "codes_per_query": per_query, "bands": n_bands, "band_widths": list(widths),
            "planted_within_radius": len(planted),
            "recall_planted": found_planted / max(len(planted), 1),
            "exact_fraction": exact / n_queries,
            "query_ms_p50": round(float(np.percentile(lat, 50)), 2),
            "query_ms_p95": round(float(np.percentile(lat, 95)), 2),
            "query_ms_max": round(float(lat.max()), 2),
            "query_ms_mean": round(float(lat.mean()), 2),
            "probes_per_query": n_probes(radius, widths) * per_query,
            "candidates_per_query_mean": int(np.mean(cands)) if cands else None,
            "load_rows_per_s": (round(n / (load["copy_s"] + load["index_build_s"]))
                                if not np.isnan(load["copy_s"]) else None),
            **{k: (round(v, 2) if not np.isnan(v) else None) for k, v in load.items()},
            **sizes,
            "bytes_per_code": round(sizes["table_bytes_total"] / n, 1),
            "loadavg_1m_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
            "peak_rss_mb": peak_rss_mb(),
            "postgres": settings,
        },
        "peers": {
            "numpy-bruteforce-in-ram": {
                "recall_planted": 1.0,
                "query_ms_p50": round(float(np.percentile(bf, 50)), 2),
                "query_ms_p95": round(float(np.percentile(bf, 95)), 2),
                "query_ms_max": round(float(bf.max()), 2),
            },
        },
    }
