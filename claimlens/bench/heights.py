"""``claimlens bench heights [DIR] [--suite] [--opt k=v]``: heights of damage marks above the ground.

DIR holds ``labels.csv`` (``image,mark_bottom_cm,mark_top_cm[,reference,mark_box,plate_corners,tyre_code,
distance_m,view]``) and optionally ``pairs.csv`` (``image_a,image_b,consistent``). ``mark_box`` (x1 y1 x2 y2,
the adjuster's region) is required: the bench measures the mark the adjuster drew. ``--suite`` generates
:func:`claimlens.datasets.heights_suite.generate_heights_suite` into a temporary folder (``n``, ``seed``).

Options: ``corners=given|detector|both`` (default both: plate corners from labels.csv with their localisation
noise, and from the real plate localiser refined on the plate's edges), ``tyre=given|typical|half`` (default
half: the tyre code is given for every second image, as an OCR read would be), ``mp12=N`` (time the check on
N 12 MP images), ``tyres=N`` (the sidewall size-code reader on N generated wheels, ``tyre_seed``),
``balanced=1`` (with ``--suite``: one suite per distance band 1-2, 2-3, 3-4 m, pooled with
equal weight per band, see :func:`run_balanced`), ``keep=DIR`` (keep the generated suite), ``items=FILE`` (write every measured mark of the
main variant as CSV: image, view, distance, reference used, truth, measurement, sigma, absolute errors; to pool
runs, e.g. one per distance band), ``ccpd=DIR`` (the real-photo scale check on the
CCPD frames of ../shared/data/plates_cn).

Metrics (per corner variant; the top-level keys are the ``detector`` variant, the realistic one):
``median_abs_error_cm`` / ``p90_abs_error_cm`` over both ends of every measured mark, per distance band
(1-2, 2-3, 3-4 m) and per view; ``refusal_rate`` (no numbers asserted: no scale reference or no ground) and
``refusal_rate_no_reference`` (on images labelled reference=none: must be 1.0) and ``false_measure_rate``
(numbers asserted on those); ``coverage_2sigma`` (true value within the reported 2 sigma);
``consistency_accuracy`` over *decided* pairs (both sides measured and, for a consistent verdict, an
allowance < 20 cm: :data:`consistency.DECISIVE_GAP_CM`), ``decision_rate`` (decided / all pairs),
``consistency_accuracy_all`` counting undecided pairs as wrong; ``ms_per_image`` (analysis, decode excluded).
"""

from __future__ import annotations

import csv
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from claimlens.bench.common import peak_rss_mb, suite_folder
from claimlens.vision.geometry import Box, measure
from claimlens.vision.geometry.consistency import compare_ranges
from claimlens.vision.geometry.references import tyre_diameter_mm

BANDS = ((1.0, 2.0), (2.0, 3.0), (3.0, 4.0))


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split()] if text and text.strip() else []


def read_rows(folder: Path) -> list[dict[str, str]]:
    path = folder / "labels.csv"
    if not path.is_file():
        raise SystemExit(f"labels file not found: {path}")
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        if not (folder / r["image"]).is_file():
            raise SystemExit(f"missing image listed in {path}: {folder / r['image']}")
        if not r.get("mark_box"):
            raise SystemExit(f"{path}: mark_box is required (x1 y1 x2 y2)")
    return rows


def _err_block(items: list[dict[str, Any]]) -> dict[str, Any]:
    errs = [e for i in items if i["measured"] for e in i["errors"]]
    cov = [c for i in items if i["measured"] for c in i["covered"]]
    if not errs:
        return {"n": len(items), "n_measured": 0, "median_abs_error_cm": None, "p90_abs_error_cm": None}
    return {"n": len(items), "n_measured": sum(i["measured"] for i in items),
            "median_abs_error_cm": round(float(np.median(errs)), 2),
            "p90_abs_error_cm": round(float(np.percentile(errs, 90)), 2),
            "coverage_2sigma": round(float(np.mean(cov)), 3)}


def evaluate(folder: Path, rows: list[dict[str, str]], variant: str, tyre_mode: str) -> dict[str, Any]:
    items = []
    times = []
    for k, r in enumerate(rows):
        rgb = cv2.imread(str(folder / r["image"]), cv2.IMREAD_COLOR)[..., ::-1].copy()
        box = Box(*_floats(r["mark_box"]))
        corners = _floats(r.get("plate_corners", ""))
        tyre = r.get("tyre_code") if (tyre_mode == "given" or (tyre_mode == "half" and k % 2 == 0)) else None
        t0 = time.perf_counter()
        if variant == "given" and len(corners) == 8:
            m = measure(rgb, [box], plate_corners=np.array(corners).reshape(4, 2), plate_source="given",
                        tyre_mm=tyre_diameter_mm(tyre))
        else:
            m = measure(rgb, [box], detect_plate=True, tyre_mm=tyre_diameter_mm(tyre))
        times.append(time.perf_counter() - t0)
        mk = m.marks[0] if m.marks else {}
        measured = m.status == "measured" and mk.get("bottom_cm") is not None
        tb, tt = float(r["mark_bottom_cm"]), float(r["mark_top_cm"])
        item: dict[str, Any] = {"row": r, "measured": measured, "status": m.status,
                                "reference": m.reference.get("kind"), "errors": [], "covered": []}
        if measured:
            item["bottom"], item["top"] = mk["bottom_cm"], mk["top_cm"]
            item["sb"], item["st"] = mk["bottom_sigma_cm"], mk["top_sigma_cm"]
            item["errors"] = [abs(mk["bottom_cm"] - tb), abs(mk["top_cm"] - tt)]
            item["covered"] = [abs(mk["bottom_cm"] - tb) <= 2 * mk["bottom_sigma_cm"],
                               abs(mk["top_cm"] - tt) <= 2 * mk["top_sigma_cm"]]
        items.append(item)
    with_ref = [i for i in items if i["row"].get("reference", "plate") != "none"]
    no_ref = [i for i in items if i["row"].get("reference") == "none"]
    out = _err_block(with_ref)
    out["refusal_rate"] = round(float(np.mean([not i["measured"] for i in with_ref])), 3) if with_ref else None
    out["refusal_rate_no_reference"] = round(float(np.mean([not i["measured"] for i in no_ref])), 3) if no_ref else None
    out["false_measure_rate"] = round(float(np.mean([i["measured"] for i in no_ref])), 3) if no_ref else None
    out["per_distance"] = {}
    for lo, hi in BANDS:
        band = [i for i in with_ref if i["row"].get("distance_m") and lo <= float(i["row"]["distance_m"]) < hi]
        out["per_distance"][f"{lo:g}-{hi:g}m"] = _err_block(band) | {
            "refusal_rate": round(float(np.mean([not i["measured"] for i in band])), 3) if band else None}
    views = sorted({i["row"].get("view", "") for i in with_ref} - {""})
    out["per_view"] = {v: _err_block([i for i in with_ref if i["row"].get("view") == v]) for v in views}
    out["per_reference_used"] = {}
    for ref in sorted({str(i["reference"]) for i in with_ref}):
        out["per_reference_used"][ref] = _err_block([i for i in with_ref if str(i["reference"]) == ref])
    out["ms_per_image"] = round(1000 * statistics.mean(times), 1) if times else None
    out["_items"] = items
    # pairs
    pairs_path = folder / "pairs.csv"
    if pairs_path.is_file():
        by_image = {i["row"]["image"]: i for i in items}
        with open(pairs_path, encoding="utf-8-sig", newline="") as f:
            prs = list(csv.DictReader(f))
        decided, correct, tp, fp, n_incons, measured_both, correct_any = 0, 0, 0, 0, 0, 0, 0
        false_flags: list[dict[str, Any]] = []
        for p in prs:
            a, b = by_image.get(p["image_a"]), by_image.get(p["image_b"])
            truth = p["consistent"].strip() == "1"
            n_incons += not truth
            if not (a and b and a["measured"] and b["measured"]):
                continue
            res = compare_ranges((a["bottom"], a["top"], a["sb"], a["st"]), (b["bottom"], b["top"], b["sb"], b["st"]))
            measured_both += 1
            correct_any += res["consistent"] == truth
            if not res["decided"]:
                continue
            decided += 1
            correct += res["consistent"] == truth
            tp += (not res["consistent"]) and not truth
            fp += (not res["consistent"]) and truth
            if (not res["consistent"]) and truth:  # for a person to look at: which views, which references
                false_flags.append({side: {"image": i["row"]["image"], "view": i["row"].get("view"),
                                           "reference": i["reference"], "true_cm": [float(i["row"]["mark_bottom_cm"]),
                                                                                     float(i["row"]["mark_top_cm"])],
                                           "measured_cm": [i["bottom"], i["top"]], "sigma_cm": [i["sb"], i["st"]],
                                           "distance_m": i["row"].get("distance_m")}
                                    for side, i in (("a", a), ("b", b))})
        out["consistency_accuracy"] = round(correct / decided, 4) if decided else None
        out["consistency_accuracy_all"] = round(correct / len(prs), 4) if prs else None
        out["decision_rate"] = round(decided / len(prs), 4) if prs else None
        out["pairs_measured_both"] = measured_both
        out["consistency_accuracy_measured_undecided_as_verdict"] = (
            round(correct_any / measured_both, 4) if measured_both else None)
        out["pairs"] = len(prs)
        out["pairs_decided"] = decided
        out["pairs_correct"] = correct
        out["inconsistent_recall"] = round(tp / n_incons, 4) if n_incons else None
        out["inconsistent_false_flags"] = fp
        out["false_flags"] = false_flags
    return out


def run(dataset_dir: Path | None, *, suite: bool, options: dict[str, str]) -> dict[str, Any]:
    from claimlens.datasets.heights_suite import generate_heights_suite

    t_start = time.perf_counter()
    tmp = None
    desc = None
    folder = dataset_dir
    if suite and options.get("balanced"):
        return run_balanced(options, t_start)
    if suite:
        folder, tmp = suite_folder("heights", options)
        lo, _, hi = options.get("distance", "1-4").partition("-")
        desc = generate_heights_suite(folder, int(options.get("n", 240)), int(options.get("seed", 0)),
                                      distance=(float(lo), float(hi or lo)))
    if folder is None:
        raise SystemExit("usage: claimlens bench heights DIR | --suite")
    try:
        rows = read_rows(folder)
        if options.get("limit"):
            rows = rows[: int(options["limit"])]
        variants = ("given", "detector") if options.get("corners", "both") == "both" else (options["corners"],)
        res = {v: evaluate(folder, rows, v, options.get("tyre", "half")) for v in variants}
    finally:
        if tmp is not None:
            tmp.cleanup()
    main_v = "detector" if "detector" in res else variants[0]
    items = {v: res[v].pop("_items") for v in res}
    if options.get("items"):
        write_items(Path(options["items"]), items[main_v])
    metrics: dict[str, Any] = dict(res[main_v])
    metrics["variant"] = main_v
    metrics["variants"] = res
    if options.get("ccpd"):
        metrics["ccpd_scale_check"] = ccpd_scale_check(Path(options["ccpd"]))
    if options.get("mp12"):
        metrics["check_12mp"] = time_12mp(int(options["mp12"]))
    if options.get("tyres"):
        metrics["tyre_codes"] = tyre_code_check(int(options["tyres"]), int(options.get("tyre_seed", 0)))
    metrics["peak_rss_mb"] = peak_rss_mb()
    out: dict[str, Any] = {"bench": "heights", "dataset": str(dataset_dir or "generated"), "n_images": len(rows),
                           "seconds": round(time.perf_counter() - t_start, 1), "metrics": metrics, "peers": {}}
    if desc:
        out["suite"] = desc
    return out


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    order = np.argsort(values)
    cum = np.cumsum(weights[order]) / weights.sum()
    return float(values[order][min(len(values) - 1, int(np.searchsorted(cum, q)))])


def run_balanced(options: dict[str, str], t_start: float) -> dict[str, Any]:
    """``--suite --opt balanced=1``: one suite per distance band (1-2, 2-3, 3-4 m; same ``n`` and ``seed``),
    each evaluated, the marks pooled with equal weight per band. The plain suite draws the camera 1-4 m away
    but keeps only scenes where a reference and the ground are seen, which leaves 4-8 images at 1-2 m: its
    headline numbers describe 2-4 m. Here every metre of 1-4 m counts alike."""
    from claimlens.datasets.heights_suite import generate_heights_suite

    n, seed = int(options.get("n", 240)), int(options.get("seed", 0))
    variant = options.get("corners", "detector")
    if variant == "both":
        variant = "detector"
    bands, errors, weights, covered = {}, [], [], []
    decided = correct = pairs = false_flags = n_images = 0
    items_all: list[dict[str, Any]] = []
    for lo, hi in BANDS:
        with tempfile.TemporaryDirectory() as tmp:
            generate_heights_suite(Path(tmp), n, seed, distance=(lo, hi))
            rows = read_rows(Path(tmp))
            res = evaluate(Path(tmp), rows, variant, options.get("tyre", "half"))
        items = res.pop("_items")
        items_all += items
        n_images += len(rows)
        errs = [e for i in items if i["measured"] for e in i["errors"]]
        errors += errs
        weights += [1.0 / max(len(errs), 1)] * len(errs)
        covered += [c for i in items if i["measured"] for c in i["covered"]]
        decided += res.get("pairs_decided", 0)
        correct += res.get("pairs_correct", 0)
        pairs += res.get("pairs", 0)
        false_flags += res.get("inconsistent_false_flags", 0)
        bands[f"{lo:g}-{hi:g}m"] = {k: res.get(k) for k in (
            "n", "n_measured", "median_abs_error_cm", "p90_abs_error_cm", "coverage_2sigma", "refusal_rate",
            "consistency_accuracy", "pairs_decided", "pairs", "inconsistent_false_flags", "per_view")}
    if options.get("items"):
        write_items(Path(options["items"]), items_all)
    e, w = np.asarray(errors, float), np.asarray(weights, float)
    metrics: dict[str, Any] = {
        "variant": variant, "bands": bands,
        "median_abs_error_cm": round(_weighted_quantile(e, w, 0.5), 2) if len(e) else None,
        "p90_abs_error_cm": round(_weighted_quantile(e, w, 0.9), 2) if len(e) else None,
        "marks_measured": len(e) // 2, "coverage_2sigma": round(float(np.mean(covered)), 3) if covered else None,
        "consistency_accuracy": round(correct / decided, 4) if decided else None,
        "pairs_decided": decided, "pairs": pairs, "inconsistent_false_flags": false_flags,
        "peak_rss_mb": peak_rss_mb()}
    return {"bench": "heights", "dataset": "generated, one suite per distance band", "n_images": n_images,
            "seconds": round(time.perf_counter() - t_start, 1), "metrics": metrics, "peers": {}}


def write_items(path: Path, items: list[dict[str, Any]]) -> None:
    """Every measured mark as one CSV row (the refused ones are not measurements)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["image", "view", "distance_m", "reference", "true_bottom_cm", "true_top_cm", "bottom_cm", "top_cm",
                    "bottom_sigma_cm", "top_sigma_cm", "abs_error_bottom_cm", "abs_error_top_cm"])
        for i in items:
            if i["measured"]:
                r = i["row"]
                w.writerow([r["image"], r.get("view", ""), r.get("distance_m", ""), i["reference"], r["mark_bottom_cm"],
                            r["mark_top_cm"], i["bottom"], i["top"], i["sb"], i["st"],
                            round(i["errors"][0], 2), round(i["errors"][1], 2)])


def ccpd_scale_check(folder: Path) -> dict[str, Any]:
    """Real photos: the plate localiser's corners vs corners refitted on the plate's colour edges.

    The CCPD frames in ../shared/data/plates_cn come without corner labels (labels.csv has empty vertex
    columns), so the reference is the edge refit (:func:`refine_plate_corners`), whose own accuracy is
    measured on the generated suite against true corners. Reported: the plate size (mm) that the detector's
    corners give when measured in the homography of the refitted corners (true: 440 x 140), and the corner
    distance in % of the plate height."""
    from claimlens.vision.geometry.detect import detect_plates
    from claimlens.vision.geometry.plane import apply_h, homography, plate_object_points

    obj = plate_object_points("cn_blue")
    widths, heights, dists, n, n_ref = [], [], [], 0, 0
    for p in sorted(folder.rglob("*.jpg")):
        if "/np/" in p.as_posix():
            continue  # no-plate frames
        rgb = cv2.imread(str(p))[..., ::-1].copy()
        found = [d for d in detect_plates(rgb) if d["score"] >= 0.6]
        n += 1
        if not found or found[0]["refined"] is None:
            continue
        n_ref += 1
        det, ref = found[0]["corners"], found[0]["refined"]
        hinv = np.linalg.inv(homography(obj, ref))
        q = apply_h(hinv, det)
        widths.append(float(np.mean([np.linalg.norm(q[1] - q[0]), np.linalg.norm(q[2] - q[3])])))
        heights.append(float(np.mean([np.linalg.norm(q[3] - q[0]), np.linalg.norm(q[2] - q[1])])))
        ph = float(np.mean([np.linalg.norm(ref[3] - ref[0]), np.linalg.norm(ref[2] - ref[1])]))
        dists.append(float(np.mean(np.linalg.norm(det - ref, axis=1)) / ph * 100))
    if not widths:
        return {"n_frames": n, "n_refined": 0}
    return {"n_frames": n, "n_refined": n_ref,
            "detector_width_mm_median": round(float(np.median(widths)), 1),
            "detector_height_mm_median": round(float(np.median(heights)), 1),
            "width_abs_error_pct_median": round(float(np.median(np.abs(np.array(widths) - 440) / 440 * 100)), 2),
            "height_abs_error_pct_median": round(float(np.median(np.abs(np.array(heights) - 140) / 140 * 100)), 2),
            "height_abs_error_pct_p90": round(float(np.percentile(np.abs(np.array(heights) - 140) / 140 * 100, 90)), 2),
            "corner_distance_pct_of_plate_height_median": round(float(np.median(dists)), 2)}


def tyre_code_check(n: int, seed: int) -> dict[str, Any]:
    """The sidewall size-code reader on ``n`` generated wheels (:mod:`claimlens.datasets.tyre_codes`; every
    fifth without a code), given the wheel's ellipse: codes read right / read wrong / not read, false reads on
    plain sidewalls, ms per wheel."""
    from claimlens.datasets.tyre_codes import generate_tyre_code_suite
    from claimlens.vision.geometry.tyre_code import read_tyre_code

    right = wrong = missed = false_reads = blanks = 0
    times = []
    with tempfile.TemporaryDirectory() as d:
        for r in generate_tyre_code_suite(Path(d), n, seed):
            rgb = cv2.imread(str(Path(d) / r["image"]), cv2.IMREAD_COLOR)[..., ::-1].copy()
            t0 = time.perf_counter()
            got = read_tyre_code(rgb, (r["cx"], r["cy"]), (r["ax"], r["ay"]), r["angle"], r["rim_fraction"])
            times.append(time.perf_counter() - t0)
            if not r["code"]:
                blanks += 1
                false_reads += got is not None
            elif got is None:
                missed += 1
            elif got.code == r["code"]:
                right += 1
            else:
                wrong += 1
    coded = right + wrong + missed
    return {"n_wheels": n, "with_code": coded, "read_right": right, "read_wrong": wrong, "not_read": missed,
            "read_rate": round(right / coded, 3) if coded else None,
            "wrong_rate": round(wrong / coded, 3) if coded else None,
            "false_reads_on_plain": false_reads, "plain": blanks,
            "ms_per_wheel_median": round(1000 * statistics.median(times), 1) if times else None}


def time_12mp(n: int) -> dict[str, Any]:
    """The heights check on n generated scenes upscaled to 4000 x 3000 (decode excluded)."""
    from claimlens.checks.base import PhotoInfo
    from claimlens.checks.heights import HeightsCheck
    from claimlens.datasets.heights_suite import generate_heights_suite
    from claimlens.vision.decode import decode_photo

    check = HeightsCheck()
    times = []
    with tempfile.TemporaryDirectory() as d:
        generate_heights_suite(Path(d), max(2, n), seed=99)
        rows = read_rows(Path(d))[:n]
        for i, r in enumerate(rows):
            img = cv2.imread(str(Path(d) / r["image"]))
            big = cv2.resize(img, (4000, 3000), interpolation=cv2.INTER_CUBIC)
            photo = decode_photo(cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 92])[1].tobytes())
            s = 4000 / img.shape[1]
            b = [v * s for v in _floats(r["mark_box"])]
            info = PhotoInfo(photo_id=f"p{i}", claim_id="BENCH", stage="survey", role="damage", sha256="0" * 64,
                             size_bytes=0, filename=None, uploaded_at=None,
                             regions=[{"x1": b[0], "y1": b[1], "x2": b[2], "y2": b[3], "part": "scratch"}])
            t0 = time.perf_counter()
            check.analyse_photo(photo, info)
            times.append(time.perf_counter() - t0)
    return {"n_photos": len(times), "ms_median": round(1000 * statistics.median(times), 1),
            "ms_max": round(1000 * max(times), 1),
            "peak_rss_mb": peak_rss_mb()}
