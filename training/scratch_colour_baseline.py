"""Trivial baseline for the scratch suite: can colour and brightness alone tell the classes apart?

Fits an L2 logistic regression on region colour statistics (mean RGB, mean intensity minus the ring's,
intensity spread, mean saturation, an 8-bin hue histogram) on the *train* half of the generated scratch
suite and reports its AUC on the *test* half. A realistic suite keeps this near 0.5 (the stroke scorer's
numbers mean something only if such a baseline fails). Measured: docs/damage_forensics.md.

    python training/scratch_colour_baseline.py --n 150 --seed 0
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from claimlens.bench.recapture import auc, fit_logistic
from claimlens.bench.scratches import box_of
from claimlens.datasets import damage_suite as ds
from claimlens.vision.damage import scratches as S


def colour_features(rgb: np.ndarray, box: tuple[int, int, int, int] | None) -> np.ndarray:
    crop, (x1, y1, x2, y2), _ = S.crop_region(rgb, box)
    reg = crop[y1:y2, x1:x2].reshape(-1, 3).astype(np.float32)
    m = np.ones(crop.shape[:2], bool)
    m[y1:y2, x1:x2] = False
    ring = crop[m].astype(np.float32) if m.sum() > 100 else reg
    hsv = cv2.cvtColor(crop[y1:y2, x1:x2], cv2.COLOR_RGB2HSV).reshape(-1, 3)
    hue = np.bincount(np.minimum(hsv[:, 0] // 23, 7), minlength=8) / len(hsv)
    lum = reg.mean(1)
    return np.r_[reg.mean(0), lum.mean() - ring.mean(), lum.std(), hsv[:, 1].mean(), hue]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=150)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    out = {}
    for split in ("train", "test"):
        with tempfile.TemporaryDirectory() as tmp:
            rows = ds.generate_scratch_suite(Path(tmp), ds.DEFAULT_SOURCE, n=a.n, seed=a.seed, split=split)
            X = np.array([colour_features(np.asarray(Image.open(Path(tmp) / r["image"]).convert("RGB")), box_of(r))
                          for r in rows])
        y = np.array([r["label"] == "artificial" for r in rows], float)
        if split == "train":
            mu, sd = X.mean(0), X.std(0) + 1e-9
            w = fit_logistic((X - mu) / sd, y, l2=1.0)
        p = ((X - mu) / sd) @ w[1:] + w[0]
        out[f"{split}_auc"] = round(auc(list(p[y == 1]), list(p[y == 0])), 4)
    print(json.dumps({"baseline": "colour/brightness logistic", **out}))


if __name__ == "__main__":
    main()
