"""``claimlens bench recapture [DIR] [--suite] [--opt k=v]``: photo-of-a-screen / printout / screenshot scores.

DIR holds ``labels.csv`` (``image,label`` with label ``real`` | ``recaptured``; an optional ``kind`` column,
e.g. ``screen`` / ``print`` / ``screenshot``, gives per-kind numbers). ``--suite`` generates the project's
suite from the photos under DIR (default: ../shared/data car_damage_roboflow + vin_plates) into a temporary
folder first (:func:`claimlens.datasets.integrity_suite.generate_recapture_suite`).

Options: ``all_label=real`` (no labels.csv: every image under DIR is that label; measures the false-alarm
rate on a folder of genuine photos), ``split=dev|test|all`` on a real set listed in
``datasets/recapture_real_split.csv`` (the fixed halves by scene: docs/integrity.md; ``kind`` then reads
laptop / phone / print / screen, and ``per_source`` separates camera originals from messenger-size photos),
``messenger=1`` (re-encode every photo as a messenger does first: claimlens.bench.messenger),
``split=test|calib|all`` and ``n=200``, ``seed=0`` (suite),
``keep=DIR`` (write the suite there and keep it), ``limit=N``, ``fit=1`` (fit the logistic weights on this
set and return them under ``fit``; how the shipped weights were made, on ``split=calib``).

Metrics: ``auc`` and ``tpr_at_fpr01`` of the combined score max(recapture, screenshot) over all recaptured
kinds; ``flag_rate`` (the check emits a LOW-or-higher finding on a survey photo), ``flag_rate_real``
(the same over the real photos); ``ms_per_image`` (analysis, decode
excluded; ``decode_ms_per_image`` apart); per kind: AUC, TPR at 1 % FPR and flag rate against all real
images, for the recapture score, the screenshot score and the combined one.
"""

from __future__ import annotations

import csv
import hashlib
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from claimlens.bench.common import suite_folder
from claimlens.vision.decode import decode_photo

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".heic", ".bmp", ".tif", ".tiff")


# ------------------------------------------------------------------------------------------- metrics


def auc(pos: list[float], neg: list[float]) -> float | None:
    """Area under the ROC curve (Mann-Whitney, ties count half); None when a class is empty."""
    if not pos or not neg:
        return None
    s = np.concatenate([np.asarray(pos, float), np.asarray(neg, float)])
    ranks = _rankdata(s)
    r_pos = ranks[: len(pos)].sum()
    return float((r_pos - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def _rankdata(a: np.ndarray) -> np.ndarray:
    order = np.argsort(a, kind="mergesort")
    ranks = np.empty(len(a), float)
    sa = a[order]
    i = 0
    while i < len(a):
        j = i
        while j + 1 < len(a) and sa[j + 1] == sa[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def tpr_at_fpr(pos: list[float], neg: list[float], fpr: float = 0.01) -> float | None:
    """Largest TPR with a threshold whose false-positive rate on ``neg`` is at most ``fpr``."""
    if not pos or not neg:
        return None
    ns = np.sort(np.asarray(neg, float))[::-1]
    k = int(np.floor(fpr * len(ns)))
    thr = ns[k] if k < len(ns) else -np.inf  # scores strictly above the (k+1)-th largest negative
    return float((np.asarray(pos, float) > thr).mean())


def rnd(v: float | None, nd: int = 4) -> float | None:
    return None if v is None else round(float(v), nd)


# --------------------------------------------------------------------------------------------- input


def read_labels(dataset_dir: Path, options: dict[str, str], positive: str, negative: str,
                mask_column: bool = False) -> list[dict[str, str]]:
    """Rows {image, label, kind[, mask]} from labels.csv, or every image under DIR with ``all_label``."""
    if "all_label" in options:
        label = options["all_label"]
        if label not in (positive, negative):
            raise SystemExit(f"all_label must be {positive} or {negative}")
        files = sorted(p for p in dataset_dir.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        if not files:
            raise SystemExit(f"no images under {dataset_dir}")
        return [{"image": p.relative_to(dataset_dir).as_posix(), "label": label, "kind": label, "mask": ""}
                for p in files]
    path = dataset_dir / "labels.csv"
    if not path.is_file():
        raise SystemExit(f"{path} not found (or pass --opt all_label={negative} for a folder of genuine photos)")
    rows = []
    with path.open(newline="") as f:
        for r in csv.DictReader(f):
            label = (r.get("label") or "").strip()
            if label not in (positive, negative):
                raise SystemExit(f"labels.csv: label must be {positive} or {negative}, got {label!r}")
            img = (r.get("image") or "").strip()
            if not (dataset_dir / img).is_file():
                raise SystemExit(f"labels.csv: missing file {img}")
            mask = (r.get("mask") or "").strip() if mask_column else ""
            if mask and not (dataset_dir / mask).is_file():
                raise SystemExit(f"labels.csv: missing mask {mask}")
            rows.append({"image": img, "label": label, "kind": (r.get("kind") or label).strip() or label,
                         "mask": mask})
    if not rows:
        raise SystemExit(f"{path} lists no images")
    return rows


def prepare(name: str, dataset_dir: Path | None, suite: bool, options: dict[str, str]
            ) -> tuple[Path, tempfile.TemporaryDirectory | None, dict[str, Any]]:
    """The folder to read (generating the suite first with --suite) and a description of it."""
    from claimlens.datasets import integrity_suite as gen

    if not suite:
        if dataset_dir is None:
            raise SystemExit(f"claimlens bench {name} needs DIR (or --suite)")
        return dataset_dir, None, {}
    sources = [dataset_dir] if dataset_dir is not None else list(gen.DEFAULT_SOURCES)
    out, tmp = suite_folder(name, options)
    n, seed, split = int(options.get("n", 200)), int(options.get("seed", 0)), options.get("split", "test")
    t0 = time.perf_counter()
    gen.GENERATORS[name](out, sources, n=n, seed=seed, split=split)
    desc = {"generated_from": [str(s) for s in sources], "n_sources": n, "seed": seed, "split": split,
            "generate_seconds": round(time.perf_counter() - t0, 1), "suite_dir": str(out) if tmp is None else None}
    return out, tmp, desc


# --------------------------------------------------------------------------------------------- bench


def fit_logistic(X: np.ndarray, y: np.ndarray, l2: float = 1e-2, iters: int = 50) -> np.ndarray:
    """Weights (bias first) of an L2-regularised logistic regression (Newton's method)."""
    A = np.hstack([np.ones((len(X), 1)), X])
    w = np.zeros(A.shape[1])
    for _ in range(iters):
        p = 1 / (1 + np.exp(-np.clip(A @ w, -50, 50)))
        grad = A.T @ (p - y) + l2 * np.r_[0, w[1:]]
        H = (A * (p * (1 - p))[:, None]).T @ A + l2 * np.diag(np.r_[0, np.ones(len(w) - 1)])
        w -= np.linalg.solve(H + 1e-9 * np.eye(len(w)), grad)
    return w


def real_split_rows(folder: Path, rows: list[dict[str, str]], options: dict[str, str], suite: bool,
                    split_csv: Path | None = None) -> list[dict[str, str]]:
    """Keep the rows of the fixed dev / test half (``--opt split=dev|test``) of a real set whose images are
    listed in the split CSV (recapture_real: datasets/recapture_real_split.csv); ``kind`` becomes the
    finer ``kind_detail`` (laptop / phone / print) and ``source`` is kept. Other folders and ``split=all``
    are returned whole."""
    from claimlens.datasets import integrity_splits as splits

    split = options.get("split", "all")
    path = split_csv or splits.RECAPTURE_SPLIT_CSV
    if suite or not path.is_file():
        return rows
    table = splits.read_recapture_split(path)
    if not all(r["image"] in table for r in rows):
        if split != "all":
            raise SystemExit(f"--opt split={split}: {folder} is not a set listed in {path}")
        return rows
    out = []
    for r in rows:
        t = table[r["image"]]
        if split in ("all", t["split"]):
            out.append(r | {"kind": t["kind_detail"] if r["label"] != "real" else r["kind"], "source": t["source"],
                            "scene": t["scene"]})
    return out


def photo_bytes(folder: Path, image: str, options: dict[str, str]) -> bytes:
    """The file's bytes, or its messenger copy with ``--opt messenger=1`` (claimlens.bench.messenger)."""
    data = (folder / image).read_bytes()
    if options.get("messenger", "0") == "1":
        from claimlens.bench.messenger import messenger_copy

        data = messenger_copy(data, seed=int(hashlib.md5(image.encode()).hexdigest()[:8], 16))
    return data


def run(dataset_dir: Path | None, *, suite: bool, options: dict[str, str]) -> dict[str, Any]:
    from claimlens.bench.integrity_fa import survey_info
    from claimlens.checks.base import Severity
    from claimlens.checks.integrity import RecaptureCheck
    from claimlens.vision.integrity import recapture as rc

    t_start = time.perf_counter()
    folder, tmp, desc = prepare("recapture", dataset_dir, suite, options)
    check = RecaptureCheck()
    try:
        rows = real_split_rows(folder, read_labels(folder, options, "recaptured", "real"), options, suite)
        if options.get("limit"):
            rows = rows[: int(options["limit"])]
        out = []
        flags: dict[int, bool] = {}
        t_dec, t_an = [], []
        for r in rows:
            data = photo_bytes(folder, r["image"], options)
            t0 = time.perf_counter()
            photo = decode_photo(data)
            t1 = time.perf_counter()
            res = rc.analyse(photo)
            t2 = time.perf_counter()
            t_dec.append(t1 - t0)
            t_an.append(t2 - t1)
            # flagged exactly when the check would emit a LOW-or-higher finding on a survey photo
            flags[id(res)] = any(f.severity >= Severity.LOW for f in check.findings(photo, survey_info(r["image"]), res))
            out.append((r, res))
    finally:
        if tmp is not None:
            tmp.cleanup()

    def scores(kind_filter: str | None, which: str) -> tuple[list[float], list[float]]:
        pos, neg = [], []
        for r, res in out:
            s = {"recapture": res.score, "screenshot": res.screenshot_score,
                 "combined": max(res.score, res.screenshot_score)}[which]
            if r["label"] == "real":
                neg.append(s)
            elif kind_filter is None or r["kind"] == kind_filter:
                pos.append(s)
        return pos, neg

    def flagged(res: Any) -> bool:
        return flags[id(res)]

    pos, neg = scores(None, "combined")
    kinds = sorted({r["kind"] for r, _ in out if r["label"] == "recaptured"})
    per_kind = {}
    for k in kinds:
        entry: dict[str, Any] = {"n": sum(1 for r, _ in out if r["kind"] == k)}
        for which in ("recapture", "screenshot", "combined"):
            p, n_ = scores(k, which)
            entry[which] = {"auc": rnd(auc(p, n_)), "tpr_at_fpr01": rnd(tpr_at_fpr(p, n_))}
        entry["flag_rate"] = rnd(np.mean([flagged(res) for r, res in out if r["kind"] == k]))
        per_kind[k] = entry
    reals = [res for r, res in out if r["label"] == "real"]
    metrics: dict[str, Any] = {
        "auc": rnd(auc(pos, neg)), "tpr_at_fpr01": rnd(tpr_at_fpr(pos, neg)),
        "flag_rate": rnd(np.mean([flagged(res) for _, res in out])),
        "flag_rate_real": rnd(np.mean([flagged(res) for res in reals])) if reals else None,
        "flag_rate_real_recapture": rnd(np.mean([res.score >= rc.RECAPTURE_LOW for res in reals])) if reals else None,
        "flag_rate_real_screenshot": rnd(np.mean([res.screenshot_score >= rc.SCREENSHOT_THRESHOLD
                                                          and rc.screen_geometry(res.features) for res in reals])) if reals else None,
        "ms_per_image": round(1000 * statistics.mean(t_an), 2),
        "ms_per_image_p95": round(1000 * float(np.percentile(t_an, 95)), 2),
        "decode_ms_per_image": round(1000 * statistics.mean(t_dec), 2),
        "per_kind": per_kind,
        "thresholds": {"recapture_low": rc.RECAPTURE_LOW, "recapture_medium": rc.RECAPTURE_THRESHOLD,
                       "screenshot_low": rc.SCREENSHOT_THRESHOLD, "screenshot_medium": rc.SCREENSHOT_MEDIUM},
    }
    sources = sorted({r.get("source", "") for r, _ in out} - {""})
    if len(sources) > 1:  # per source: camera originals and messenger-size photos apart
        metrics["per_source"] = {}
        for src in sources:
            p = [max(res.score, res.screenshot_score) for r, res in out if r.get("source") == src and r["label"] != "real"]
            n_ = [max(res.score, res.screenshot_score) for r, res in out if r.get("source") == src and r["label"] == "real"]
            metrics["per_source"][src] = {"n": len(p) + len(n_), "auc": rnd(auc(p, n_)), "tpr_at_fpr01": rnd(tpr_at_fpr(p, n_)),
                                          "flag_rate_real": rnd(np.mean([flagged(res) for r, res in out if r.get("source") == src
                                                                         and r["label"] == "real"])) if n_ else None}
    if "screenshot" in per_kind:
        metrics["screenshot_tpr_at_fpr01"] = per_kind["screenshot"]["screenshot"]["tpr_at_fpr01"]
    result: dict[str, Any] = {"bench": "recapture", "dataset": str(dataset_dir or "generated"), "n_images": len(out),
                              "split": options.get("split", "all") if not suite else None,
                              "messenger": options.get("messenger", "0") == "1",
                              "seconds": round(time.perf_counter() - t_start, 1), "metrics": metrics, "peers": {}}
    if desc:
        result["suite"] = desc
    if options.get("fit"):
        result["fit"] = _fit(out, rc)
    if options.get("dump"):
        result["per_image"] = [{"image": r["image"], "label": r["label"], "kind": r["kind"],
                                "score": rnd(res.score), "screenshot_score": rnd(res.screenshot_score),
                                "features": {k: rnd(v) for k, v in res.features.items()}} for r, res in out]
    return result


def _fit(out: list, rc: Any) -> dict[str, Any]:
    """Logistic weights for both scores on this set (recapture: screen+print vs real; screenshot: screenshot
    vs real and other kinds)."""
    fits = {}
    for name, weights, positive in (("recapture", rc.RECAPTURE_WEIGHTS, ("screen", "print")),
                                    ("screenshot", rc.SCREENSHOT_WEIGHTS, ("screenshot",))):
        keys = [k for k in weights if k != "bias"]
        sel = [(r, res) for r, res in out if r["label"] == "real" or r["kind"] in positive
               or (name == "screenshot")]
        X = np.array([[res.features[k] for k in keys] for _, res in sel], float)
        y = np.array([1.0 if r["kind"] in positive else 0.0 for r, _ in sel])
        w = fit_logistic(X, y)
        fits[name] = {"bias": round(float(w[0]), 3)} | {k: round(float(v), 3) for k, v in zip(keys, w[1:])}
    return fits
