"""``claimlens bench parts [DIR] [--suite] [--opt k=v]``: same-part verification and part-age contrast.

DIR holds ``pairs.csv`` (``image_a,image_b,same_part`` 1|0 ``[,ax1,ay1,ax2,ay2,bx1,by1,bx2,by2]``; boxes of
the part in each image, the whole image when empty) and/or ``labels.csv`` (``image,label[,x1,y1,x2,y2]``
with label ``fresh`` | ``old``). ``--suite`` generates the project's parts suite
(:func:`claimlens.datasets.damage_suite.generate_parts_suite`) from DIR (default
../shared/data/car_damage_roboflow) into a temporary folder first.

Metrics:

* same part: ``auc`` of ``same_score`` over the pairs; ``rank1``: every ``image_a`` of a positive pair is a
  query against a gallery of all distinct ``image_b`` part crops of the file; the query counts when its true
  mate scores highest (ties broken against it); ``decided_fraction``; ``accuracy`` of the verdicts given
  (same at ``same_score`` >= SAME_THRESHOLD, different under DIFFERENT_MAX, none in between), with
  ``false_flag_rate`` (decided same-part pairs reported different), ``missed_swap_rate`` (decided
  different-part pairs reported same) and ``inconclusive_rate_same`` / ``_swapped`` (no verdict).
* part age (when labels.csv exists): ``age_auc``, ``age_flag_rate_fresh`` / ``_old`` at the shipped threshold.
* ``ms_per_image``: part features + part-age analysis per image (decode excluded); ``ms_per_pair``: one
  verification; ``peak_rss_mb``.

Options: ``split=test|train|all`` (suite, default test), ``n=120``, ``seed=0``, ``hard=1`` (suite: view B is a
reinspection-like photo, see :func:`claimlens.datasets.damage_suite.hard_view`, plus a nearest-colour
negative per query; adds ``auc_by_negative`` and ``rank1_by`` view-B condition), ``keep=DIR``, ``limit=N``
(pairs), ``pairs=0`` (skip same-part), ``real=1`` (DIR is a YOLO-labelled folder of real damage photos such
as car_damage_roboflow: part age on every labelled box, the others excluded from the ring; ``flag_rate`` =
``age_flag_rate`` = photos with a flagged box, the false-alarm rate; ``split=train|test|all``, default all),
``fit_age=1`` (fit the part-age logistic model on this set; ``training/fit_part_age.py`` uses it).
"""

from __future__ import annotations

import csv
import functools
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from claimlens.bench.common import peak_rss_mb, suite_from_photos
from claimlens.bench.recapture import auc, rnd, tpr_at_fpr


def _box(r: dict[str, str], prefix: str = "") -> tuple[int, int, int, int] | None:
    try:
        return tuple(int(float(r[prefix + k])) for k in ("x1", "y1", "x2", "y2"))  # type: ignore[return-value]
    except (KeyError, TypeError, ValueError):
        return None


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return [{k: (v or "").strip() for k, v in r.items() if k} for r in csv.DictReader(f)]


def _load(folder: Path, rel: str) -> np.ndarray:
    p = folder / rel
    if not p.is_file():
        raise SystemExit(f"missing file {rel}")
    return np.asarray(Image.open(p).convert("RGB"))


def age_features(folder: Path, rows: list[dict[str, str]]) -> tuple[list[dict[str, float] | None], list[float]]:
    from claimlens.vision.damage import part_age as PA

    feats, times = [], []
    for r in rows:
        rgb = _load(folder, r["image"])
        box = _box(r) or (0, 0, rgb.shape[1], rgb.shape[0])
        t0 = time.perf_counter()
        got = PA.compute_features(rgb, box)
        times.append(time.perf_counter() - t0)
        feats.append(None if got is None else got[0])
    return feats, times


def real_age_features(src: Path, split: str = "all", limit: int | None = None
                      ) -> tuple[list[str], list[dict[str, float] | None], list[float]]:
    """Part-age features of every labelled box (at most 4 per photo, largest first, the other boxes
    excluded from the ring, as the check does) of a YOLO-labelled folder of real damage photos.
    Returns (photo name per box, features or None when not measurable, seconds per box)."""
    from claimlens.datasets import damage_suite as ds
    from claimlens.vision.damage import part_age as PA

    names, feats, times = [], [], []
    for name, path in ds.list_sources(src, split)[:limit]:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        boxes = sorted(ds.read_yolo_boxes(ds.label_path_of(path), rgb.shape[1], rgb.shape[0]),
                       key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))[:4]
        for b in boxes:
            t0 = time.perf_counter()
            got = PA.compute_features(rgb, b[:4], [o[:4] for o in boxes if o is not b])
            times.append(time.perf_counter() - t0)
            names.append(name)
            feats.append(None if got is None else got[0])
    return names, feats, times


def run_real_age(dataset_dir: Path, options: dict[str, str]) -> dict[str, Any]:
    """``real=1``: the part-age false-alarm rate on real damage photos (all taken as same-age parts)."""
    from claimlens.vision.damage import part_age as PA

    t_start = time.perf_counter()
    if (dataset_dir / "splits.csv").is_file():
        return run_real_age_taxonomy(dataset_dir, options)
    split = options.get("split", "all")
    names, feats, times = real_age_features(dataset_dir, split, int(options["limit"]) if options.get("limit") else None)
    per_photo: dict[str, bool] = {}
    flags = []
    for n, f in zip(names, feats):
        fl = f is not None and PA.score_features(f)[0] >= PA.THRESHOLD
        flags.append(fl)
        per_photo[n] = per_photo.get(n, False) or fl
    metrics = {"auc": None, "rank1": None, "age_flag_rate": rnd(float(np.mean(list(per_photo.values())))) if per_photo else None,
               "age_flag_rate_boxes": rnd(float(np.mean(flags))) if flags else None,
               "measurable_fraction": rnd(float(np.mean([f is not None for f in feats]))) if feats else None,
               "n_boxes": len(feats), "age_threshold": PA.THRESHOLD,
               "ms_per_image": round(1000 * statistics.mean(times), 2) if times else None, "peak_rss_mb": peak_rss_mb()}
    metrics["flag_rate"] = metrics["age_flag_rate"]
    return {"bench": "parts", "dataset": str(dataset_dir), "n_images": len(per_photo),
            "seconds": round(time.perf_counter() - t_start, 1), "metrics": metrics, "peers": {},
            "suite": {"real_damage_boxes": True, "split": split}}


def run_real_age_taxonomy(folder: Path, options: dict[str, str]) -> dict[str, Any]:
    """``real=1`` on a car_damage_train-style folder (#14): part age on every labelled painted part box
    (:data:`claimlens.datasets.damage_suite.PAINTED_PART_CLASSES`) of the parts-group photos of ``split=val``
    (undamaged cars: all same-age parts), the photo's other boxes excluded from the ring; rates per dev / test
    half (by photo group); ``flag_rate`` is the test half's share of photos with a flagged box. Part age is
    reported LOW only, so ``flag_rate_medium`` is 0 by construction."""
    from claimlens.datasets import damage_suite as ds
    from claimlens.vision.damage import part_age as PA

    t_start = time.perf_counter()
    rows = ds.taxonomy_rows(folder, ds.PAINTED_PART_CLASSES, options.get("split", "val"), "parts")
    scored, times = [], []
    cache: dict[str, np.ndarray] = {}
    for r in rows:
        if r["image"] not in cache:
            cache.clear()
            cache[r["image"]] = _load(folder, r["image"])
        t0 = time.perf_counter()
        res = PA.analyse_part(cache[r["image"]], (r["x1"], r["y1"], r["x2"], r["y2"]), exclude=r["others"])
        times.append(time.perf_counter() - t0)
        scored.append((r, res))

    def rates(items: list) -> dict[str, Any]:
        photos: dict[str, float] = {}
        for r, res in items:
            photos[r["image"]] = max(photos.get(r["image"], 0.0), res.score if res.measurable else 0.0)
        best = np.array(list(photos.values()))
        return {"photos": len(photos), "boxes": len(items),
                "flag_rate": rnd(float((best >= PA.THRESHOLD).mean())) if len(best) else None,
                "flag_rate_boxes": _rate([res.flagged for _, res in items]),
                "warm_paint_boxes": sum(res.warm_paint for _, res in items),
                "photo_max_score_top5": [rnd(float(v)) for v in np.sort(best)[-5:][::-1]]}

    by_half = {h: rates([x for x in scored if x[0]["half"] == h]) for h in ("dev", "test")}
    metrics = {"auc": None, "rank1": None, "flag_rate": by_half["test"]["flag_rate"], "flag_rate_medium": 0.0,
               "age_flag_rate": by_half["test"]["flag_rate"], "by_half": by_half,
               "by_part": {k: rates([x for x in scored if x[0]["kind"] == k]) for k in ds.PAINTED_PART_CLASSES},
               "age_threshold": PA.THRESHOLD,
               "ms_per_image": round(1000 * statistics.mean(times), 2) if times else None, "peak_rss_mb": peak_rss_mb()}
    result = {"bench": "parts", "dataset": str(folder), "n_images": len({r["image"] for r, _ in scored}),
              "seconds": round(time.perf_counter() - t_start, 1), "metrics": metrics, "peers": {},
              "suite": {"real_damage_boxes": True, "taxonomy": True, "split": options.get("split", "val")}}
    if options.get("dump"):
        result["per_box"] = [{"image": r["image"], "half": r["half"], "kind": r["kind"], "score": rnd(res.score),
                              "measurable": res.measurable, "warm_paint": res.warm_paint} for r, res in scored]
    return result


def _rate(flags: list[bool]) -> float | None:
    return rnd(float(np.mean(flags))) if flags else None


def _rank1_by(positives: list[dict[str, str]], hit_of: dict[str, int]) -> dict[str, Any]:
    """Rank-1 of the hard suite's queries split by view B's condition: tilt (25-32 / 32-40 degrees), scale
    (< 0.8, 0.8-1.25, > 1.25), occluder, another scene reflected or not, blur kind, JPEG quality (< 70 /
    >= 70)."""
    def num(r: dict[str, str], k: str) -> float:
        try:
            return float(r.get(k) or "nan")
        except ValueError:
            return float("nan")

    keys = {
        "tilt": lambda r: "25-32" if num(r, "tilt") < 32 else "32-40",
        "scale": lambda r: "<0.8" if num(r, "scale") < 0.8 else ("0.8-1.25" if num(r, "scale") <= 1.25 else ">1.25"),
        "occluder": lambda r: r.get("occluder") or "none",
        "reflection": lambda r: "yes" if num(r, "reflection") > 0 else "no",
        "blur": lambda r: "".join(c for c in (r.get("blur") or "none") if c.isalpha()),
        "jpeg": lambda r: "<70" if num(r, "jpeg") < 70 else ">=70",
    }
    out: dict[str, Any] = {}
    for name, key in keys.items():
        groups: dict[str, list[int]] = {}
        for r in positives:
            if r["image_a"] in hit_of:
                groups.setdefault(key(r), []).append(hit_of[r["image_a"]])
        out[name] = {g: {"rank1": rnd(float(np.mean(v))), "n": len(v)} for g, v in sorted(groups.items())}
    return out


def group_half(group_id: str) -> str:
    """``dev`` or ``test`` for a vehicle group: sha1(group_id)[:8] / 2**32 < 0.5 is dev."""
    import hashlib

    return "dev" if int(hashlib.sha1(group_id.encode("utf-8")).hexdigest()[:8], 16) / 2**32 < 0.5 else "test"


def _group_regions(folder: Path, images: list[str], source: str, max_regions: int
                   ) -> dict[str, list[tuple[str, Any, np.ndarray]]]:
    """Per image: (part name, part features, 256-px crop) of at most ``max_regions`` regions, largest first,
    from the damage detector (``source=detector``, as the check finds them when the adjuster gives none) or
    from the folder's YOLO labels (``source=labels``: the class name is the "part")."""
    from claimlens.bench.damage import read_names
    from claimlens.checks.damage_forensics import CROP_SIDE, norm_part
    from claimlens.datasets import damage_suite as ds
    from claimlens.vision.damage import same_part as SP

    names = read_names(folder) if source == "labels" else []
    out = {}
    for rel in images:
        rgb = _load(folder, rel)
        if source == "detector":
            from claimlens.vision.damage.detector import detect_damage

            boxes = [(norm_part(b.part), b.box) for b in detect_damage(rgb)]
        else:
            boxes = [(names[b[4]] if b[4] < len(names) else f"class{b[4]}", b[:4])
                     for b in ds.read_yolo_boxes(ds.label_path_of(folder / rel), rgb.shape[1], rgb.shape[0])]
        boxes = sorted(boxes, key=lambda pb: -(pb[1][2] - pb[1][0]) * (pb[1][3] - pb[1][1]))[:max_regions]
        out[rel] = [(p, SP.part_features(rgb, b), SP.part_crop(rgb, b, CROP_SIDE)) for p, b in boxes if p]
    return out


def _best_verdict(ra: list, rb: list, part: str) -> tuple[str, float, float | None]:
    """As the check judges a reinspected part: the best-scoring comparison over the regions of ``part`` in
    both photos, undecided when any comparison is; returns (verdict, best score, colour difference)."""
    from claimlens.vision.damage import same_part as SP

    cands = [(SP.compare(fa, fb), ca, cb) for pa, fa, ca in ra if pa == part for pb, fb, cb in rb if pb == part]
    if not all(c[0].decided for c in cands):
        return "undecided", max(c[0].same_score for c in cands), None
    res, ca, cb = max(cands, key=lambda c: c[0].same_score)
    verdict, de = SP.swap_verdict(res, ca, cb)
    return verdict, res.same_score, de


def run_groups(folder: Path, options: dict[str, str]) -> dict[str, Any]:
    """``groups.csv`` (``group_id,image``; same group = one physical vehicle): the same-part verifier on real
    views of one car. Every pair of photos of a group that both hold a region of one part name is compared
    as the check compares a reinspected part with the survey's (best over the regions of that name): a
    ``swapped`` verdict there is a false accusation (``false_swap_rate``). Across groups (different cars,
    same part name; each photo against the photos of the next ``cross=5`` groups in file order) a ``same``
    verdict is a false match (``false_same_rate``). Options: ``regions=detector|labels``, ``max_regions=4``,
    ``cross=5``, ``dump=1``, ``swap_min_colour_de=X`` (the swap rule's colour evidence for this run only; 0
    gives the v3 rule, where no match of the marks alone was a swap). Rates are also given per half
    (``group_half``: dev / test by group)."""
    from claimlens.vision.damage import same_part as SP

    if options.get("swap_min_colour_de"):
        shipped = SP.SWAP_MIN_COLOUR_DE
        SP.SWAP_MIN_COLOUR_DE = float(options["swap_min_colour_de"])
        try:
            return run_groups(folder, {k: v for k, v in options.items() if k != "swap_min_colour_de"})
        finally:
            SP.SWAP_MIN_COLOUR_DE = shipped
    t_start = time.perf_counter()
    rows = _rows(folder / "groups.csv")
    groups: dict[str, list[str]] = {}
    for r in rows:
        if not r.get("group_id"):
            continue
        if not (folder / r["image"]).is_file():
            raise SystemExit(f"groups.csv: missing file {r['image']}")
        groups.setdefault(r["group_id"], []).append(r["image"])
    source = options.get("regions", "detector")
    if source not in ("detector", "labels"):
        raise SystemExit("--opt regions= must be detector or labels")
    t0 = time.perf_counter()
    images = [i for ims in groups.values() for i in ims]
    regions = _group_regions(folder, images, source, int(options.get("max_regions", 4)))
    ms_image = 1000 * (time.perf_counter() - t0) / max(len(images), 1)
    within: list[dict[str, Any]] = []
    for gid, ims in groups.items():
        for i, a in enumerate(ims):
            for b in ims[i + 1:]:
                for part in sorted({p for p, _, _ in regions[a]} & {p for p, _, _ in regions[b]}):
                    v, score, de = _best_verdict(regions[a], regions[b], part)
                    within.append({"group": gid, "half": group_half(gid), "a": a, "b": b, "part": part,
                                   "verdict": v, "score": round(score, 4), "colour_de": de})
    cross: list[dict[str, Any]] = []
    gids = list(groups)
    k = int(options.get("cross", 5))
    for gi, gid in enumerate(gids):
        for other in gids[gi + 1:gi + 1 + k]:
            for a in groups[gid]:
                for b in groups[other]:
                    for part in sorted({p for p, _, _ in regions[a]} & {p for p, _, _ in regions[b]}):
                        v, score, de = _best_verdict(regions[a], regions[b], part)
                        cross.append({"half": group_half(gid), "part": part, "verdict": v, "score": round(score, 4),
                                      "colour_de": de})

    def rates(items: list[dict[str, Any]]) -> dict[str, Any]:
        n = len(items)
        return {"pairs": n, "swapped_rate": _rate([x["verdict"] == "swapped" for x in items]),
                "same_rate": _rate([x["verdict"] == "same" for x in items]),
                "inconclusive_rate": _rate([x["verdict"] == "inconclusive" for x in items]),
                "undecided_rate": _rate([x["verdict"] == "undecided" for x in items]),
                "different_marks_rate": _rate([x["verdict"] in ("swapped", "inconclusive") and x["score"] < SP.DIFFERENT_MAX
                                               for x in items])}

    w, c = rates(within), rates(cross)
    metrics: dict[str, Any] = {
        "auc": None, "rank1": None,
        "false_swap_rate": w["swapped_rate"], "inconclusive_rate": w["inconclusive_rate"], "pairs": w["pairs"],
        "false_same_rate": c["same_rate"], "cross_pairs": c["pairs"],
        "within": w, "across": c,
        "within_by_half": {h: rates([x for x in within if x["half"] == h]) for h in ("dev", "test")},
        "across_by_half": {h: rates([x for x in cross if x["half"] == h]) for h in ("dev", "test")},
        "within_by_part": {p: rates([x for x in within if x["part"] == p]) for p in sorted({x["part"] for x in within})},
        "regions": source, "images_with_regions": _rate([bool(regions[i]) for i in images]),
        "swap_min_colour_de": SP.SWAP_MIN_COLOUR_DE, "different_below": SP.DIFFERENT_MAX,
        "same_threshold": SP.SAME_THRESHOLD, "ms_per_image": round(ms_image, 2), "peak_rss_mb": peak_rss_mb(),
    }
    result: dict[str, Any] = {"bench": "parts", "dataset": str(folder), "n_images": len(images),
                              "seconds": round(time.perf_counter() - t_start, 1), "metrics": metrics, "peers": {}}
    if options.get("dump"):
        result["within_pairs"] = within
        result["cross_pairs"] = cross
    return result


def run(dataset_dir: Path | None, *, suite: bool, options: dict[str, str]) -> dict[str, Any]:
    from claimlens.datasets import damage_suite as ds
    from claimlens.vision.damage import part_age as PA
    from claimlens.vision.damage import same_part as SP

    if (not suite and dataset_dir is not None and (dataset_dir / "groups.csv").is_file()
            and not (dataset_dir / "pairs.csv").is_file()):
        return run_groups(dataset_dir, options)
    if options.get("real", "0") not in ("0", "", "false") and not suite:
        if dataset_dir is None:
            raise SystemExit("claimlens bench parts --opt real=1 needs DIR (a YOLO-labelled folder of real damage)")
        return run_real_age(dataset_dir, options)
    t_start = time.perf_counter()
    tmp = None
    desc: dict[str, Any] = {}
    if suite:
        hard = options.get("hard", "0") not in ("0", "", "false")
        gen = functools.partial(ds.generate_parts_suite, hard=True) if hard else ds.generate_parts_suite
        folder, tmp, desc = suite_from_photos("parts", gen, dataset_dir or ds.DEFAULT_SOURCE, options, 120)
        desc["hard"] = hard
    elif dataset_dir is None:
        raise SystemExit("claimlens bench parts needs DIR (or --suite)")
    else:
        folder = dataset_dir
    metrics: dict[str, Any] = {}
    n_images = 0
    try:
        have_pairs = (folder / "pairs.csv").is_file() and options.get("pairs", "1") != "0"
        have_age = (folder / "labels.csv").is_file()
        if not have_pairs and not have_age:
            raise SystemExit(f"{folder} has neither pairs.csv nor labels.csv")
        t_feat: list[float] = []
        if have_pairs:
            pairs = _rows(folder / "pairs.csv")
            if options.get("limit"):
                pairs = pairs[: int(options["limit"])]
            feats: dict[tuple[str, tuple | None], Any] = {}
            crops: dict[tuple[str, tuple | None], np.ndarray] = {}

            def get(rel: str, box: tuple | None) -> Any:
                key = (rel, box)
                if key not in feats:
                    rgb = _load(folder, rel)
                    t0 = time.perf_counter()
                    feats[key] = SP.part_features(rgb, box)
                    t_feat.append(time.perf_counter() - t0)
                    crops[key] = SP.part_crop(rgb, box, 256)
                return feats[key]

            scores, labels, decided, correct, t_pair, results = [], [], [], [], [], []
            verdicts: list[str] = []
            for r in pairs:
                fa, fb = get(r["image_a"], _box(r, "a")), get(r["image_b"], _box(r, "b"))
                t0 = time.perf_counter()
                res = SP.compare(fa, fb)
                t_pair.append(time.perf_counter() - t0)
                results.append(res)
                verdicts.append(SP.swap_verdict(res, crops[(r["image_a"], _box(r, "a"))],
                                                crops[(r["image_b"], _box(r, "b"))])[0])
                same = r["same_part"] in ("1", "true", "True")
                scores.append(res.same_score)
                labels.append(same)
                decided.append(res.decided)
                if res.same is not None:  # a verdict (inconclusive comparisons give none)
                    correct.append(res.same == same)
            pos = [s for s, y in zip(scores, labels) if y]
            neg = [s for s, y in zip(scores, labels) if not y]
            # rank-1 re-identification
            gallery = sorted({(r["image_b"], _box(r, "b")) for r in pairs})
            queries = [(r["image_a"], _box(r, "a"), (r["image_b"], _box(r, "b"))) for r in pairs
                       if r["same_part"] in ("1", "true", "True")]
            hits = 0
            hit_of: dict[str, int] = {}
            for qa, qbox, mate in queries:
                fq = get(qa, qbox)
                best_other, mate_score = -1.0, -1.0
                for g in gallery:
                    s = SP.compare(fq, get(*g)).same_score
                    if g == mate:
                        mate_score = s
                    else:
                        best_other = max(best_other, s)
                hits += int(mate_score > best_other)
                hit_of[qa] = int(mate_score > best_other)
            metrics.update({
                "auc": rnd(auc(pos, neg)), "tpr_at_fpr01": rnd(tpr_at_fpr(pos, neg, 0.01)),
                "rank1": rnd(hits / len(queries)) if queries else None, "n_queries": len(queries),
                "gallery_size": len(gallery), "n_pairs": len(pairs),
                "decided_fraction": rnd(float(np.mean(decided))) if decided else None,
                "accuracy": rnd(float(np.mean(correct))) if correct else None,
                # decided pairs: same parts reported different (a false swap flag), swaps passed as same, and
                # no verdict (inconclusive: between DIFFERENT_MAX and SAME_THRESHOLD)
                "false_flag_rate": _rate([r.same is False for r, y in zip(results, labels) if y and r.decided]),
                "missed_swap_rate": _rate([r.same is True for r, y in zip(results, labels) if not y and r.decided]),
                "inconclusive_rate_same": _rate([r.same is None for r, y in zip(results, labels) if y and r.decided]),
                "inconclusive_rate_swapped": _rate([r.same is None for r, y in zip(results, labels)
                                                    if not y and r.decided]),
                "different_below": SP.DIFFERENT_MAX,
                # v4 (#14): a swap verdict also needs paint of another colour (SP.swap_verdict)
                "swap_flag_rate_same": _rate([v == "swapped" for v, y, r in zip(verdicts, labels, results)
                                              if y and r.decided]),
                "swap_detect_rate": _rate([v == "swapped" for v, y, r in zip(verdicts, labels, results)
                                           if not y and r.decided]),
                "swap_min_colour_de": SP.SWAP_MIN_COLOUR_DE,
                "ms_per_pair": round(1000 * statistics.mean(t_pair), 2) if t_pair else None,
                "same_threshold": SP.SAME_THRESHOLD,
            })
            if any(r.get("negative") for r in pairs):  # the hard suite: AUC per kind of negative, rank-1 per condition
                metrics["auc_by_negative"] = {
                    k: rnd(auc(pos, [s for s, r in zip(scores, pairs) if r.get("negative") == k]))
                    for k in sorted({r["negative"] for r in pairs if r.get("negative")})}
                metrics["swap_detect_rate_by_negative"] = {
                    k: _rate([v == "swapped" for v, r, res in zip(verdicts, pairs, results)
                              if r.get("negative") == k and res.decided])
                    for k in sorted({r["negative"] for r in pairs if r.get("negative")})}
                metrics["rank1_by"] = _rank1_by([r for r in pairs if r["same_part"] in ("1", "true", "True")], hit_of)
            n_images += len(feats)
        if have_age:
            rows = _rows(folder / "labels.csv")
            for r in rows:
                if r.get("label") not in ("fresh", "old"):
                    raise SystemExit(f"labels.csv: label must be fresh or old, got {r.get('label')!r}")
            fts, t_age = age_features(folder, rows)
            if options.get("fit_age"):
                from claimlens.bench.recapture import fit_logistic

                ok = [i for i, f in enumerate(fts) if f is not None]
                X = np.array([[fts[i][k] for k in PA.FEATURES] for i in ok])  # type: ignore[index]
                y = np.array([rows[i]["label"] == "old" for i in ok], float)
                mu, sd = X.mean(0), X.std(0) + 1e-9
                w = fit_logistic((X - mu) / sd, y, l2=1.0)
                pf = 1 / (1 + np.exp(-(((X - mu) / sd) @ w[1:] + w[0])))
                metrics["fitted_age_threshold_fresh_p95"] = float(np.percentile(pf[y == 0], 95))
                metrics["fitted_age_model"] = {"bias": float(w[0]), "mean": dict(zip(PA.FEATURES, map(float, mu))),
                                               "std": dict(zip(PA.FEATURES, map(float, sd))),
                                               "weight": dict(zip(PA.FEATURES, map(float, w[1:])))}
            sc = [PA.score_features(f)[0] if f is not None else 0.0 for f in fts]
            flag = [f is not None and s >= PA.THRESHOLD for f, s in zip(fts, sc)]
            pos = [s for s, r in zip(sc, rows) if r["label"] == "old"]
            neg = [s for s, r in zip(sc, rows) if r["label"] == "fresh"]
            metrics["age_auc"] = rnd(auc(pos, neg))
            metrics["age_scores"] = {"old": [rnd(s) for s, r in zip(sc, rows) if r["label"] == "old"],
                                     "fresh": [rnd(s) for s, r in zip(sc, rows) if r["label"] == "fresh"]} \
                if options.get("dump") else None
            metrics["age_flag_rate_old"] = rnd(float(np.mean([f for f, r in zip(flag, rows) if r["label"] == "old"]))) \
                if pos else None
            metrics["age_flag_rate_fresh"] = rnd(float(np.mean([f for f, r in zip(flag, rows) if r["label"] == "fresh"]))) \
                if neg else None
            kinds = sorted({r.get("kind", "") for r in rows if r["label"] == "old"})
            metrics["age_per_kind"] = {k: rnd(auc([s for s, r in zip(sc, rows) if r.get("kind") == k], neg))
                                       for k in kinds if k}
            metrics["age_per_ingredient"] = {
                k: rnd(auc([s for s, r in zip(sc, rows) if r["label"] == "old" and k in r.get("kind", "").split("+")], neg))
                for k in sorted({x for r in rows if r["label"] == "old" for x in r.get("kind", "").split("+") if x})}
            metrics["age_threshold"] = PA.THRESHOLD
            metrics["age_ms_per_image"] = round(1000 * statistics.mean(t_age), 2) if t_age else None
            n_images += len(rows)
        metrics["ms_per_image"] = round(1000 * (statistics.mean(t_feat) if t_feat else 0.0)
                                        + (metrics.get("age_ms_per_image") or 0.0), 2)
        metrics["peak_rss_mb"] = peak_rss_mb()
    finally:
        if tmp is not None:
            tmp.cleanup()
    result: dict[str, Any] = {"bench": "parts", "dataset": str(dataset_dir or "generated"), "n_images": n_images,
                              "seconds": round(time.perf_counter() - t_start, 1), "metrics": metrics, "peers": {}}
    if desc:
        result["suite"] = desc
    return result
