"""``claimlens bench duplicates DIR [--suite] [--json OUT] [--opt KEY=VALUE ...]``: reused-photo retrieval.

Protocol (docs/duplicates.md):

* Every listed image is decoded with the project's decoder and fingerprinted exactly as the
  ``reused_photo`` check does (:func:`claimlens.vision.duplicates.fingerprint_photo`).
* Every image is a query against all the others (the gallery). As in production, candidates are the
  gallery photos whose codes lie within the shipped Hamming radius of a query code (at most
  ``SEARCH_LIMIT`` per code kind, best first: what ``index.search_codes`` returns; the check's constants), and each candidate is
  verified with its stored local features (deserialised from the artifact bytes, as the check loads them).
  A pair's score is the verification score; pairs never retrieved score 0 plus a tiny hash-distance tie
  break (so the AUC still ranks them).
* Second hop (as the check does): the best verified matches' own query codes are searched too and up to
  ``MAX_VERIFY_EXPANDED`` new candidates verified against the query, so a copy of a copy is found through
  their common relative (every pair score is still the direct verification of that pair).
  ``metrics.first_hop_only`` repeats the numbers without it.
* Positives are all ordered pairs of the same group, negatives all other pairs. ``recall_at_p99`` is the
  recall at the best global threshold whose precision is >= 0.99; ``auc`` is the ROC AUC over all pairs;
  ``per_class`` (suite only) is the recall at that same threshold over the (original, copy of the class)
  pairs, both directions. ``*_at_shipped`` repeat this at the check's own decision threshold.
* Peers, run in the same process on the same decoded images: plain ``imagehash`` pHash (and pHash taking the
  min over the mirror), and ``imagededup`` PHash/DHash/WHash/AHash when importable (its CNN needs
  MobileNetV3 weights it would download, so it is reported unavailable). Each peer's score is 64 minus the
  Hamming distance, so its ``recall_at_p99`` is at its best threshold.

Options (``--opt``): ``n_originals`` (150), ``seed`` (0), ``embedding`` (auto|off), ``peers`` (on|off),
``keep`` (folder to keep the generated suite in), ``limit`` (use only the first N listed images; for smoke
tests), ``fp12`` (on|off: time the fingerprint of a 12 MP JPEG made by upscaling the first image),
``phash_radius`` / ``emb_radius`` (override the check's Hamming radii, e.g. the r = 10 an index of 10^7
photos can serve).
"""

from __future__ import annotations

import csv
import io
import os
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# one BLAS thread: the bench reports single-core timings, and OpenBLAS threads on a busy 2-core machine make
# the small matrix products of descriptor matching 4x slower, not faster (set before numpy is imported)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

AUDITED_GROUP_MERGES: dict[str, tuple[tuple[str, str], ...]] = {
    # one source photo exported under two names (same cracks, sticker and roof highlight); found by the
    # bench's top-scoring negative pairs and confirmed by eye (docs/duplicates.md, "label audit")
    # damage_8648 / major_102: two crops of one stock photo at different zoom; the embedding brought the pair
    # to verification, whose homography aligns them pixel for pixel (41 inliers, dense agreement 0.93)
    "neardup_car_damage_roboflow": (("damage_487_jpg", "damage_488_jpg"), ("damage_8648_jpg", "major_102_jpg")),
}
"""Groups of a data set's ``groups.csv`` that are the same photo. The bench reports its metrics on the
merged groups and, under ``raw_labels``, on the groups as published."""


@dataclass
class _Item:
    group: str
    image: str
    transform: str


def read_groups(folder: Path) -> list[_Item]:
    """Rows of ``groups.csv`` (group_id,image[,transform]); a listed file that is missing is an error."""
    path = folder / "groups.csv"
    if not path.is_file():
        raise SystemExit(f"{path} not found: bench duplicates needs groups.csv (or --suite on a folder of photos)")
    items: list[_Item] = []
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            image = (row.get("image") or "").strip()
            if not image:
                continue
            if not (folder / image).is_file():
                raise SystemExit(f"groups.csv lists {image!r} but {folder / image} does not exist")
            items.append(_Item((row.get("group_id") or "").strip(), image, (row.get("transform") or "").strip()))
    if not items:
        raise SystemExit(f"{path} lists no images")
    return items


# ----------------------------------------------------------------------------------------------- metrics


def _pair_arrays(scores: np.ndarray, groups: list[str]) -> tuple[np.ndarray, np.ndarray]:
    g = np.asarray(groups, dtype=object)
    same = (g[:, None] == g[None, :]) & (g[:, None] != "")
    off = ~np.eye(len(groups), dtype=bool)
    return scores[off], same[off]


def recall_at_precision(scores: np.ndarray, labels: np.ndarray, min_precision: float = 0.99) -> tuple[float, float]:
    """Best recall over global thresholds whose precision is >= ``min_precision``; returns (recall, threshold).

    Ties are never split: a threshold admits every pair whose score is >= it.
    """
    n_pos = int(labels.sum())
    if n_pos == 0:
        return float("nan"), float("nan")
    order = np.argsort(-scores, kind="stable")
    s = scores[order]
    lab = labels[order]
    tp = np.cumsum(lab)
    fp = np.cumsum(~lab)
    last = np.flatnonzero(np.r_[s[1:] != s[:-1], True])  # last index of each tie group
    prec = tp[last] / np.maximum(1, tp[last] + fp[last])
    rec = tp[last] / n_pos
    ok = prec >= min_precision
    if not ok.any():
        return 0.0, float("inf")
    k = int(np.argmax(np.where(ok, rec, -1.0)))
    return float(rec[k]), float(s[last[k]])


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC (Mann-Whitney U with average ranks for ties)."""
    n_pos = int(labels.sum())
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inv, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    avg_rank = ends - (counts - 1) / 2.0  # 1-based average rank of each unique value
    ranks = avg_rank[inv]
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _metrics(scores: np.ndarray, items: list[_Item], *, shipped: float | None = None) -> dict[str, Any]:
    groups = [it.group for it in items]
    s, lab = _pair_arrays(scores, groups)
    rec, thr = recall_at_precision(s, lab)
    out: dict[str, Any] = {"recall_at_p99": round(rec, 4), "threshold_at_p99": thr, "auc": round(roc_auc(s, lab), 5),
                           "n_positive_pairs": int(lab.sum()), "n_negative_pairs": int((~lab).sum())}
    if shipped is not None:
        pred = s >= shipped
        tp = int((pred & lab).sum())
        out["recall_at_shipped"] = round(tp / max(1, int(lab.sum())), 4)
        out["precision_at_shipped"] = round(tp / max(1, int(pred.sum())), 4)
        out["false_pairs_at_shipped"] = int((pred & ~lab).sum())
    classes = [t for t in dict.fromkeys(it.transform for it in items)
               if t and t not in ("original", "distractor", "known_duplicate")]
    if classes and any(it.transform == "original" for it in items):
        orig = {it.group: i for i, it in enumerate(items) if it.transform == "original"}
        per: dict[str, float] = {}
        per_shipped: dict[str, float] = {}
        for cls in classes:
            vals = []
            for j, it in enumerate(items):
                if it.transform == cls and it.group in orig:
                    i = orig[it.group]
                    vals += [scores[i, j], scores[j, i]]
            if vals:
                v = np.asarray(vals)
                per[cls] = round(float((v >= thr).mean()), 4)
                if shipped is not None:
                    per_shipped[cls] = round(float((v >= shipped).mean()), 4)
        out["per_class"] = per
        if shipped is not None:
            out["per_class_at_shipped"] = per_shipped
    return out


def _per_class_fraction(mask: np.ndarray, items: list[_Item]) -> dict[str, float]:
    """Fraction of (original, copy of class) pairs, both directions, where ``mask`` is True."""
    orig = {it.group: i for i, it in enumerate(items) if it.transform == "original"}
    out: dict[str, list[bool]] = {}
    for j, it in enumerate(items):
        if it.group in orig and it.transform not in ("original", "distractor", "known_duplicate", ""):
            i = orig[it.group]
            out.setdefault(it.transform, []).extend([bool(mask[i, j]), bool(mask[j, i])])
    return {k: round(float(np.mean(v)), 4) for k, v in out.items()}


def _top_negatives(scores: np.ndarray, items: list[_Item], k: int) -> list[dict[str, Any]]:
    """The k highest-scoring pairs of different groups (for label audits and failure analysis)."""
    g = np.asarray([it.group for it in items], dtype=object)
    neg = ~((g[:, None] == g[None, :]) & (g[:, None] != ""))
    np.fill_diagonal(neg, False)
    flat = np.where(neg, scores, -1.0).ravel()
    out = []
    for idx in np.argsort(-flat)[:k]:
        i, j = divmod(int(idx), len(items))
        if flat[idx] <= 0.01:
            break
        out.append({"query": items[i].image, "gallery": items[j].image, "score": round(float(flat[idx]), 4)})
    return out


def _p95(values: list[float]) -> float:
    return float(np.percentile(np.asarray(values), 95)) if values else float("nan")


# ---------------------------------------------------------------------------------------------- ours


def _pad(lists: list[list[int]]) -> np.ndarray:
    width = max(1, max((len(x) for x in lists), default=1))
    out = np.zeros((len(lists), width), dtype=np.uint64)
    valid = np.zeros((len(lists), width), dtype=bool)
    for i, codes in enumerate(lists):
        if codes:
            out[i, : len(codes)] = np.asarray(codes, dtype=np.uint64)
            valid[i, : len(codes)] = True
    return out, valid


def _min_dist(query: list[int], stored: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Min Hamming distance from any of ``query`` to each row of ``stored`` (65 where a row has no code)."""
    if not query:
        return np.full(len(stored), 65, np.int16)
    q = np.asarray(query, dtype=np.uint64)
    d = np.bitwise_count(stored[:, :, None] ^ q[None, None, :]).astype(np.int16)
    d = np.where(valid[:, :, None], d, 65)
    return d.min(axis=(1, 2))


def _run_ours(photos: list[Any], items: list[_Item], *, use_embedding: str,
              radius: dict[str, int] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    import cv2

    from claimlens.checks.reused_photo import (
        EXPAND_MATCHES,
        MAX_VERIFY,
        MAX_VERIFY_EXPANDED,
        RADIUS,
        SEARCH_LIMIT,
        merge_candidates,
    )
    from claimlens.vision.duplicates import (
        LocalFeatures,
        fingerprint_photo,
        load_embedder,
        root_pair,
        verify,
    )
    from claimlens.vision.duplicates.verify import MATCH_SCORE

    cv2.setNumThreads(1)
    radii = {**RADIUS, **(radius or {})}  # the check's radii, overridable for the bench
    embedder = load_embedder() if use_embedding != "off" else None
    n = len(photos)
    fps, blobs, fp_ms = [], [], []
    for photo in photos:
        t = time.perf_counter()
        fp = fingerprint_photo(photo, embedder=embedder)
        blob = fp.features.to_bytes()
        fp_ms.append((time.perf_counter() - t) * 1000)
        fps.append(fp)
        blobs.append(blob)
    kinds = sorted({k for fp in fps for k in fp.stored_codes()})
    stored = {k: _pad([fp.stored_codes().get(k, []) for fp in fps]) for k in kinds}
    query_codes = [fp.query_codes() for fp in fps]

    def search(codes: dict[str, list[int]], exclude: int) -> tuple[list[int], np.ndarray]:
        """What ``index.search_codes`` returns per kind (within radius, best SEARCH_LIMIT), merged the way the
        check merges kinds (:func:`claimlens.checks.reused_photo.merge_candidates`), and the smallest
        distance to every gallery photo (for the tie-break of never-retrieved pairs)."""
        per_kind: dict[str, list[tuple[int, int]]] = {}
        dmin = np.full(n, 64, np.int16)
        for kind in kinds:
            codes_k, valid = stored[kind]
            d = _min_dist(codes.get(kind, []), codes_k, valid)
            d[exclude] = 99
            dmin = np.minimum(dmin, d)
            hits = np.flatnonzero(d <= radii[kind])
            hits = hits[np.argsort(d[hits], kind="stable")][:SEARCH_LIMIT]
            per_kind[kind] = [(int(j), int(d[j])) for j in hits]
        return merge_candidates(per_kind, max_verify=MAX_VERIFY, radius=radii), dmin

    first = np.zeros((n, n), np.float64)  # first hop only
    scores = np.zeros((n, n), np.float64)  # with the second hop (what the check ships)
    retrieved = np.zeros((n, n), bool)
    types: dict[str, dict[str, int]] = {}  # copy class -> match type -> count (copy as query, original found)
    query_ms, n_cands = [], []
    for i, fp in enumerate(fps):
        t = time.perf_counter()
        ordered, dmin = search(query_codes[i], i)
        qroot = root_pair(fp.features)
        verified: dict[int, float] = {}
        for j in ordered:
            r = verify(fp.features, LocalFeatures.from_bytes(blobs[j]), query_root=qroot)
            verified[j] = r.score
            if r.match_type and items[j].transform == "original" and items[i].group == items[j].group:
                types.setdefault(items[i].transform, {}).setdefault(r.match_type, 0)
                types[items[i].transform][r.match_type] += 1
        for j, sc in verified.items():
            first[i, j] = sc
        if EXPAND_MATCHES:  # as the check: per verified match (best first), its own candidates not yet seen
            matched = sorted((j for j, sc in verified.items() if sc >= MATCH_SCORE), key=lambda j: -verified[j])
            for s_ in matched[:EXPAND_MATCHES]:
                more = [j for j in search(query_codes[s_], s_)[0] if j != i and j not in verified]
                for j in more[:MAX_VERIFY_EXPANDED]:
                    verified[j] = verify(fp.features, LocalFeatures.from_bytes(blobs[j]), query_root=qroot).score
        for j, sc in verified.items():
            scores[i, j] = sc
            retrieved[i, j] = True
        query_ms.append((time.perf_counter() - t) * 1000)
        n_cands.append(len(verified))
        tie = 1e-3 * (1.0 - np.clip(dmin, 0, 64) / 64.0)
        tie[i] = 0.0
        scores[i] += tie
        first[i] += tie
    first_hop = _metrics(first, items, shipped=MATCH_SCORE)
    m = _metrics(scores, items, shipped=MATCH_SCORE)
    m["top_negative_pairs"] = _top_negatives(scores, items, 10)
    if types:
        m["match_types_per_class"] = types
    # diagnostics: how many positive pairs the hash stage handed to verification at all
    flat, lab = _pair_arrays(retrieved, [it.group for it in items])
    m["retrieval_recall"] = round(float(flat[lab].mean()), 4)
    per_ret = _per_class_fraction(retrieved, items)
    if per_ret:
        m["per_class_retrieval"] = per_ret
    m["first_hop_only"] = {k: first_hop[k] for k in ("recall_at_p99", "auc", "recall_at_shipped",
                                                       "precision_at_shipped", "per_class") if k in first_hop}
    m.update({
        "fingerprint_ms_per_image": round(statistics.fmean(fp_ms), 2),
        "fingerprint_ms_p95": round(_p95(fp_ms), 2),
        "query_ms_p95": round(_p95(query_ms), 2),
        "query_ms_mean": round(statistics.fmean(query_ms), 2),
        "candidates_verified_mean": round(statistics.fmean(n_cands), 1),
        "artifact_bytes_mean": round(statistics.fmean(len(b) for b in blobs)),
        "code_kinds": {k: {"radius": radii[k], "stored_per_photo_mean": round(float(stored[k][1].sum(1).mean()), 2),
                           "query_per_photo_mean": round(statistics.fmean(len(fp.query_codes().get(k, [])) for fp in fps), 2)}
                       for k in kinds},
        "embedding": embedder is not None,
        "shipped_threshold": MATCH_SCORE,
    })
    return m, {"scores": scores, "fps": fps}


# --------------------------------------------------------------------------------------------- peers


def _hash_peer(name: str, photos: list[Any], items: list[_Item], encode, *, mirror: bool = False) -> dict[str, Any]:
    from PIL import Image

    stored, query, ms = [], [], []
    for photo in photos:
        t = time.perf_counter()
        img = Image.fromarray(photo.rgb)
        h = encode(img)
        codes = [h]
        if mirror:
            codes.append(encode(img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))
        ms.append((time.perf_counter() - t) * 1000)
        stored.append([h])
        query.append(codes)
    S, V = _pad(stored)
    n = len(photos)
    scores = np.zeros((n, n))
    qms = []
    for i in range(n):
        t = time.perf_counter()
        d = _min_dist(query[i], S, V)
        qms.append((time.perf_counter() - t) * 1000)
        scores[i] = 64 - d
    m = _metrics(scores, items)
    m.update({"fingerprint_ms_per_image": round(statistics.fmean(ms), 2), "query_ms_p95": round(_p95(qms), 3)})
    m["scores"] = scores  # removed by run() after the raw-label metrics
    m["best_max_distance"] = None if not np.isfinite(m["threshold_at_p99"]) else int(64 - m["threshold_at_p99"])
    return m


def _imagehash_encoder():
    import imagehash

    def enc(img) -> int:
        return int(str(imagehash.phash(img)), 16)

    return enc


def _imagededup_encoder(method: str):
    from imagededup import methods

    hasher = getattr(methods, method)(verbose=False)

    def enc(img) -> int:
        return int(hasher.encode_image(image_array=np.asarray(img)), 16)

    return enc


def _run_peers(photos: list[Any], items: list[_Item]) -> dict[str, Any]:
    peers: dict[str, Any] = {}
    try:
        enc = _imagehash_encoder()
        peers["imagehash-phash"] = _hash_peer("imagehash-phash", photos, items, enc)
        peers["imagehash-phash-mirror"] = _hash_peer("imagehash-phash-mirror", photos, items, enc, mirror=True)
    except ImportError as exc:
        peers["imagehash-phash"] = {"unavailable": f"imagehash not importable: {exc}"}
    try:
        import imagededup  # noqa: F401

        for method in ("PHash", "DHash", "WHash", "AHash"):
            peers[f"imagededup-{method.lower()}"] = _hash_peer(method, photos, items, _imagededup_encoder(method))
        peers["imagededup-cnn"] = {"unavailable": "imagededup CNN loads torchvision MobileNetV3 ImageNet weights by "
                                                  "download at first use; no network here, and the weights are "
                                                  "not installable from PyPI"}
    except ImportError as exc:
        msg = (f"imagededup not importable in this environment ({exc}); run the bench under .venv-train "
               "(scripts/train-env.sh) for these peers")
        for method in ("phash", "dhash", "whash", "ahash", "cnn"):
            peers[f"imagededup-{method}"] = {"unavailable": msg}
    return peers


# ------------------------------------------------------------------------------------------- 12 MP


def _fingerprint_12mp(first_image: Path, embedder_mode: str) -> dict[str, Any]:
    """Upscale one photo to 4000 x 3000, encode JPEG q92, decode it with the project decoder and time the
    fingerprint (median of 5, each on a cold copy of the decoded photo, one OpenCV thread; wall time and
    process CPU time, which a busy shared machine disturbs less); also on the 1000 x 750 array a
    reduced-scale (1/4) JPEG decode gives."""
    import cv2
    from PIL import Image

    from claimlens.vision.decode import DecodedPhoto, decode_photo
    from claimlens.vision.duplicates import fingerprint_photo, load_embedder

    cv2.setNumThreads(1)
    with Image.open(first_image) as im:
        big = im.convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    big.save(buf, format="JPEG", quality=92)
    data = buf.getvalue()
    t = time.perf_counter()
    photo = decode_photo(data)
    decode_ms = (time.perf_counter() - t) * 1000
    embedder = load_embedder() if embedder_mode != "off" else None

    def timed(rgb: np.ndarray) -> tuple[float, float, float]:
        times, gray_ms, cpu_ms = [], [], []
        for _ in range(5):
            fresh = DecodedPhoto(rgb=rgb, format=photo.format, metadata=photo.metadata)
            t, c = time.perf_counter(), time.process_time()
            fresh.gray(640)
            g = (time.perf_counter() - t) * 1000
            fingerprint_photo(fresh, embedder=embedder).features.to_bytes()
            times.append((time.perf_counter() - t) * 1000)
            cpu_ms.append((time.process_time() - c) * 1000)
            gray_ms.append(g)
        return statistics.median(times), statistics.median(gray_ms), statistics.median(cpu_ms)

    full_ms, full_gray, full_cpu = timed(photo.rgb)
    # what a reduced-scale JPEG decode (libjpeg DCT scaling to 1/4: 1000 x 750) hands the checks instead
    t = time.perf_counter()
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_REDUCED_COLOR_4)
    reduced_decode_ms = (time.perf_counter() - t) * 1000
    red_ms, red_gray, red_cpu = timed(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return {"fingerprint_ms_12mp": round(full_ms, 1), "gray640_ms_12mp": round(full_gray, 1),
            "fingerprint_cpu_ms_12mp": round(full_cpu, 1),
            "fingerprint_cpu_ms_12mp_reduced_decode": round(red_cpu, 1),
            "decode_ms_12mp": round(decode_ms, 1),
            "fingerprint_ms_12mp_reduced_decode": round(red_ms, 1),
            "gray640_ms_12mp_reduced_decode": round(red_gray, 1),
            "reduced_decode_ms_12mp": round(reduced_decode_ms, 1),
            "jpeg_bytes_12mp": len(data), "embedding": embedder is not None,
            "load_average": [round(x, 2) for x in os.getloadavg()]}


# ----------------------------------------------------------------------------------------------- run


def run(dataset_dir: Path | None, *, suite: bool, options: dict[str, str]) -> dict[str, Any]:
    """Run the bench (see the module docstring); returns the GUIDE section 5 JSON object."""
    from claimlens.vision.decode import decode_photo

    if dataset_dir is None:
        raise SystemExit("bench duplicates needs a folder (with groups.csv, or of photos with --suite)")
    t_start = time.perf_counter()
    opts = {"n_originals": "150", "seed": "0", "embedding": "auto", "peers": "on", "keep": "", "limit": "0",
            "fp12": "on", "phash_radius": "", "emb_radius": ""}
    unknown = set(options) - set(opts)
    if unknown:
        raise SystemExit(f"unknown --opt keys {sorted(unknown)}; known: {sorted(opts)}")
    opts.update(options)
    dataset_dir = Path(dataset_dir)
    with tempfile.TemporaryDirectory(prefix="claimlens-dupsuite-") as tmp:
        folder = dataset_dir
        suite_info: dict[str, Any] | None = None
        if suite:
            from claimlens.datasets.transforms import TRANSFORM_CLASSES, generate_suite

            folder = Path(opts["keep"]) if opts["keep"] else Path(tmp)
            t = time.perf_counter()
            entries = generate_suite(dataset_dir, folder, n_originals=int(opts["n_originals"]), seed=int(opts["seed"]))
            suite_info = {"source": str(dataset_dir), "n_originals": sum(e.transform == "original" for e in entries),
                          "classes": list(TRANSFORM_CLASSES), "seed": int(opts["seed"]),
                          "generate_seconds": round(time.perf_counter() - t, 1),
                          "n_distractors": sum(e.transform == "distractor" for e in entries),
                          "n_known_duplicates": sum(e.transform == "known_duplicate" for e in entries)}
        items = read_groups(folder)
        if int(opts["limit"]) > 0:
            items = items[: int(opts["limit"])]
        raw_items = items
        merges = AUDITED_GROUP_MERGES.get(dataset_dir.resolve().name, ()) if not suite else ()
        if merges:
            rename = {b: a for a, b in merges}
            items = [_Item(rename.get(it.group, it.group), it.image, it.transform) for it in items]
        photos, dec_ms = [], []
        for it in items:
            data = (folder / it.image).read_bytes()
            t = time.perf_counter()
            photos.append(decode_photo(data))
            dec_ms.append((time.perf_counter() - t) * 1000)
        radius = {k: int(opts[o]) for k, o in (("phash64", "phash_radius"), ("emb64", "emb_radius")) if opts[o]}
        metrics, extra = _run_ours(photos, items, use_embedding=opts["embedding"], radius=radius)
        if merges:
            raw = _metrics(extra["scores"], raw_items)
            metrics["raw_labels"] = {"recall_at_p99": raw["recall_at_p99"], "auc": raw["auc"],
                                     "merged_groups": [list(m) for m in merges]}
        metrics["decode_ms_per_image"] = round(statistics.fmean(dec_ms), 2)
        if opts["fp12"] == "on":
            metrics.update(_fingerprint_12mp(folder / items[0].image, opts["embedding"]))
        peers = _run_peers(photos, items) if opts["peers"] == "on" else {}
        if merges:
            for pm in peers.values():
                if "scores" in pm:
                    pm["raw_labels"] = {k: v for k, v in _metrics(pm.pop("scores"), raw_items).items()
                                        if k in ("recall_at_p99", "auc")}
        for pm in peers.values():
            pm.pop("scores", None)
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result: dict[str, Any] = {
        "bench": "duplicates",
        "dataset": str(dataset_dir),
        "suite": suite_info,
        "n_images": len(items),
        "n_groups": len({it.group for it in items if it.group}),
        "seconds": round(time.perf_counter() - t_start, 1),
        "peak_rss_mb": round(rss_kb / 1024.0, 1),
        "python": sys.executable,
        "metrics": metrics,
        "peers": peers,
    }
    return result
