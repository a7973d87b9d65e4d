"""Fit the Latin plate-likeness model (claimlens/vision/plates/latin.py MODEL, PLATE_SCORE_THRESHOLD).

Why: a claim photo holds more text than plates (watermarks, date stamps, phone numbers, stickers, VIN
labels), and a national plate format alone does not separate them. Every valid read of every candidate line
is one example: positive when it is the labelled plate read exactly, negative otherwise (a distractor, a
wrong read of the plate, a fragment of it). The reader then keeps the most plate-like read first.

Data: the generated Latin plate suite (claimlens/datasets/plates_latin_suite.py) with the ``--seeds``
given (default 0 and 2; seed 1 is the bench's held-out seed and is never seen here), ``--n`` plates and
``--negatives`` plate-less photos per seed, generated into a temporary folder.

Model: L2 logistic regression (Newton, ``--l2`` on the slopes) on standardised features
(:func:`claimlens.vision.plates.latin.plate_features`). Threshold: the lowest score at which the confident
per-image reads of the fit data (the most plate-like read, national format, weakest character >= the check's
``LATIN_MIN_CONFIDENCE``) are at least ``--precision`` (default 97 %) exact on the photos with a plate and
occur on at most ``--max-false`` (default 5 %) of the plate-less photos. The check reads Latin plates on
photos with role ``plate`` only, which show a plate: precision there is what matters, the plate-less rate is
a worst case. The printed grid shows precision and coverage for other thresholds.

    .venv/bin/python training/fit_latin_plate_scorer.py --seeds 0,2 --n 240 --negatives 60 [--write]
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
from pathlib import Path

import cv2
import numpy as np

from claimlens.bench.recapture import auc, fit_logistic
from claimlens.datasets.plates_latin_suite import generate
from claimlens.vision.logistic import write_model_block
from claimlens.vision.plates import PlateReader
from claimlens.vision.plates import latin as L


def examples(folder: Path, reader: PlateReader) -> list[dict]:
    """One row per valid read of every candidate: features, whether it is the plate read exactly, image. An
    image without any valid read gets one row with ``features`` None (it counts in the per-image rates)."""
    with open(folder / "labels.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    out = []
    lr = reader.latin_reader
    for r in rows:
        bgr = cv2.imread(str(folder / r["image"]), cv2.IMREAD_COLOR)
        reads = lr.read_candidates(bgr, reader.latin_candidates(bgr), max_plates=50, one_per_place=False)
        if not reads:
            out.append({"image": r["image"], "gt": r["plate_text"], "text": "", "national": False,
                        "confidence": 0.0, "y": 0.0, "features": None})
        for read in reads:
            out.append({"image": r["image"], "gt": r["plate_text"], "text": read.text.text,
                        "national": read.text.national, "confidence": read.text.confidence,
                        "y": float(bool(r["plate_text"]) and read.text.text == r["plate_text"]),
                        "features": read.features})
    return out


def operating_point(data: list[dict], p: np.ndarray, min_conf: float, threshold: float) -> dict:
    """Per image, the most plate-like read is confident when it is in a national format, its weakest
    character >= ``min_conf`` and its plate score >= ``threshold``: the rate of plate-less images with a
    confident read, and the precision / coverage of confident reads on the images with a plate."""
    images: dict[str, list[tuple[float, dict]]] = {}
    for d, score in zip(data, p):
        images.setdefault(d["image"], []).append((float(score), d))
    best = [max(v, key=lambda t: t[0]) for v in images.values()]
    plates = [b for b in best if b[1]["gt"]]
    empty = [b for b in best if not b[1]["gt"]]

    def confident(b: tuple[float, dict]) -> bool:
        return b[0] >= threshold and b[1]["national"] and b[1]["confidence"] >= min_conf

    sure = [b for b in plates if confident(b)]
    return {"min_confidence": min_conf, "threshold": threshold,
            "false_confident_rate": round(sum(map(confident, empty)) / max(len(empty), 1), 4),
            "confident_precision": round(sum(b[1]["y"] for b in sure) / max(len(sure), 1), 4),
            "confident_coverage": round(len(sure) / max(len(plates), 1), 4),
            "top1_exact": round(sum(b[1]["y"] for b in plates) / max(len(plates), 1), 4)}


def choose_threshold(data: list[dict], p: np.ndarray, min_conf: float, max_false: float,
                     precision: float) -> tuple[float, dict]:
    """The lowest plate score at which confident reads on plate photos are at least ``precision`` exact and
    at most ``max_false`` of the plate-less photos get one."""
    for t in np.round(np.arange(0.05, 0.99, 0.01), 2):
        report = operating_point(data, p, min_conf, float(t))
        if report["false_confident_rate"] <= max_false and report["confident_precision"] >= precision:
            return float(t), report
    return 0.99, operating_point(data, p, min_conf, 0.99)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0,2")
    ap.add_argument("--n", type=int, default=240)
    ap.add_argument("--negatives", type=int, default=60)
    ap.add_argument("--l2", type=float, default=1.0)
    ap.add_argument("--max-false", type=float, default=0.05)
    ap.add_argument("--precision", type=float, default=0.97)
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    from claimlens.checks.plate_vin import LATIN_MIN_CONFIDENCE

    reader = PlateReader(latin=True)
    data: list[dict] = []
    for seed in (int(v) for v in a.seeds.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            generate(Path(tmp), n=a.n, negatives=a.negatives, seed=seed)
            data += [{**d, "image": f"{seed}/{d['image']}"} for d in examples(Path(tmp), reader)]
    everything = data
    data = [d for d in data if d["features"] is not None]
    X = np.array([[d["features"][k] for k in L.FEATURES] for d in data], float)
    y = np.array([d["y"] for d in data], float)
    mu, sd = X.mean(0), X.std(0) + 1e-9
    w = fit_logistic((X - mu) / sd, y, l2=a.l2)
    p = 1 / (1 + np.exp(-np.clip(((X - mu) / sd) @ w[1:] + w[0], -50, 50)))
    # images without a valid read: score 0 (never confident), so every image counts in the rates
    scores = np.zeros(len(everything))
    scores[[i for i, d in enumerate(everything) if d["features"] is not None]] = p
    threshold, report = choose_threshold(everything, scores, LATIN_MIN_CONFIDENCE, a.max_false, a.precision)
    grid = [operating_point(everything, scores, c, t) for c in (0.6, 0.7, 0.8, 0.9) for t in (0.5, 0.7, 0.8, 0.9)]
    model = {"bias": float(w[0]), "mean": dict(zip(L.FEATURES, map(float, mu))),
             "std": dict(zip(L.FEATURES, map(float, sd))), "weight": dict(zip(L.FEATURES, map(float, w[1:])))}
    print(json.dumps({"examples": len(data), "positives": int(y.sum()),
                      "auc": round(auc(list(p[y == 1]), list(p[y == 0])), 4), "threshold": threshold, **report,
                      "grid": grid, "model": model}, indent=1))
    if a.write:
        write_model_block(Path(L.__file__), model, {"PLATE_SCORE_THRESHOLD": threshold})


if __name__ == "__main__":
    main()
