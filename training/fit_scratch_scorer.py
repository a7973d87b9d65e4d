"""Fit the fake-scratch scorer's logistic model (claimlens/vision/damage/scratches.py MODEL, THRESHOLD).

Data: the *train* half of the generated scratch suite (claimlens.datasets.damage_suite, source photos whose
path hashes to "calib"), generated here into a temporary folder; and the real damage boxes of the same train
half of car_damage_roboflow (all genuine damage), used as extra genuine examples (``--real-negatives 1``,
not the default: real crumpled metal, broken plastic and reflections otherwise read as "many directions") and
for the operating threshold. The test half of both is never seen here.

Model: L2 logistic regression (the suite is balanced, 1 genuine + 1 artificial per photo) (Newton, l2=1.0 on the slopes) on standardised features.
Threshold: max(95th percentile of the train-suite genuine scores, 95th percentile over the real train-half
photos of their highest box score), so that the shipped operating point is chosen without the test half.

    python training/fit_scratch_scorer.py --n 150 --seed 0 [--real-negatives 0|1] [--write]

``--write`` rewrites the block between the ``fitted model`` markers in scratches.py.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from claimlens.bench.recapture import auc, fit_logistic
from claimlens.datasets import damage_suite as ds
from claimlens.vision.damage import scratches as S


def _box(r: dict) -> tuple[int, int, int, int] | None:
    return None if r.get("x1") in ("", None) else tuple(int(float(r[k])) for k in ("x1", "y1", "x2", "y2"))


def features_of(folder: Path, rows: list[dict]) -> np.ndarray:
    X = []
    for r in rows:
        rgb = np.asarray(Image.open(folder / r["image"]).convert("RGB"))
        res = S.analyse_region(rgb, _box(r))
        X.append([res.features[f] for f in S.FEATURES])
    return np.asarray(X, float)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=150)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--l2", type=float, default=1.0)
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--real-negatives", type=int, default=0,
                    help="also fit on the real damage boxes of the train half as genuine (1) or not (0)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = ds.generate_scratch_suite(Path(tmp), ds.DEFAULT_SOURCE, n=a.n, seed=a.seed, split="train")
        X = features_of(Path(tmp), rows)
    y = np.array([r["label"] == "artificial" for r in rows], float)
    real_rows = [r for r in ds.real_damage_rows(ds.DEFAULT_SOURCE, "train")]
    Xr = features_of(ds.DEFAULT_SOURCE, real_rows)
    Xf, yf = (np.vstack([X, Xr]), np.r_[y, np.zeros(len(Xr))]) if a.real_negatives else (X, y)
    mu, sd = Xf.mean(0), Xf.std(0) + 1e-9
    Z = (X - mu) / sd
    w = fit_logistic((Xf - mu) / sd, yf, l2=a.l2)
    z = Z @ w[1:] + w[0]
    p = 1 / (1 + np.exp(-z))
    model = {"bias": float(w[0]), "mean": dict(zip(S.FEATURES, map(float, mu))),
             "std": dict(zip(S.FEATURES, map(float, sd))), "weight": dict(zip(S.FEATURES, map(float, w[1:])))}
    pr = np.array([S.score_features(dict(zip(S.FEATURES, x)), model)[0] for x in Xr])
    like = Xr[:, S.FEATURES.index("stroke_density")] >= S.MIN_STROKE_DENSITY
    thr_suite = float(np.percentile(p[y == 0], 95))
    # per photo: a photo is flagged when any of its boxes is, so take the max over each photo's boxes
    per_photo: dict[str, float] = {}
    for r, sc, ok in zip(real_rows, pr, like):
        per_photo[r["image"]] = max(per_photo.get(r["image"], 0.0), float(sc) if ok else 0.0)
    thr_real = float(np.percentile(list(per_photo.values()), 95)) if per_photo else 0.0
    thr = round(max(thr_suite, thr_real), 3)
    print(json.dumps({"n_train": len(rows), "train_auc": auc(list(p[y == 1]), list(p[y == 0])),
                      "thr_suite_p95": thr_suite, "thr_real_p95": thr_real, "threshold": thr,
                      "train_tpr_at_threshold": float((p[y == 1] >= thr).mean()),
                      "real_train_boxes": len(real_rows), "real_train_box_flag_rate": float(((pr >= thr) & like).mean()),
                      "real_train_photo_flag_rate": float(np.mean([v >= thr for v in per_photo.values()])),
                      "weights": {k: round(v, 3) for k, v in model["weight"].items()}}, indent=1))
    if a.write:
        def fmt(d: dict) -> str:
            return "{" + ", ".join(f'"{k}": {v:.6g}' for k, v in d.items()) + "}"
        block = ("# --- fitted model start ---\nMODEL: dict[str, Any] = {\n"
                 f'    "bias": {model["bias"]:.6g},\n'
                 f'    "mean": {fmt(model["mean"])},\n'
                 f'    "std": {fmt(model["std"])},\n'
                 f'    "weight": {fmt(model["weight"])},\n'
                 "}\n"
                 f"THRESHOLD = {thr}\n# --- fitted model end ---\n")
        path = Path(S.__file__)
        text = path.read_text()
        text = re.sub(r"# --- fitted model start ---\n.*?# --- fitted model end ---\n", lambda _m: block, text,
                      flags=re.DOTALL)
        path.write_text(text)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
