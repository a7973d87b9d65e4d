"""``claimlens bench index --opt engine=milvus|postgres``: the reused-photo check's whole pHash query (every
code it sends for one photo) against an index of ``n`` photos, on Milvus or on the PostgreSQL Hamming table.

Data:

* planted matches: the real photos of ``neardup_car_damage_roboflow`` (150 groups x 3 exports of one photo:
  flip, small rotation, shear, resize, re-encode; CC BY 4.0). Of each group the first photo is the query and
  the others are indexed with their stored codes (``PhotoHashes.stored_codes``), as the check stores them;
* distractors: synthetic photos whose stored codes are drawn from the real codes' distribution: each bit
  independently with its frequency among the stored pHash codes of ``car_damage_roboflow`` (481 real
  photos), ``codes_per_photo`` codes per photo (the real mean, rounded). Independent bits are kinder than
  real hashes (whose bits correlate), so candidate counts on real archives will be higher.

Metrics: ``query_ms_p50/p95`` (one search call with all the photo's query codes, radius ``radius``, limit
50: what the check sends), ``recall_vs_exact`` (the i-th returned distance is no worse than the i-th of the
exact top-10 within the radius, from a numpy brute force over all stored codes), ``recall_planted`` (the
group's other exports among the returned photos), ``insert_per_s``, ``index_build_s``,
``index_step_ms_p50/p95`` (Milvus: one photo task's ``replace_photo``), the Milvus server's
RSS before/after and its data dir on disk (or the table's size on PostgreSQL).

With ``engine=milvus`` the float collection is measured too (:func:`float_bench`: one photo's embedding
query, top 10, against ``n`` vectors; ``--opt float=0`` skips it, ``--opt codes=0`` measures it alone).

``--opt reduce=256`` measures instead what the float embedding loses when cut to its first 256 PCA
coordinates (recall@1/10/50 of the real exports; see :func:`reduce_cost`).

Options: engine=milvus|postgres, n=100000, radius=16, queries=150, seed=0, index=BIN_FLAT|BIN_IVF_FLAT,
nlist=1024, nprobe=16, uri=(settings.milvus_uri), server_dir=var/services/milvus, db=(settings database),
keep=0.
"""

from __future__ import annotations

import csv
import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from claimlens.bench.common import peak_rss_mb

KIND = "phash64"
PLANTED = "neardup_car_damage_roboflow"
FIT = "car_damage_roboflow"


def _photo_codes(path: Path) -> tuple[list[int], list[int]]:
    """(stored codes, query codes) of one real photo, as the check computes them."""
    from claimlens.vision.decode import decode_photo
    from claimlens.vision.duplicates.features import FEATURE_MAX_SIDE
    from claimlens.vision.duplicates.hashing import compute_hashes

    photo = decode_photo(path.read_bytes())
    hashes = compute_hashes(photo.gray(FEATURE_MAX_SIDE))
    return hashes.stored_codes(), hashes.query_codes()


def _bits(codes: np.ndarray) -> np.ndarray:
    return ((codes[:, None] >> np.arange(63, -1, -1, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8)


def _fit(data: Path) -> tuple[np.ndarray, float]:
    """Per-bit frequency of the stored pHash codes of the real photos, and stored codes per photo."""
    codes, counts = [], []
    for path in sorted((data / FIT).rglob("*.jpg")):
        stored, _ = _photo_codes(path)
        codes.extend(stored)
        counts.append(len(stored))
    return _bits(np.array(codes, dtype=np.uint64)).mean(axis=0), float(np.mean(counts))


def _synthetic(p: np.ndarray, rows: int, rng: np.random.Generator) -> np.ndarray:
    out = np.zeros(rows, dtype=np.uint64)
    for b in range(64):
        out |= (rng.random(rows) < p[b]).astype(np.uint64) << np.uint64(63 - b)
    return out


def _planted(data: Path) -> list[tuple[str, list[int], list[tuple[str, list[int]]]]]:
    """Per group: (group, query codes of its first photo, [(image, stored codes)] of the others)."""
    groups: dict[str, list[str]] = {}
    with open(data / PLANTED / "groups.csv", newline="") as f:
        for row in csv.DictReader(f):
            groups.setdefault(row["group_id"], []).append(row["image"])
    out = []
    for gid, images in sorted(groups.items()):
        _, query = _photo_codes(data / PLANTED / images[0])
        others = [(img, _photo_codes(data / PLANTED / img)[0]) for img in images[1:]]
        out.append((gid, query, others))
    return out


def _server_stats(server_dir: Path) -> dict[str, Any]:
    pid_file = server_dir / "milvus.pid"
    rss = None
    try:
        pid = int(pid_file.read_text())
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) // 1024
    except (OSError, ValueError):
        pass
    disk = None
    data = server_dir / "base" / "data"
    if data.exists():
        disk = int(subprocess.run(["du", "-sk", str(data)], check=False, capture_output=True, text=True).stdout.split()[0]) * 1024
    return {"server_rss_mb": rss, "server_data_bytes": disk}


def reduce_cost(data: Path, dims: int) -> dict[str, Any]:
    """What keeping the first ``dims`` coordinates of the copy embedding costs in retrieval (``--opt reduce=D``).

    The shipped embedding is PCA-whitened inside its ONNX graph with the components in order, so the first
    ``dims`` coordinates (L2-normalised again) are its PCA reduction. Gallery: every photo of
    ``neardup_car_damage_roboflow`` and ``car_damage_roboflow``; per group the first export queries, and a
    hit is a group mate ranked within the top k by cosine (the query itself excluded)."""
    from claimlens.vision.decode import decode_photo
    from claimlens.vision.embedding import CopyEmbedder

    emb = CopyEmbedder()
    groups: dict[str, list[str]] = {}
    with open(data / PLANTED / "groups.csv", newline="") as f:
        for row in csv.DictReader(f):
            groups.setdefault(row["group_id"], []).append(str(data / PLANTED / row["image"]))
    paths = [p for imgs in groups.values() for p in imgs]
    paths += [str(p) for p in sorted((data / FIT).rglob("*.jpg"))]
    vecs = np.stack([np.asarray(emb.embed(decode_photo(Path(p).read_bytes()).rgb), np.float32).reshape(-1)
                     for p in paths])
    index_of = {p: i for i, p in enumerate(paths)}
    out: dict[str, Any] = {"gallery": len(paths), "full_dims": int(vecs.shape[1]), "dims": dims}
    for label, v in (("full", vecs), ("reduced", vecs[:, :dims])):
        v = v / np.linalg.norm(v, axis=1, keepdims=True)
        found = {1: [], 10: [], 50: []}
        for imgs in groups.values():
            qi = index_of[imgs[0]]
            sims = v @ v[qi]
            sims[qi] = -np.inf
            order = np.argsort(-sims)
            rank = {int(j): r for r, j in enumerate(order[:50])}
            for k, hits in found.items():
                hits.extend(rank.get(index_of[m], 99) < k for m in imgs[1:])
        out[label] = {f"recall_at_{k}": float(np.mean(f)) for k, f in found.items()}
    return out


def run(options: dict[str, str]) -> dict[str, Any]:
    from claimlens.config import get_settings

    engine = options.get("engine", "milvus")
    if engine not in ("milvus", "postgres"):
        raise SystemExit("bench index: engine must be milvus or postgres")
    n = int(float(options.get("n", "100000")))
    radius = int(options.get("radius", "16"))
    n_queries = int(options.get("queries", "150"))
    seed = int(options.get("seed", "0"))
    keep = options.get("keep", "0") == "1"
    data = Path(options.get("data", str(Path(__file__).resolve().parents[2].parent / "shared" / "data")))
    if not (data / PLANTED / "groups.csv").exists():
        raise SystemExit(f"bench index: needs {data / PLANTED} (the shared data folder)")
    settings = get_settings()
    rng = np.random.default_rng(seed)
    if "reduce" in options:
        t = time.perf_counter()
        return {"bench": "index", "dataset": str(data / PLANTED), "n_images": None, "seconds": None,
                "metrics": {"reduce": reduce_cost(data, int(options["reduce"])), "seconds": time.perf_counter() - t}}

    if engine == "milvus" and options.get("float", "1") != "0" and options.get("codes", "1") == "0":
        t = time.perf_counter()  # the float collection alone (--opt codes=0)
        return {"bench": "index", "dataset": str(data / PLANTED), "n_images": n, "seconds": None,
                "metrics": {"engine": engine, "float": float_bench(options, settings, data, n, rng),
                            "seconds": time.perf_counter() - t}}

    t0 = time.perf_counter()
    p_bits, per_photo = _fit(data)
    planted = _planted(data)[:n_queries]
    k = max(1, round(per_photo))
    fit_s = time.perf_counter() - t0

    # rows: (photo index, code); planted photos first, distractors after
    photo_ids: list[str] = []
    claim_ids: list[str] = []
    row_photo: list[int] = []
    row_code: list[int] = []
    group_of: dict[str, str] = {}
    for gid, _, others in planted:
        for img, stored in others:
            pid = str(uuid.uuid5(uuid.NAMESPACE_URL, img))
            group_of[pid] = gid
            photo_ids.append(pid)
            claim_ids.append(f"planted-{gid}"[:64])
            for c in stored:
                row_photo.append(len(photo_ids) - 1)
                row_code.append(c)
    n_distract = max(0, n - len(photo_ids))
    synth = _synthetic(p_bits, n_distract * k, rng)
    base = len(photo_ids)
    photo_ids.extend(f"00000000-0000-4000-8000-{i:012x}" for i in range(n_distract))
    claim_ids.extend(f"claim-{i // 20:010d}" for i in range(n_distract))
    all_photo = np.concatenate([np.array(row_photo, dtype=np.int64),
                                base + np.repeat(np.arange(n_distract, dtype=np.int64), k)])
    all_code = np.concatenate([np.array(row_code, dtype=np.uint64), synth])

    before = _server_stats(Path(options.get("server_dir", "var/services/milvus"))) if engine == "milvus" else {}
    if engine == "milvus":
        load, search, sizes, cleanup = _milvus(options, settings, photo_ids, claim_ids, all_photo, all_code)
    else:
        load, search, sizes, cleanup = _postgres(options, settings, photo_ids, claim_ids, all_photo, all_code)
    try:
        timing = load()
        lat, recall_exact, recall_planted = [], [], []
        for gid, query, others in planted:
            q = np.array(sorted(set(query)), dtype=np.uint64)
            t = time.perf_counter()
            hits = search([int(x) for x in q], radius)
            lat.append((time.perf_counter() - t) * 1000)
            # exact: each photo's best distance over all its codes and all query codes
            d = np.full(len(all_code), 64, dtype=np.uint8)
            for x in q:  # one pass per query code: memory stays at one array of the codes
                np.minimum(d, np.bitwise_count(all_code ^ x).astype(np.uint8), out=d)
            best = np.full(len(photo_ids), 65, dtype=np.int64)
            np.minimum.at(best, all_photo, d)
            exact = np.sort(best[best <= radius])[:10]
            got = sorted(h.distance for h in hits)[:10]
            if len(exact):
                ok = sum(1 for i, e in enumerate(exact) if i < len(got) and got[i] <= e)
                recall_exact.append(ok / len(exact))
            found = {h.photo_id for h in hits}
            want = [pid for pid, g in group_of.items() if g == gid]
            reachable = [pid for pid in want if best[photo_ids.index(pid)] <= radius]
            if reachable:
                recall_planted.append(sum(pid in found for pid in reachable) / len(reachable))
        step = _index_step(engine, options, settings, rng, k) if engine == "milvus" else []
        floats = (float_bench(options, settings, data, n, rng)
                  if engine == "milvus" and options.get("float", "1") != "0" else None)
        after = _server_stats(Path(options.get("server_dir", "var/services/milvus"))) if engine == "milvus" else {}
        size = sizes()
    finally:
        if not keep:
            cleanup()
    lat_arr = np.array(lat)
    return {
        "bench": "index", "dataset": str(data / PLANTED), "n_images": len(photo_ids), "seconds": time.perf_counter() - t0,
        "metrics": {
            "engine": engine, "n": len(photo_ids), "codes": len(all_code), "codes_per_distractor": k,
            "radius": radius, "queries": len(lat), "query_codes_mean": float(np.mean([len(set(q)) for _, q, _ in planted])),
            "query_ms_p50": float(np.percentile(lat_arr, 50)), "query_ms_p95": float(np.percentile(lat_arr, 95)),
            "query_ms_max": float(lat_arr.max()),
            "recall_vs_exact": float(np.mean(recall_exact)) if recall_exact else None,
            "recall_planted": float(np.mean(recall_planted)) if recall_planted else None,
            "insert_per_s": len(photo_ids) / timing["insert_s"], "insert_s": timing["insert_s"],
            "index_build_s": timing["index_build_s"], "fit_s": fit_s,
            "index_step_ms_p50": float(np.percentile(step, 50)) if step else None,
            "index_step_ms_p95": float(np.percentile(step, 95)) if step else None,
            "memory": {"bench_peak_rss_mb": peak_rss_mb(), **{f"before_{k_}": v for k_, v in before.items()},
                       **{f"after_{k_}": v for k_, v in after.items()}},
            "disk": size, "load_average": os.getloadavg(), "float": floats,
        },
    }


def _index_step(engine, options, settings, rng, k: int, n: int = 100) -> list[float]:
    """What a photo task adds to its transaction: ``replace_photo`` of one new photo's ``k`` codes into the
    loaded collection (ms each; the photos are removed again)."""
    from claimlens.core.milvus_index import MilvusCodeIndex

    ix = MilvusCodeIndex(options.get("uri", settings.milvus_uri), prefix=options.get("prefix", "bench"))
    out, added = [], []
    for i in range(n):
        pid = f"ffffffff-0000-4000-8000-{i:012x}"
        codes = {KIND: [int(c) for c in rng.integers(0, 2**63, k)]}
        t = time.perf_counter()
        ix.replace_photo(pid, "step", codes)
        out.append((time.perf_counter() - t) * 1000)
        added.append(pid)
    ix.remove_claim("step")
    return out


def _milvus(options, settings, photo_ids, claim_ids, all_photo, all_code):
    from claimlens.core.milvus_index import MilvusCodeIndex

    index_type = options.get("index", "BIN_FLAT")
    params = {"nlist": int(options.get("nlist", "1024"))} if index_type == "BIN_IVF_FLAT" else {}
    ix = MilvusCodeIndex(options.get("uri", settings.milvus_uri), prefix=options.get("prefix", "bench"),
                         timeout=600, index_type=index_type, index_params=params)
    nprobe = int(options.get("nprobe", "16"))

    def load() -> dict[str, float]:
        ix.drop()
        t = time.perf_counter()
        batch = []
        for r in range(len(all_code)):
            p = int(all_photo[r])
            batch.extend(ix.rows(KIND, photo_ids[p], claim_ids[p], [int(all_code[r])]))
            if len(batch) >= 20_000:
                ix.bulk_insert(KIND, batch)
                batch = []
        if batch:
            ix.bulk_insert(KIND, batch)
        name = ix.collection(KIND)
        ix._call(lambda c: c.flush(name, timeout=600))
        t1 = time.perf_counter()
        # wait for the index over the sealed segments, then (re)load
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            info = ix._call(lambda c: c.describe_index(name, index_name="code", timeout=60))
            if info.get("pending_index_rows", 0) == 0 and info.get("indexed_rows", 0) >= info.get("total_rows", 0):
                break
            time.sleep(1)
        ix._call(lambda c: c.load_collection(name, timeout=1800))
        return {"insert_s": t1 - t, "index_build_s": time.perf_counter() - t1}

    def search(codes, radius):
        if index_type == "BIN_IVF_FLAT":
            return _search_ivf(ix, codes, radius, nprobe)
        return ix.search(KIND, codes, radius, limit=50)

    def sizes() -> dict[str, Any]:
        return {"engine": "milvus (server data dir, see memory)"}

    return load, search, sizes, lambda: ix.drop()


def _search_ivf(ix, codes, radius, nprobe):
    """ix.search with IVF search params (the production call passes none: BIN_FLAT)."""
    from claimlens.core.hamming_index import HammingHit
    from claimlens.core.milvus_index import ROWS_PER_PHOTO, code_bytes

    name = ix.collection(KIND)
    res = ix._call(lambda c: c.search(name, data=[code_bytes(q, 64) for q in codes], anns_field="code",
                                      limit=50 * ROWS_PER_PHOTO, output_fields=["photo_id", "claim_id"],
                                      search_params={"metric_type": "HAMMING",
                                                     "params": {"nprobe": nprobe, "radius": radius + 1,
                                                                "range_filter": 0}},
                                      timeout=600))
    best: dict[str, HammingHit] = {}
    for hits in res:
        for h in hits:
            d = round(h["distance"])
            pid = h["entity"]["photo_id"]
            if d <= radius and (pid not in best or d < best[pid].distance):
                best[pid] = HammingHit(pid, h["entity"]["claim_id"], d)
    return sorted(best.values(), key=lambda t: (t.distance, t.photo_id))[:50]


def _postgres(options, settings, photo_ids, claim_ids, all_photo, all_code):
    from sqlalchemy import MetaData, create_engine, insert, text
    from sqlalchemy.orm import Session

    from claimlens.core.db import NAMING
    from claimlens.core.hamming_index import HammingIndex, make_table

    url = options.get("db", settings.effective_database_url)
    eng = create_engine(url)
    table = make_table(MetaData(naming_convention=NAMING), "hamming_codes_bench_engines")
    index = HammingIndex(table)

    def load() -> dict[str, float]:
        table.drop(eng, checkfirst=True)
        table.create(eng)
        t = time.perf_counter()
        batch: list[dict] = []
        with eng.begin() as conn:
            for r in range(len(all_code)):
                p = int(all_photo[r])
                batch.extend(index.rows(KIND, photo_ids[p], claim_ids[p], [int(all_code[r])]))
                if len(batch) >= 20_000:
                    conn.execute(insert(table), batch)
                    batch = []
            if batch:
                conn.execute(insert(table), batch)
        t1 = time.perf_counter()
        with eng.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text(f"VACUUM ANALYZE {table.name}"))
        return {"insert_s": t1 - t, "index_build_s": time.perf_counter() - t1}

    def search(codes, radius):
        with Session(eng) as s:
            return index.search(s, KIND, codes, radius, limit=50)

    def sizes() -> dict[str, Any]:
        with eng.connect() as conn:
            return {"table_bytes_total": int(conn.execute(text(
                f"SELECT pg_total_relation_size('{table.name}')")).scalar_one())}

    def cleanup() -> None:
        table.drop(eng, checkfirst=True)
        eng.dispose()

    return load, search, sizes, cleanup


def _embed_real(data: Path, groups_max: int) -> tuple[list[tuple[str, np.ndarray, list[tuple[str, np.ndarray]]]], np.ndarray]:
    """The real photos' index vectors (the check's ``index_vector``): per planted group (group, query vector,
    [(image, vector)] of the others), and the raw first coordinates of the ``FIT`` photos (to fit on)."""
    from claimlens.vision.decode import decode_photo
    from claimlens.vision.duplicates.fingerprint import VECTOR_DIMS, index_vector
    from claimlens.vision.embedding import CopyEmbedder

    emb = CopyEmbedder()

    def raw(path: Path) -> np.ndarray:
        return np.asarray(emb.embed(decode_photo(path.read_bytes()).rgb), np.float32).reshape(-1)

    groups: dict[str, list[str]] = {}
    with open(data / PLANTED / "groups.csv", newline="") as f:
        for row in csv.DictReader(f):
            groups.setdefault(row["group_id"], []).append(row["image"])
    planted = []
    for gid, images in sorted(groups.items())[:groups_max]:
        planted.append((gid, index_vector(raw(data / PLANTED / images[0])),
                        [(img, index_vector(raw(data / PLANTED / img))) for img in images[1:]]))
    fit = np.stack([raw(p)[:VECTOR_DIMS] for p in sorted((data / FIT).rglob("*.jpg"))])
    return planted, fit


def float_bench(options: dict[str, str], settings, data: Path, n: int, rng: np.random.Generator) -> dict[str, Any]:
    """The float collection (``--opt engine=milvus``; ``--opt float=0`` skips it): the photo's one embedding
    query (top 10) against ``n`` photos: the planted group mates, the 481 real ``FIT`` photos, and synthetic
    distractors drawn from a Gaussian fitted (mean, covariance) to the real photos' first 256 coordinates,
    then L2-normalised like the check's vectors. ``recall_vs_exact``: |returned top 10 ∩ exact top 10| / 10,
    exact = numpy brute force (inner product) over every stored vector.

    Options: float_index=IVF_FLAT|IVF_SQ8|HNSW, M=16, efConstruction=200, ef=64, nlist=1024, nprobe=256
    (ef and nprobe take comma lists: each setting is measured on the same collection)."""
    from claimlens.core.milvus_index import VECTOR_INDEX, MilvusCodeIndex
    from claimlens.vision.duplicates import VECTOR_KIND

    t0 = time.perf_counter()
    planted, fit = _embed_real(data, int(options.get("queries", "150")))
    embed_s = time.perf_counter() - t0
    ids, claims, vecs, group_of = [], [], [], {}
    for gid, _, others in planted:
        for img, v in others:
            pid = str(uuid.uuid5(uuid.NAMESPACE_URL, img))
            ids.append(pid)
            claims.append(f"planted-{gid}"[:64])
            vecs.append(v)
            group_of[pid] = gid
    for i, v in enumerate(fit):
        ids.append(f"00000000-0000-4000-9000-{i:012x}")
        claims.append("real-fit")
        vecs.append(v / np.linalg.norm(v))
    n_synth = max(0, n - len(ids))
    mean, cov = fit.mean(axis=0), np.cov(fit, rowvar=False)
    parts = [np.stack(vecs).astype(np.float32)]
    for i in range(0, n_synth, 100_000):
        s = rng.multivariate_normal(mean, cov, size=min(100_000, n_synth - i), method="eigh").astype(np.float32)
        parts.append(s / np.linalg.norm(s, axis=1, keepdims=True))
    allv = np.concatenate(parts)
    ids.extend(f"00000000-0000-4000-8000-{i:012x}" for i in range(n_synth))
    claims.extend(f"claim-{i // 20:010d}" for i in range(n_synth))

    kind = options.get("float_index", VECTOR_INDEX["index_type"])
    params = ({"M": int(options.get("M", "16")), "efConstruction": int(options.get("efConstruction", "200"))}
              if kind == "HNSW" else {"nlist": int(options.get("nlist", "1024"))})
    ix = MilvusCodeIndex(options.get("uri", settings.milvus_uri), prefix=options.get("prefix", "bench"),
                         timeout=1800, vector_index={"index_type": kind, "metric_type": "IP", "params": params})
    # a comma list (ef=32,64,256 or nprobe=8,32) measures each search setting on the same loaded collection
    sweep = ([{"ef": int(x)} for x in options.get("ef", "64").split(",")] if kind == "HNSW"
             else [{"nprobe": int(x)} for x in options.get("nprobe", "256").split(",")])
    name = ix.vector_collection(VECTOR_KIND)
    # reuse=1: query the collection a kept (keep=1) or interrupted run left, same n and seed (no insert)
    reuse = options.get("reuse", "0") == "1"
    if not reuse:
        ix.drop_vectors()
    try:
        t = time.perf_counter()
        if not reuse:
            ix.bulk_insert_vectors(VECTOR_KIND, ids, claims, allv)
            ix._call(lambda c: c.flush(name, timeout=1800))
        t1 = time.perf_counter()
        while True:  # every row indexed (rows a compaction re-indexes are still served meanwhile)
            info = ix._call(lambda c: c.describe_index(name, index_name="vec", timeout=60))
            if info.get("indexed_rows", 0) >= info.get("total_rows", 0):
                break
            time.sleep(1)
        if not reuse:
            ix._call(lambda c: c.release_collection(name, timeout=600))
        ix._call(lambda c: c.load_collection(name, timeout=1800))
        t2 = time.perf_counter()
        exact_of = {gid: {ids[j] for j in np.argpartition(-(allv @ q), 10)[:10]} for gid, q, _ in planted}
        mates_of = {gid: [pid for pid, g in group_of.items() if g == gid] for gid, _, _ in planted}
        exact_planted = float(np.mean([sum(m in exact_of[g] for m in ms) / len(ms) for g, ms in mates_of.items()]))
        settings_out = []
        for search_params in sweep:
            lat, rec, rec_planted = [], [], []
            for gid, q, _ in planted:
                ts = time.perf_counter()
                res = ix._call(lambda c, q=q, sp=search_params: c.search(
                    name, data=[q.tolist()], anns_field="vec", limit=10, output_fields=["claim_id"], timeout=600,
                    search_params={"metric_type": "IP", "params": sp}))
                lat.append((time.perf_counter() - ts) * 1000)
                got = [h["id"] for h in res[0]]
                rec.append(len(set(got) & exact_of[gid]) / 10)
                rec_planted.append(sum(m in got for m in mates_of[gid]) / len(mates_of[gid]))
            lat_arr = np.array(lat)
            settings_out.append({"search_params": search_params, "queries": len(lat),
                                 "query_ms_p50": float(np.percentile(lat_arr, 50)),
                                 "query_ms_p95": float(np.percentile(lat_arr, 95)),
                                 "query_ms_max": float(lat_arr.max()), "recall_vs_exact": float(np.mean(rec)),
                                 "recall_planted_top10": float(np.mean(rec_planted))})
        after = _server_stats(Path(options.get("server_dir", "var/services/milvus")))
    finally:
        if options.get("keep", "0") != "1":
            ix.drop_vectors()
    return {"index": kind, "params": params, "n": len(ids), "dims": int(allv.shape[1]),
            "searches": settings_out, "recall_planted_top10_exact": exact_planted,
            "insert_per_s": None if reuse else len(ids) / (t1 - t), "insert_s": None if reuse else t1 - t,
            "index_build_s": None if reuse else t2 - t1, "embed_real_s": embed_s, "server_after": after, "load_average": os.getloadavg()}
