"""``claimlens bench score [DIR] [--suite]``: how the claim score spreads and ranks.

DIR is either a folder of claim folders (what ``claimlens scan`` reads, e.g. ``var/demo/claims``: scanned here
into a temporary embedded data dir) or an embedded data dir a scan already wrote (``var/demo/data``: its
reports are read as they are). ``--suite`` generates the claim set of :mod:`claimlens.datasets.claim_suite`
from the real photos in DIR (default ../shared/data/car_damage_roboflow; ``--opt n=80``, ``--opt seed=0``,
``--opt keep=DIR`` to keep it) and scans it.

Metrics: percentiles, a 10-point histogram and the number of distinct values of the shipped score
(:mod:`claimlens.core.findings`), findings and groups per claim, the share of claims at 89 or more (where one
reused photo and one timeline flag put a claim with the old score); with ``labels.csv`` (the suite writes one:
``claim_id,scenario,planted``) also the AUC of planted claims over honest ones and the median per scenario.
``peers.per_finding_product`` gives the same numbers for the old score, 100 * (1 - prod(1 - w)) over every
finding (w = .6 high, .3 medium, .1 low), on the same reports.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from claimlens.bench.common import suite_folder
from claimlens.bench.recapture import auc

LEGACY_WEIGHT = {"high": 0.6, "medium": 0.3, "low": 0.1, "info": 0.0}


def legacy_score(findings: list[dict[str, Any]]) -> int:
    """The score before report schema 1.1: every finding counted, 100 * (1 - prod(1 - w))."""
    p = 1.0
    for f in findings:
        p *= 1.0 - LEGACY_WEIGHT[f["severity"]]
    return round(100 * (1.0 - p))


def distribution(scores: list[int]) -> dict[str, Any]:
    """Percentiles, a histogram in 10-point bins (90-100 is the last) and how many values are distinct."""
    a = np.asarray(scores, float)
    bins = [0] * 10
    for s in scores:
        bins[min(int(s) // 10, 9)] += 1
    return {"p10": _pct(a, 10), "p25": _pct(a, 25), "p50": _pct(a, 50), "p75": _pct(a, 75), "p90": _pct(a, 90),
            "max": int(a.max()) if len(a) else None, "mean": round(float(a.mean()), 1) if len(a) else None,
            "histogram": {f"{10 * i}-{10 * i + 9 if i < 9 else 100}": n for i, n in enumerate(bins)},
            "distinct_values": len(set(scores)), "share_zero": _share(a == 0), "share_ge_89": _share(a >= 89)}


def read_reports(data_dir: Path) -> dict[str, dict[str, Any]]:
    """claim id -> report JSON, from an embedded data dir (``objects/<bucket>/claims/<id>/report.json``)."""
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(data_dir.glob("objects/*/claims/*/report.json"))}


def run(dataset_dir: Path | None, *, suite: bool, options: dict[str, str]) -> dict[str, Any]:
    from claimlens.core.scan import embedded_runtime, scan
    from claimlens.datasets.claim_suite import build_claim_suite
    from claimlens.datasets.demo import SHARED_DAMAGE

    t0 = time.perf_counter()
    desc: dict[str, Any] = {}
    if suite:
        folder, tmp = suite_folder("score", options)
        n, seed = int(options.get("n", 80)), int(options.get("seed", 0))
        photos = dataset_dir or SHARED_DAMAGE
        claims_dir = build_claim_suite(folder / "claims", n=n, seed=seed, shared=photos)
        data_dir = folder / "data"
        desc = {"generated": "claimlens.datasets.claim_suite", "generated_from": str(photos), "n_claims": n,
                "seed": seed}
    elif dataset_dir is None:
        raise SystemExit("bench score needs DIR (claim folders or a scan's data dir) or --suite")
    elif read_reports(dataset_dir):  # a data dir a scan wrote: read as it is
        claims_dir, data_dir, tmp = dataset_dir, dataset_dir, None
    else:  # claim folders: scan them into a temporary data dir
        tmp = tempfile.TemporaryDirectory(prefix="claimlens-score-")
        claims_dir, data_dir = dataset_dir, Path(tmp.name) / "data"
    try:
        if data_dir != dataset_dir:
            scan(claims_dir, embedded_runtime(data_dir), Console(file=io.StringIO()))
        reports = read_reports(data_dir)
        labels = _labels(claims_dir / "labels.csv")
    finally:
        if tmp is not None:
            tmp.cleanup()
    if not reports:
        raise SystemExit(f"no claim reports found for {dataset_dir}")

    scores = {c: int(r["score"]) for c, r in reports.items()}
    old = {c: legacy_score(r["findings"]) for c, r in reports.items()}
    n_findings = [len(r["findings"]) for r in reports.values()]
    n_groups = [len(r.get("groups", [])) for r in reports.values()]
    return {
        "bench": "score", "dataset": "suite" if suite else str(dataset_dir), **desc,
        "n_images": sum(len(r["photos"]) for r in reports.values()), "n_claims": len(reports),
        "seconds": round(time.perf_counter() - t0, 1),
        "metrics": {**_metrics(scores, labels), "findings_per_claim_mean": round(statistics.mean(n_findings), 2),
                    "groups_per_claim_mean": round(statistics.mean(n_groups), 2),
                    "findings_per_group": round(sum(n_findings) / max(1, sum(n_groups)), 2),
                    "claims": {c: {"score": scores[c], "old_score": old[c], "findings": len(reports[c]["findings"]),
                                   "groups": len(reports[c].get("groups", [])),
                                   **({"scenario": labels[c][0]} if c in labels else {})}
                               for c in sorted(reports)}},
        "peers": {"per_finding_product": _metrics(old, labels)},
    }


def _metrics(scores: dict[str, int], labels: dict[str, tuple[str, bool]]) -> dict[str, Any]:
    out: dict[str, Any] = {"score": distribution(list(scores.values()))}
    if labels:
        pos = [s for c, s in scores.items() if c in labels and labels[c][1]]
        neg = [s for c, s in scores.items() if c in labels and not labels[c][1]]
        a = auc([float(x) for x in pos], [float(x) for x in neg])
        out["auc_planted_vs_honest"] = round(a, 4) if a is not None else None
        by: dict[str, list[int]] = defaultdict(list)
        for c, s in scores.items():
            if c in labels:
                by[labels[c][0]].append(s)
        out["median_by_scenario"] = {k: {"n": len(v), "median": statistics.median(v), "max": max(v)}
                                     for k, v in sorted(by.items())}
    return out


def _labels(path: Path) -> dict[str, tuple[str, bool]]:
    if not path.is_file():
        return {}
    with path.open(newline="") as fh:
        return {row["claim_id"]: (row["scenario"], row["planted"] == "1") for row in csv.DictReader(fh)}


def _pct(a: np.ndarray, q: float) -> float | None:
    return round(float(np.percentile(a, q)), 1) if len(a) else None


def _share(mask: np.ndarray) -> float | None:
    return round(float(mask.mean()), 3) if len(mask) else None
