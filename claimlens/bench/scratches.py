"""``claimlens bench scratches [DIR] [--suite] [--opt k=v]``: hand-made vs accidental scratches.

DIR holds ``labels.csv`` (``image,label[,x1,y1,x2,y2]`` with label ``genuine`` | ``artificial``; the box is
the scratched region, the whole image when empty; an optional ``kind`` column gives per-kind numbers).
``--suite`` generates the project's scratch suite (:func:`claimlens.datasets.damage_suite.generate_scratch_suite`)
from the photos under DIR (default ../shared/data/car_damage_roboflow) into a temporary folder first.

With ``real=1`` on a car_damage_train-style folder (``splits.csv``; #14): the labelled ``scratch`` boxes
(``classes=`` to change) of the damage-group photos of ``split=val`` are the adjuster's regions, all genuine;
``by_half`` gives the rates on the dev / test halves (:func:`claimlens.datasets.damage_suite.dev_test_half`,
by photo group), ``flag_rate`` / ``flag_rate_medium`` are the test half's (:func:`real_rates`).

Options: ``real=1`` (no labels.csv needed: every labelled damage box of a YOLO-labelled folder such as
car_damage_roboflow is a ``genuine`` region, photos without boxes are scored whole; ``flag_rate`` is then
the false-alarm rate on real damage, per image = any box flagged), ``split=test|train|all`` (suite and
``real``: default test for the suite, all for real), ``n=150``, ``seed=0``, ``keep=DIR`` (keep the suite),
``limit=N``, ``mp12=N`` (also time the whole ``damage_forensics`` per-photo phase on N 12 MP phone-like
JPEGs made from real photos: with the adjuster's boxes, i.e. without the detector, and with the detector
finding the regions).

Metrics: ``auc`` of the score (null with one class), ``tpr_at_fpr05`` / ``tpr_at_fpr01``, ``flag_rate``
(regions scratch-like and at or above the shipped threshold), ``flag_rate_genuine``, ``flag_rate_artificial``,
``ms_per_image`` (region analysis, decode excluded), per kind AUC against all genuine regions,
``trivial_baselines_auc`` (max(AUC, 1 - AUC) of region colour/brightness statistics with no notion of
strokes: a realistic suite keeps them near 0.5), ``scratch_like_fraction`` (regions passing the gate), and
the process peak RSS.
"""

from __future__ import annotations

import csv
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from claimlens.bench.common import peak_rss_mb, suite_from_photos
from claimlens.bench.recapture import auc, rnd, tpr_at_fpr


def read_rows(folder: Path) -> list[dict[str, str]]:
    path = folder / "labels.csv"
    if not path.is_file():
        raise SystemExit(f"{path} not found (or pass --opt real=1 for a YOLO-labelled folder of real damage)")
    rows = []
    with path.open(newline="") as f:
        for r in csv.DictReader(f):
            label = (r.get("label") or "").strip()
            if label not in ("genuine", "artificial"):
                raise SystemExit(f"labels.csv: label must be genuine or artificial, got {label!r}")
            if not (folder / r["image"]).is_file():
                raise SystemExit(f"labels.csv: missing file {r['image']}")
            rows.append({k: (v or "").strip() for k, v in r.items() if k} | {"kind": (r.get("kind") or label).strip()})
    if not rows:
        raise SystemExit(f"{path} lists no images")
    return rows


def box_of(r: dict[str, Any]) -> tuple[int, int, int, int] | None:
    try:
        return tuple(int(float(r[k])) for k in ("x1", "y1", "x2", "y2"))  # type: ignore[return-value]
    except (KeyError, TypeError, ValueError):
        return None


TRIVIAL = ("mean_intensity", "intensity_minus_ring", "mean_saturation", "mean_hue_cos", "intensity_std")


def trivial_features(crop: np.ndarray, inner: tuple[int, int, int, int]) -> dict[str, float]:
    """Region statistics with no notion of strokes (for the trivial baselines, max(AUC, 1 - AUC))."""
    import cv2

    x1, y1, x2, y2 = inner
    reg = crop[y1:y2, x1:x2].astype(np.float32)
    m = np.ones(crop.shape[:2], bool)
    m[y1:y2, x1:x2] = False
    ring = crop[m].astype(np.float32) if m.sum() > 100 else reg.reshape(-1, 3)
    hsv = cv2.cvtColor(crop[y1:y2, x1:x2], cv2.COLOR_RGB2HSV).reshape(-1, 3).astype(np.float32)
    lum = reg.mean(axis=2)
    return {"mean_intensity": float(lum.mean()), "intensity_minus_ring": float(lum.mean() - ring.mean()),
            "mean_saturation": float(hsv[:, 1].mean()), "mean_hue_cos": float(np.cos(hsv[:, 0] / 90 * np.pi).mean()),
            "intensity_std": float(lum.std())}


def run(dataset_dir: Path | None, *, suite: bool, options: dict[str, str]) -> dict[str, Any]:
    from claimlens.datasets import damage_suite as ds
    from claimlens.vision.damage import scratches as S

    t_start = time.perf_counter()
    tmp = None
    desc: dict[str, Any] = {}
    real = options.get("real", "0") not in ("0", "", "false")
    if suite:
        folder, tmp, desc = suite_from_photos("scratches", ds.generate_scratch_suite, dataset_dir or ds.DEFAULT_SOURCE, options, 150)
        rows = read_rows(folder)
    elif dataset_dir is None:
        raise SystemExit("claimlens bench scratches needs DIR (or --suite)")
    elif real and (dataset_dir / "splits.csv").is_file():
        folder = dataset_dir
        classes = tuple(options.get("classes", ",".join(ds.SCRATCH_CLASSES)).split(","))
        rows = ds.taxonomy_rows(dataset_dir, classes, options.get("split", "val"), "damage")
        desc = {"real_damage_boxes": True, "taxonomy": True, "split": options.get("split", "val"), "classes": classes}
    elif real or not (dataset_dir / "labels.csv").is_file() and (dataset_dir / "data.yaml").is_file():
        folder = dataset_dir
        rows = ds.real_damage_rows(dataset_dir, options.get("split", "all"))
        desc = {"real_damage_boxes": True, "split": options.get("split", "all")}
    else:
        folder = dataset_dir
        rows = read_rows(folder)
    if options.get("limit"):
        rows = rows[: int(options["limit"])]
    out = []
    t_an = []
    base_feats: list[dict[str, float]] = []
    try:
        for r in rows:
            rgb = np.asarray(Image.open(folder / r["image"]).convert("RGB"))
            t0 = time.perf_counter()
            res = S.analyse_region(rgb, box_of(r))
            t_an.append(time.perf_counter() - t0)
            base_feats.append(trivial_features(res._maps["crop"], res._maps["inner"]))
            res._maps.clear()  # the overlay's maps are not needed here; keeps memory flat
            out.append((r, res))
    finally:
        if tmp is not None:
            tmp.cleanup()
    pos = [res.score for r, res in out if r["label"] == "artificial"]
    neg = [res.score for r, res in out if r["label"] == "genuine"]
    flags = [res.flagged for _, res in out]
    per_image: dict[str, bool] = {}
    for r, res in out:
        per_image[r["image"]] = per_image.get(r["image"], False) or res.flagged
    metrics: dict[str, Any] = {
        "auc": rnd(auc(pos, neg)), "tpr_at_fpr05": rnd(tpr_at_fpr(pos, neg, 0.05)),
        "tpr_at_fpr01": rnd(tpr_at_fpr(pos, neg, 0.01)),
        "flag_rate": rnd(float(np.mean(list(per_image.values())))) if per_image else None,
        "flag_rate_regions": rnd(float(np.mean(flags))) if flags else None,
        "flag_rate_genuine": rnd(float(np.mean([res.flagged for r, res in out if r["label"] == "genuine"])))
        if neg else None,
        "flag_rate_artificial": rnd(float(np.mean([res.flagged for r, res in out if r["label"] == "artificial"])))
        if pos else None,
        "scratch_like_fraction": rnd(float(np.mean([res.scratch_like for _, res in out]))) if out else None,
        # flags that the claim context may raise to MEDIUM (score >= MEDIUM_THRESHOLD as well; #14)
        "flag_rate_medium_genuine": _medium_rate([res for r, res in out if r["label"] == "genuine"]),
        "flag_rate_medium_artificial": _medium_rate([res for r, res in out if r["label"] == "artificial"]),
        "ms_per_image": round(1000 * statistics.mean(t_an), 2) if t_an else None,
        "ms_per_image_p95": round(1000 * float(np.percentile(t_an, 95)), 2) if t_an else None,
        "threshold": S.THRESHOLD, "n_regions": len(out), "peak_rss_mb": peak_rss_mb(),
    }
    if pos and neg:
        # colour / brightness baselines that a realistic suite must not let separate the classes
        lab = [r["label"] for r, _ in out]
        metrics["trivial_baselines_auc"] = {
            k: rnd(max(a, 1 - a)) for k in TRIVIAL for a in
            [auc([b[k] for b, y in zip(base_feats, lab) if y == "artificial"],
                 [b[k] for b, y in zip(base_feats, lab) if y == "genuine"])]}
    kinds = sorted({r["kind"] for r, _ in out if r["label"] == "artificial"})
    if kinds:
        metrics["per_kind"] = {k: {"n": sum(1 for r, _ in out if r["kind"] == k),
                                   "auc": rnd(auc([res.score for r, res in out if r["kind"] == k], neg)),
                                   "flag_rate": rnd(float(np.mean([res.flagged for r, res in out if r["kind"] == k])))}
                               for k in kinds}
    if desc.get("taxonomy"):
        metrics["by_half"] = {h: real_rates([(r, res) for r, res in out if r["half"] == h]) for h in ("dev", "test")}
        metrics.update({k: metrics["by_half"]["test"][k] for k in ("flag_rate", "flag_rate_medium")})
        metrics["medium_threshold"] = S.MEDIUM_THRESHOLD
    if options.get("mp12"):
        metrics["check_12mp"] = time_12mp(int(options["mp12"]))
    result: dict[str, Any] = {"bench": "scratches", "dataset": str(dataset_dir or "generated"),
                              "n_images": len(per_image), "seconds": round(time.perf_counter() - t_start, 1),
                              "metrics": metrics, "peers": {}}
    if desc:
        result["suite"] = desc
    if options.get("dump"):
        result["per_image"] = [{"image": r["image"], "label": r["label"], "kind": r["kind"], "score": rnd(res.score),
                                "scratch_like": res.scratch_like, "half": r.get("half"),
                                "top": res.top(3)} for r, res in out]
    return result


def _medium_rate(results: list[Any]) -> float | None:
    from claimlens.vision.damage import scratches as S

    return rnd(float(np.mean([r.flagged and r.score >= S.MEDIUM_THRESHOLD for r in results]))) if results else None


def real_rates(scored: list[tuple[dict[str, Any], Any]]) -> dict[str, Any]:
    """False-alarm rates on genuine damage regions: ``flag_rate`` (photos with a flagged region: any flag, LOW
    or more), ``flag_rate_medium`` (photos where a flag would be MEDIUM under the context that raises it, a
    scratch-only claim without a third party: the worst case for an honest claim), the same per region, and
    the photos' highest scratch-like scores (the dev half fits the thresholds)."""
    from claimlens.vision.damage import scratches as S

    photos: dict[str, list[float]] = {}
    for r, res in scored:
        photos.setdefault(r["image"], []).append(res.score if res.scratch_like else 0.0)
    best = np.array([max(v) for v in photos.values()]) if photos else np.zeros(0)
    regions = np.array([res.score if res.scratch_like else 0.0 for _, res in scored])
    return {"photos": len(photos), "regions": len(scored),
            "flag_rate": rnd(float((best >= S.THRESHOLD).mean())) if len(best) else None,
            "flag_rate_medium": rnd(float((best >= max(S.THRESHOLD, S.MEDIUM_THRESHOLD)).mean())) if len(best) else None,
            "flag_rate_regions": rnd(float((regions >= S.THRESHOLD).mean())) if len(regions) else None,
            "scratch_like_fraction": rnd(float(np.mean([res.scratch_like for _, res in scored]))) if scored else None,
            "photo_max_score_top5": [rnd(float(v)) for v in np.sort(best)[-5:][::-1]]}


def time_12mp(n: int) -> dict[str, Any]:
    """Median per-photo time of ``DamageForensicsCheck.analyse_photo`` on 4000 x 3000 JPEGs (decode excluded;
    the shared 1024-px copy included), with the labelled boxes given as adjuster regions (no detector) and
    with the detector choosing the regions (when it loads)."""
    import io

    from claimlens.checks.base import PhotoInfo
    from claimlens.checks.damage_forensics import DamageForensicsCheck
    from claimlens.datasets import damage_suite as ds
    from claimlens.vision.decode import decode_photo

    check = DamageForensicsCheck()
    rng = np.random.default_rng(0)
    srcs = [p for _, p in ds.list_sources(ds.DEFAULT_SOURCE, "test")][:n]
    t_regions, t_detector, cpu_regions, cpu_detector = [], [], [], []
    for i, p in enumerate(srcs):
        im = Image.open(p).convert("RGB")
        w0, h0 = im.size
        boxes = ds.read_yolo_boxes(ds.label_path_of(p), w0, h0)
        img = np.asarray(im.resize((4000, 3000), Image.Resampling.BICUBIC), np.float32)
        img = (img + rng.normal(0, 2.0, img.shape)).clip(0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=92)
        data = buf.getvalue()
        sx, sy = 4000 / w0, 3000 / h0
        regions = [{"x1": b[0] * sx, "y1": b[1] * sy, "x2": b[2] * sx, "y2": b[3] * sy, "part": ds.PART_NAMES[b[4]]}
                   for b in boxes[:4]]
        for with_regions, sink in ((True, t_regions), (False, t_detector)):
            photo = decode_photo(data)
            info = PhotoInfo(photo_id=f"p{i}", claim_id="BENCH", stage="survey", role="damage", sha256="0" * 64,
                             size_bytes=len(data), filename=None, uploaded_at=None,
                             regions=regions if with_regions else [])
            c0 = time.process_time()
            t0 = time.perf_counter()
            check.analyse_photo(photo, info)
            sink.append(time.perf_counter() - t0)
            (cpu_regions if with_regions else cpu_detector).append(time.process_time() - c0)
    return {"n_photos": len(t_regions),
            "adjuster_regions_ms_median": round(1000 * statistics.median(t_regions), 1),
            "adjuster_regions_ms_max": round(1000 * max(t_regions), 1),
            "adjuster_regions_cpu_ms_median": round(1000 * statistics.median(cpu_regions), 1),
            "with_detector_ms_median": round(1000 * statistics.median(t_detector), 1),
            "with_detector_cpu_ms_median": round(1000 * statistics.median(cpu_detector), 1),
            "with_detector_cpu_ms_max": round(1000 * max(cpu_detector), 1),
            "adjuster_regions_cpu_ms_max": round(1000 * max(cpu_regions), 1),
            "with_detector_ms_max": round(1000 * max(t_detector), 1)}
