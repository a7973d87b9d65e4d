"""``claimlens bench flood [DIR] [--suite] [--opt k=v]``: water/silt line level on a car (issue #7).

DIR holds ``labels.csv`` (``image,level[,height_cm,tyre_code]``; level 1..6 as in ``docs/heights.md``; level
0 = a clean car, scored only as ``false_line_rate_clean``). ``--suite`` generates
:func:`claimlens.datasets.heights_suite.generate_flood_suite` (``n``, ``seed``, ``keep``, ``clean=1``: every 7th
scene a clean car). Peer ``trivial_global_stats_loo``: a leave-one-out nearest-centroid level from global photo
statistics (no line): a check that the suite has no level tell besides the line.
The tyre code, when given, stands for an OCR read of the sidewall (wheel diameter); else the typical size.

Metrics: ``level_accuracy`` (an image with no scale reference or no line found counts as wrong),
``level_accuracy_found`` (over images where a line was measured), ``within_one_level``, ``found_rate``,
``confusion`` (true level -> predicted level or "none"), ``median_abs_error_cm``, ``ms_per_image``.
"""

from __future__ import annotations

import csv
import statistics
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from claimlens.bench.common import suite_folder
from claimlens.vision.geometry import measure
from claimlens.vision.geometry.flood import detect_flood_line
from claimlens.vision.geometry.references import tyre_diameter_mm


def run(dataset_dir: Path | None, *, suite: bool, options: dict[str, str]) -> dict[str, Any]:
    from claimlens.datasets.heights_suite import generate_flood_suite

    t_start = time.perf_counter()
    tmp, desc, folder = None, None, dataset_dir
    if suite:
        folder, tmp = suite_folder("flood", options)
        desc = generate_flood_suite(folder, int(options.get("n", 180)), int(options.get("seed", 0)),
                                    clean=options.get("clean", "0") == "1")
    if folder is None:
        raise SystemExit("usage: claimlens bench flood DIR | --suite")
    try:
        path = folder / "labels.csv"
        if not path.is_file():
            raise SystemExit(f"labels file not found: {path}")
        with open(path, encoding="utf-8-sig", newline="") as f:
            rows = list(csv.DictReader(f))
        if options.get("limit"):
            rows = rows[: int(options["limit"])]
        out, times, feats = [], [], []
        for r in rows:
            p = folder / r["image"]
            if not p.is_file():
                raise SystemExit(f"missing image listed in {path}: {p}")
            rgb = cv2.imread(str(p))[..., ::-1].copy()
            feats.append(_global_stats(rgb))
            t0 = time.perf_counter()
            m = measure(rgb, [], tyre_mm=tyre_diameter_mm(r.get("tyre_code")), ring_wheels=True)
            fl = detect_flood_line(rgb, m)
            times.append(time.perf_counter() - t0)
            out.append((r, m.status, fl))
    finally:
        if tmp is not None:
            tmp.cleanup()
    clean = [(r, s_, f) for r, s_, f in out if int(r["level"]) == 0]
    baseline = _trivial_baseline(np.array(feats), [int(r["level"]) for r, _s, _f in out])
    out = [(r, s_, f) for r, s_, f in out if int(r["level"]) != 0]
    truth = [int(r["level"]) for r, _s, _f in out]
    pred = [f.level if f.found else None for _r, _s, f in out]
    found = [p is not None for p in pred]
    conf: dict[str, dict[str, int]] = {}
    for t, p in zip(truth, pred):
        row = conf.setdefault(str(t), {})
        row[str(p) if p else "none"] = row.get(str(p) if p else "none", 0) + 1
    errs = [abs(f.height_cm - float(r["height_cm"])) for r, _s, f in out if f.found and r.get("height_cm")]
    n = len(out)
    metrics = {
        "level_accuracy": round(sum(t == p for t, p in zip(truth, pred)) / n, 4) if n else None,
        "level_accuracy_found": round(sum(t == p for t, p in zip(truth, pred) if p) / max(1, sum(found)), 4),
        "within_one_level": round(sum(p is not None and abs(t - p) <= 1 for t, p in zip(truth, pred)) / max(n, 1), 4),
        "found_rate": round(sum(found) / max(n, 1), 4),
        "no_scale_rate": round(sum(s != "measured" for _r, s, _f in out) / max(n, 1), 4),
        "median_abs_error_cm": round(float(np.median(errs)), 2) if errs else None,
        "confusion": conf,
        "ms_per_image": round(1000 * statistics.mean(times), 1) if times else None,
        "clean_images": len(clean),
        "false_line_rate_clean": round(sum(f.found for _r, _s, f in clean) / len(clean), 4) if clean else None,
    }
    res: dict[str, Any] = {"bench": "flood", "dataset": str(dataset_dir or "generated"), "n_images": n,
                           "seconds": round(time.perf_counter() - t_start, 1), "metrics": metrics,
                           "peers": {"trivial_global_stats_loo": {"level_accuracy": baseline}}}
    if desc:
        res["suite"] = desc
    return res


def _global_stats(rgb: np.ndarray) -> np.ndarray:
    """A trivial baseline's features (no line, no geometry): mean colour, saturation and texture of the
    lower 60 % of the photo."""
    small = cv2.resize(rgb, (320, 240), interpolation=cv2.INTER_AREA)[96:]
    g = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)
    sat = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)[..., 1].astype(np.float32)
    tex = np.abs(g - cv2.blur(g, (3, 3)))
    return np.r_[small.reshape(-1, 3).mean(0), sat.mean(), sat.std(), tex.mean(), g.std()]


def _trivial_baseline(x: np.ndarray, y: list[int]) -> float | None:
    """Leave-one-out nearest-centroid level from global photo statistics: if this came near the detector,
    the suite would carry a level tell other than the line."""
    ys = np.array(y)
    keep = ys > 0
    x, ys = x[keep], ys[keep]
    if len(ys) < 12:
        return None
    z = (x - x.mean(0)) / (x.std(0) + 1e-6)
    ok = 0
    for i in range(len(ys)):
        m = np.ones(len(ys), bool)
        m[i] = False
        cents = {c: z[m & (ys == c)].mean(0) for c in np.unique(ys[m])}
        pred = min(cents, key=lambda c: float(np.sum((z[i] - cents[c]) ** 2)))
        ok += pred == ys[i]
    return round(ok / len(ys), 4)
