"""Re-derive the #14 operating points of the damage forensics from real photos (dev halves only) and print them.

The constants live in the scorer modules and are edited by hand from this output (the model blocks that
``fit_scratch_scorer.py`` / ``fit_part_age.py`` rewrite are not touched):

* ``scratches.MEDIUM_THRESHOLD``: the 99.5th percentile of each dev photo's highest scratch-like score, dev =
  the ``dev`` half of the car_damage_train val scratch photos + the train half of car_damage_roboflow;
* ``part_age.THRESHOLD``: the smallest value in 0.001 steps at which at most 1.5 % (half the issue's 3 %) of
  the dev photos of car_damage_train's val parts have a box at or above it;
* ``same_part.SWAP_MIN_COLOUR_DE``: the smallest whole number above every colour difference of a dev-half
  same_vehicle_views pair of one car that the marks alone (the v3 rule) called "different".

Usage: ``OMP_NUM_THREADS=1 .venv/bin/python training/fit_damage_operating_points.py`` (~3 min on one core).
The test halves are not read.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from claimlens.bench import parts as parts_bench
from claimlens.bench import scratches as scratch_bench
from claimlens.datasets.damage_suite import DEFAULT_SOURCE
from claimlens.datasets.integrity_suite import SHARED_DATA

TRAIN = SHARED_DATA / "car_damage_train"
VIEWS = SHARED_DATA / "same_vehicle_views"


def photo_max(rows: list[dict], ok: str) -> list[float]:
    best: dict[str, float] = {}
    for r in rows:
        best[r["image"]] = max(best.get(r["image"], 0.0), r["score"] if r[ok] else 0.0)
    return list(best.values())


def main() -> None:
    dev = [r for r in scratch_bench.run(TRAIN, suite=False, options={"real": "1", "dump": "1"})["per_image"]
           if r["half"] == "dev"]
    rf = scratch_bench.run(Path(DEFAULT_SOURCE), suite=False,
                           options={"real": "1", "split": "train", "dump": "1"})["per_image"]
    pooled = photo_max(dev, "scratch_like") + photo_max(rf, "scratch_like")
    medium = math.ceil(float(np.percentile(pooled, 99.5)) * 1e4) / 1e4
    print(f"scratches.MEDIUM_THRESHOLD = {medium}  ({len(pooled)} dev photos)")

    boxes = [r for r in parts_bench.run(TRAIN, suite=False, options={"real": "1", "dump": "1"})["per_box"]
             if r["half"] == "dev"]
    best = np.array(photo_max(boxes, "measurable"))
    thr = next(t / 1000 for t in range(900, 1001) if (best >= t / 1000).mean() <= 0.015)
    print(f"part_age.THRESHOLD = {thr}  ({len(best)} dev photos, highest {best.max():.4f})")

    pairs = parts_bench.run(VIEWS, suite=False, options={"dump": "1", "swap_min_colour_de": "0"})["within_pairs"]
    de = [p["colour_de"] for p in pairs if p["half"] == "dev" and p["verdict"] == "swapped"]
    print(f"same_part.SWAP_MIN_COLOUR_DE = {math.floor(max(de)) + 1:.1f}  ({len(de)} dev pairs the marks call "
          f"different, largest colour difference {max(de):.1f})")


if __name__ == "__main__":
    main()
