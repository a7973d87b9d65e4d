"""``claimlens bench vins DIR``: VIN reading accuracy before and after the check-digit-aware correction.

``DIR/labels.csv`` (or ``--opt labels=FILE``, its image paths still relative to DIR): ``image,vin``. The
project's own ground truth for the real VIN photos is ``datasets/vin_labels.csv`` (paths relative to
``../shared/data/vin_plates/roboflow_vin_detection``)::

    claimlens bench vins ../shared/data/vin_plates/roboflow_vin_detection --opt labels=datasets/vin_labels.csv

An image that is a text-line crop (aspect >= 3, height <= 120 px) is read as a line; any other image is a
photo and the VIN line is localised first (PP-OCRv6 text detection). Metrics: ``exact_accuracy`` (after
corrections), ``exact_accuracy_raw`` (grammar-constrained read before them), ``char_accuracy`` (and
``_raw``), ``ms_per_image`` / ``cpu_ms_per_image`` / ``p95_ms``, the corrections (applied, right, wrong),
the check's operating point (coverage and precision at its confidence threshold) and per split (the first
path component, e.g. ``test`` / ``valid``). Where YOLO labels sit next to the images
(``.../labels/<stem>.txt``) the peer ``labelled_box`` reads the labelled VIN-line box instead of localising:
recognition alone. ``--opt peers=0`` skips it.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from claimlens.bench.plates import _accuracy, levenshtein, read_labels


def _is_line_crop(shape: tuple[int, ...]) -> bool:
    h, w = shape[:2]
    return h <= 120 and w / max(h, 1) >= 3.0


def _yolo_box(image_path: Path, shape: tuple[int, ...]) -> tuple[float, float, float, float] | None:
    label = image_path.parent.parent / "labels" / (image_path.stem + ".txt")
    if not label.is_file():
        return None
    parts = label.read_text().split()
    if len(parts) < 5:
        return None
    h, w = shape[:2]
    cx, cy, bw, bh = (float(v) for v in parts[1:5])
    return ((cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h)


def run(dataset_dir: Path | None, *, suite: bool, options: dict[str, str]) -> dict[str, Any]:
    from claimlens.checks.plate_vin import VIN_MIN_CONFIDENCE
    from claimlens.vision.vin import VinReader, check_digit_ok, normalise, vin_line_crop

    if suite:
        raise SystemExit("the vins bench has no generated suite; give a folder with labels.csv")
    if dataset_dir is None:
        raise SystemExit("usage: claimlens bench vins DIR [--opt labels=FILE]")
    rows = read_labels(dataset_dir, options, "vin")
    reader = VinReader(threads=int(options.get("threads", 1)), tta=options.get("tta", "1") != "0")
    t_start = time.perf_counter()
    reader.read(np.zeros((64, 256, 3), np.uint8))  # warm-up: sessions and sha256 checks
    results: list[dict[str, Any]] = []
    peer: list[dict[str, Any]] = []
    for r in rows:
        path = dataset_dir / r["image"]
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise SystemExit(f"unreadable image: {path}")
        gt = normalise(r["vin"])
        t0, c0 = time.perf_counter(), time.process_time()
        if _is_line_crop(bgr.shape):
            reads = reader.read_line(bgr)
        else:
            reads = reader.read(np.ascontiguousarray(bgr[..., ::-1]))
        wall, cpu = (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000
        best = reads[0] if reads else None
        results.append(_row(r, gt, best, wall, cpu))
        if options.get("peers", "1") != "0":
            box = _yolo_box(path, bgr.shape)
            if box is not None:
                t0 = time.perf_counter()
                lr = reader.read_line(vin_line_crop(bgr, box, margin=reader.LINE_MARGIN))
                peer.append(_row(r, gt, lr[0] if lr else None, (time.perf_counter() - t0) * 1000, 0.0))
    metrics = _metrics(results, VIN_MIN_CONFIDENCE)
    metrics["gt_check_digit_valid"] = sum(check_digit_ok(x["gt"]) for x in results)
    splits: dict[str, list] = {}
    for x in results:
        splits.setdefault(x["image"].split("/")[0] if "/" in x["image"] else "", []).append(x)
    if len(splits) > 1:
        metrics["per_split"] = {k: {"n": len(v),
                                    "exact_accuracy": round(sum(x["pred"] == x["gt"] for x in v) / len(v), 4),
                                    "exact_accuracy_raw": round(sum(x["raw"] == x["gt"] for x in v) / len(v), 4)}
                                for k, v in sorted(splits.items())}
    out: dict[str, Any] = {"bench": "vins", "dataset": str(dataset_dir), "n_images": len(results),
                           "seconds": round(time.perf_counter() - t_start, 2), "metrics": metrics, "peers": {}}
    if peer:
        out["peers"]["labelled_box"] = _metrics(peer, VIN_MIN_CONFIDENCE)
    if options.get("items"):
        # every read, for fitting the VIN operating point (training/fit_plate_operating_points.py vin)
        with open(options["items"], "w", encoding="utf-8") as f:
            json.dump([{k: x[k] for k in ("image", "gt", "pred", "raw", "conf")} for x in results], f, indent=0)
    if options.get("errors", "0") == "1":
        out["errors"] = [{"image": x["image"], "gt": x["gt"], "raw": x["raw"], "pred": x["pred"],
                          "corrected": x["corrected"], "conf": round(x["conf"], 3)}
                         for x in results if x["pred"] != x["gt"]]
    return out


def _row(r: dict[str, str], gt: str, best, wall: float, cpu: float) -> dict[str, Any]:
    return {"image": r["image"], "gt": gt, "pred": best.vin if best else "", "raw": best.raw if best else "",
            "conf": best.confidence if best else 0.0, "corrected": [list(c) for c in best.corrected] if best else [],
            "wall": wall, "cpu": cpu}


def _metrics(results: list[dict[str, Any]], min_conf: float) -> dict[str, Any]:
    after = _accuracy([(x["pred"], x["gt"]) for x in results])
    before = _accuracy([(x["raw"], x["gt"]) for x in results])
    corrected = [x for x in results if x["corrected"]]
    from claimlens.checks.plate_vin import vin_confident, would_accuse

    # the check's own rule (plate_vin.vin_confident: well formed, weakest character >= min_conf)
    ok = [x for x in results if x["pred"] and vin_confident({"vin": x["pred"], "confidence": x["conf"]})]
    return {
        "exact_accuracy": after["exact_accuracy"], "exact_accuracy_raw": before["exact_accuracy"],
        "char_accuracy": after["char_accuracy"], "char_accuracy_raw": before["char_accuracy"],
        "found_rate": round(sum(bool(x["pred"]) for x in results) / max(len(results), 1), 4),
        "ms_per_image": round(statistics.fmean(x["wall"] for x in results), 2) if results else None,
        "cpu_ms_per_image": round(statistics.fmean(x["cpu"] for x in results), 2) if results else None,
        "p95_ms": round(float(np.percentile([x["wall"] for x in results], 95)), 2) if results else None,
        "corrections": {"applied": len(corrected),
                        "fixed": sum(x["raw"] != x["gt"] and x["pred"] == x["gt"] for x in corrected),
                        "broke": sum(x["raw"] == x["gt"] and x["pred"] != x["gt"] for x in corrected),
                        "neutral_wrong": sum(x["raw"] != x["gt"] and x["pred"] != x["gt"] for x in corrected)},
        "check_operating_point": {
            "min_confidence": min_conf, "coverage": round(len(ok) / max(len(results), 1), 4),
            "precision": round(sum(x["pred"] == x["gt"] for x in ok) / len(ok), 4) if ok else None,
            "n_confident": len(ok), "n_confident_wrong": sum(x["pred"] != x["gt"] for x in ok),
            "n_would_accuse": sum(would_accuse(x["pred"], x["gt"], vin=True) for x in ok),
            "by_threshold": {str(t): {"coverage": round(len(s) / max(len(results), 1), 4),
                                      "precision": round(sum(x["pred"] == x["gt"] for x in s) / max(len(s), 1), 4)}
                             for t in (0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95)
                             for s in [[x for x in results if x["pred"] and x["conf"] >= t]]},
        },
        "levenshtein_mean": round(statistics.fmean(levenshtein(x["pred"], x["gt"]) for x in results), 3)
        if results else None,
    }
