"""Fit the part-age contrast model (claimlens/vision/damage/part_age.py MODEL, THRESHOLD).

Data: the *train* half of the generated parts suite (labels.csv: fresh | old parts, source photos whose path
hashes to "calib"), rendered with ``--seeds`` (default 0,1,2: three independent fresh/old renders of each
eligible train source, ``--n`` per seed, default all), generated into a temporary folder; and the real damage
boxes of the train half of car_damage_roboflow (taken as same-age parts) for the operating threshold.
The test half of both is never seen here.

Model: L2 logistic regression (Newton, ``--l2`` on the slopes, default 3) on standardised features (the suite
is balanced: one fresh and one aged variant per photo). Threshold: max(95th percentile of the train fresh
scores, the ``--real-pct`` (default 96) percentile over the real train-half photos of their highest box
score), i.e. at most 5 % of fresh suite parts and 4 % of real train photos flagged.

    python training/fit_part_age.py --seeds 0,1,2 --n 1000 --l2 3 [--write]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from claimlens.bench import parts
from claimlens.bench.recapture import auc, fit_logistic
from claimlens.datasets import damage_suite as ds
from claimlens.vision.damage import part_age as PA
from claimlens.vision.logistic import write_model_block


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--l2", type=float, default=3.0)
    ap.add_argument("--real-pct", type=float, default=96.0)
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    X, y = [], []
    for seed in (int(v) for v in a.seeds.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            got = ds.generate_parts_suite(Path(tmp), ds.DEFAULT_SOURCE, n=a.n, seed=seed, split="train")
            rows = got["age"]
            fts, _ = parts.age_features(Path(tmp), rows)
        for r, f in zip(rows, fts):
            if f is not None:
                X.append([f[k] for k in PA.FEATURES])
                y.append(r["label"] == "old")
    Xa, ya = np.asarray(X, float), np.asarray(y, float)
    mu, sd = Xa.mean(0), Xa.std(0) + 1e-9
    w = fit_logistic((Xa - mu) / sd, ya, l2=a.l2)
    model = {"bias": float(w[0]), "mean": dict(zip(PA.FEATURES, map(float, mu))),
             "std": dict(zip(PA.FEATURES, map(float, sd))), "weight": dict(zip(PA.FEATURES, map(float, w[1:])))}
    p = 1 / (1 + np.exp(-np.clip(((Xa - mu) / sd) @ w[1:] + w[0], -50, 50)))
    thr_suite = float(np.percentile(p[ya == 0], 95))
    names, rf, _ = parts.real_age_features(ds.DEFAULT_SOURCE, "train")
    per_photo: dict[str, float] = {}
    for n, f in zip(names, rf):
        s = PA.score_features(f, model)[0] if f is not None else 0.0
        per_photo[n] = max(per_photo.get(n, 0.0), s)
    thr_real = float(np.percentile(list(per_photo.values()), a.real_pct))
    thr = round(max(thr_suite, thr_real), 4)
    print(json.dumps({"n_train": len(Xa), "train_auc": auc(list(p[ya == 1]), list(p[ya == 0])),
                      "thr_suite_fresh_p95": thr_suite, f"thr_real_p{a.real_pct:g}": thr_real, "threshold": thr,
                      "train_tpr_at_threshold": float((p[ya == 1] >= thr).mean()),
                      "real_train_photo_flag_rate": float(np.mean([v >= thr for v in per_photo.values()])),
                      "weights": {k: round(v, 3) for k, v in model["weight"].items()}}, indent=1))
    if a.write:
        path = Path(PA.__file__)
        write_model_block(path, model, {"THRESHOLD": thr})
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
