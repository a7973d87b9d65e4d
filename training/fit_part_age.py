"""Fit the part-age contrast model (claimlens/vision/damage/part_age.py MODEL, THRESHOLD).

Data: the *train* half of the generated parts suite (labels.csv: fresh | old parts, source photos whose path
hashes to "calib"), generated into a temporary folder by ``claimlens bench parts --suite --opt split=train``.
Model: L2 logistic regression (Newton, l2=1.0 on the slopes) on standardised features (the suite is
balanced: one fresh and one aged variant per photo). Threshold: 95th percentile of the train fresh scores
(5 % false alarms on the train half).

    python training/fit_part_age.py --n 120 --seed 0 [--write]
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from claimlens.bench import parts
from claimlens.vision.damage import part_age as PA


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=120)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    res = parts.run(None, suite=True, options={"split": "train", "n": str(a.n), "seed": str(a.seed),
                                               "fit_age": "1", "pairs": "0"})
    m = res["metrics"]
    model = m["fitted_age_model"]
    thr = round(m["fitted_age_threshold_fresh_p95"], 3)
    print(json.dumps({"threshold": thr, "weights": {k: round(v, 3) for k, v in model["weight"].items()}}, indent=1))
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
        path = Path(PA.__file__)
        text = re.sub(r"# --- fitted model start ---\n.*?# --- fitted model end ---\n", lambda _m: block,
                      path.read_text(), flags=re.DOTALL)
        path.write_text(text)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
