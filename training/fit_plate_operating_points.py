"""Fit the accusation operating points of the plate_vin check (issue 15: precision before coverage).

A plate or VIN read may accuse (HIGH mismatch, cross-claim index) only at an operating point whose precision
on real photos is >= 0.99. This script reads the per-read items a bench wrote on a real DEV split and prints,
per family, the point of largest coverage whose dev precision is >= the target (``--target 0.99``), with the
Wilson 95 % lower bound of that precision. The chosen values are copied by hand into
``claimlens/checks/plate_vin.py`` (``PLATE_MIN_*``, ``LATIN_MIN_*``, ``VIN_MIN_CONFIDENCE``) and then
reported once on the TEST split by the same bench (``check_operating_point``).

    claimlens bench plates ../shared/data/plates_latin_real --opt split=dev --opt items=/tmp/latin_dev.json
    claimlens bench plates ../shared/data/plates_cn --opt split=dev --opt items=/tmp/cn_dev.json
    claimlens bench vins ../shared/data/vin_plates/roboflow_vin_detection \
        --opt labels=datasets/vin_labels.csv --opt items=/tmp/vin_dev.json
    python training/fit_plate_operating_points.py latin /tmp/latin_dev.json
    python training/fit_plate_operating_points.py cn /tmp/cn_dev.json
    python training/fit_plate_operating_points.py vin /tmp/vin_dev.json

Families: ``latin`` (national format required; grid over the weakest-character confidence x the
plate-likeness score), ``cn`` (grid over the fused confidence; detector score fixed at the check's 0.6 for
photos, crops have none), ``vin`` (grid over the weakest-character confidence after corrections).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

GRID = [round(0.05 * i, 2) for i in range(20)] + [0.96, 0.97, 0.98, 0.99, 0.995, 0.999]


def wilson_lower(k: int, n: int, z: float = 1.96) -> float:
    """95 % lower bound of a proportion k / n (how sure a precision measured on n reads is)."""
    if n == 0:
        return 0.0
    p = k / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - spread) / (1 + z * z / n)


def candidates(family: str, items: list[dict]) -> list[dict]:
    """Every read the family's rule could accept, with its scores."""
    if family == "vin":
        return [{"ok": x["pred"] == x["gt"], "conf": x["conf"], "score": 1.0} for x in items if x["pred"]]
    if family == "latin":
        return [{"ok": x["pred"] == x["gt"], "conf": x["conf"], "score": x.get("plate_score") or 0.0}
                for x in items if x["pred"] and x.get("read_kind") == "latin"
                and x.get("layout") not in (None, "generic")]
    return [{"ok": x["pred"] == x["gt"], "conf": x["conf"], "score": 1.0} for x in items
            if x["pred"] and x.get("read_kind") == "cn" and (x.get("crop") or x.get("det", 0) >= 0.6)]


def fit(family: str, items: list[dict], target: float) -> dict:
    reads = candidates(family, items)
    n_all = len(items)
    best = None
    table = []
    for c in GRID:
        for sc in (GRID if family == "latin" else [0.0]):
            sel = [r for r in reads if r["conf"] >= c and r["score"] >= sc]
            k = sum(r["ok"] for r in sel)
            prec = k / len(sel) if sel else None
            row = {"min_confidence": c, "min_plate_score": sc, "n": len(sel), "correct": k,
                   "coverage": round(len(sel) / max(n_all, 1), 4),
                   "precision": None if prec is None else round(prec, 4),
                   "precision_lower95": round(wilson_lower(k, len(sel)), 4)}
            table.append(row)
            if prec is not None and prec >= target and (best is None or len(sel) > best["n"]
                                                        or (len(sel) == best["n"] and (c, sc) < (
                                                            best["min_confidence"], best["min_plate_score"]))):
                best = row
    return {"family": family, "items": n_all, "readable_by_rule": len(reads), "target": target, "chosen": best,
            "note": None if best else f"no point reaches precision {target} on this split: the family must not "
                                      f"accuse (set its thresholds above every score)"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("family", choices=("cn", "latin", "vin"))
    ap.add_argument("items", nargs="+", type=Path, help="items JSON written by a bench --opt items=FILE (dev)")
    ap.add_argument("--target", type=float, default=0.99)
    args = ap.parse_args()
    items = [x for p in args.items for x in json.loads(p.read_text(encoding="utf-8"))]
    print(json.dumps(fit(args.family, items, args.target), indent=1))


if __name__ == "__main__":
    main()
