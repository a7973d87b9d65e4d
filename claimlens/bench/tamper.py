"""``claimlens bench tamper [DIR] [--suite] [--opt k=v]``: copy-move / splice / in-paint detection.

DIR holds ``labels.csv`` (``image,label[,mask]`` with label ``authentic`` | ``tampered``; mask = a PNG,
non-zero = tampered pixels; an optional ``kind`` column gives per-kind numbers). ``--suite`` generates the
project's suite from the photos under DIR (default: ../shared/data) into a temporary folder first
(:func:`claimlens.datasets.integrity_suite.generate_tamper_suite`).

Options: ``all_label=authentic`` (no labels.csv: every image under DIR is authentic; ``flag_rate`` is then
the false-alarm rate on genuine photos), ``split``, ``n``, ``seed``, ``keep``, ``limit`` (as in the recapture
bench; on a real folder ``split=dev|test`` picks the fixed CASIA scene halves of
claimlens.datasets.integrity_splits), ``strip=1`` (decode and re-encode every photo as a plain JPEG at quality 95
with no metadata first: CASIA's forgeries carry Photoshop segments and other quantisation tables, a shortcut),
``messenger=1`` (re-encode as a messenger does: claimlens.bench.messenger), ``peers=0`` (skip the
error-level-analysis peer), ``mp12=N`` (also time all three integrity checks
together on N distinct 12 MP phone-like JPEGs made from the first photos of DIR: the per-photo budget).

Metrics: ``auc`` and ``tpr_at_fpr01`` of the image score max(copy-move, splice); ``pixel_f1``: the mean over
tampered images with a mask of the F1 between the mask and the shipped binary localisation (empty when
not flagged, so a miss scores 0), at the 640-px work resolution; ``flag_rate``: the check emits a
LOW-or-higher finding on a survey photo (``flag_rate_authentic``: over the authentic photos); ``splice``
ranks the splices by the splice score alone;
``ms_per_image`` (analysis, decode excluded); per kind the same. ``copy_move`` keys restrict to the copy-move
kinds (the issue's target) and rank by the copy-move score alone (``copy_move.per_kind``: per copy-move
kind). Peer ``ela`` (error level analysis: |I - JPEG90(I)|, mask = mean + 2 std of the
smoothed map, score = its 99.5th percentile over the median) runs on the same images.
"""

from __future__ import annotations

import io
import statistics
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from claimlens.bench.recapture import auc, photo_bytes, prepare, read_labels, rnd, tpr_at_fpr
from claimlens.vision.decode import decode_photo


def _f1(pred: np.ndarray, gt: np.ndarray) -> float:
    inter = float((pred & gt).sum())
    denom = float(pred.sum() + gt.sum())
    return 2 * inter / denom if denom else 1.0


def ela(photo: Any, work_shape: tuple[int, int]) -> tuple[float, np.ndarray]:
    """Error level analysis at the work resolution: (image score, binary mask)."""
    small = cv2.resize(photo.rgb, (work_shape[1], work_shape[0]), interpolation=cv2.INTER_AREA) \
        if photo.rgb.shape[:2] != work_shape else photo.rgb
    _ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 90])
    re = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    err = np.abs(small.astype(np.float32) - re.astype(np.float32)).mean(axis=2)
    err = cv2.GaussianBlur(err, (0, 0), 3)
    mask = err > err.mean() + 2 * err.std()
    score = float(np.percentile(err, 99.5) / (np.median(err) + 0.5))
    return score, mask


STRIP_QUALITY = 95


def run(dataset_dir: Path | None, *, suite: bool, options: dict[str, str]) -> dict[str, Any]:
    from claimlens.bench.integrity_fa import survey_info
    from claimlens.bench.messenger import reencode
    from claimlens.checks.base import Severity
    from claimlens.checks.integrity import TamperCheck
    from claimlens.datasets.integrity_splits import casia_splits
    from claimlens.vision.integrity import tamper as tp

    t_start = time.perf_counter()
    folder, tmp, desc = prepare("tamper", dataset_dir, suite, options)
    with_peers = options.get("peers", "1") != "0"
    strip = options.get("strip", "0") == "1"
    check = TamperCheck()
    try:
        rows = read_labels(folder, options, "tampered", "authentic", mask_column=True)
        split = options.get("split", "all") if not suite else "all"
        if split != "all":
            halves = casia_splits(r["image"] for r in rows)
            rows = [r for r in rows if halves[r["image"]] == split]
        if options.get("limit"):
            rows = rows[: int(options["limit"])]
        out = []
        t_dec, t_an = [], []
        for r in rows:
            data = photo_bytes(folder, r["image"], options)
            if strip:  # the container shortcut removed: same pixels, plain JPEG, no metadata segment
                data = reencode(decode_photo(data).rgb, STRIP_QUALITY)
            t0 = time.perf_counter()
            photo = decode_photo(data)
            t1 = time.perf_counter()
            res = tp.analyse(photo)
            t2 = time.perf_counter()
            t_dec.append(t1 - t0)
            t_an.append(t2 - t1)
            flag = any(f.severity >= Severity.LOW for f in check.findings(photo, survey_info(r["image"]), res))
            item: dict[str, Any] = {"row": r, "score": res.score, "cm": res.copy_move_score,
                                    "sp": res.splice_score, "flag": flag}
            gt = None
            if r["mask"]:
                m = cv2.imread(str(folder / r["mask"]), cv2.IMREAD_GRAYSCALE)
                gt = cv2.resize((m > 0).astype(np.uint8), (res.work_shape[1], res.work_shape[0]),
                                interpolation=cv2.INTER_NEAREST) > 0
                item["f1"] = _f1(res.mask(), gt)
            if with_peers:
                e_score, e_mask = ela(photo, res.work_shape)
                item["ela_score"] = e_score
                if gt is not None:
                    item["ela_f1"] = _f1(e_mask, gt)
            out.append(item)
    finally:
        if tmp is not None:
            tmp.cleanup()

    def block(items: list[dict[str, Any]], negatives: list[dict[str, Any]], score: str, f1: str,
              flag: str | None) -> dict[str, Any]:
        pos = [i[score] for i in items if i["row"]["label"] == "tampered"]
        neg = [i[score] for i in negatives]
        f1s = [i[f1] for i in items if f1 in i]
        d = {"auc": rnd(auc(pos, neg)), "tpr_at_fpr01": rnd(tpr_at_fpr(pos, neg)),
             "pixel_f1": rnd(statistics.mean(f1s)) if f1s else None}
        if flag:
            d["flag_rate"] = rnd(np.mean([i[flag] for i in items])) if items else None
        return d

    negatives = [i for i in out if i["row"]["label"] == "authentic"]
    metrics: dict[str, Any] = block(out, negatives, "score", "f1", "flag")
    metrics["flag_rate_authentic"] = rnd(np.mean([i["flag"] for i in negatives])) if negatives else None
    metrics["ms_per_image"] = round(1000 * statistics.mean(t_an), 2)
    metrics["ms_per_image_p95"] = round(1000 * float(np.percentile(t_an, 95)), 2)
    metrics["decode_ms_per_image"] = round(1000 * statistics.mean(t_dec), 2)
    kinds = sorted({i["row"]["kind"] for i in out if i["row"]["label"] == "tampered"})
    metrics["per_kind"] = {k: {"n": sum(1 for i in out if i["row"]["kind"] == k)}
                           | block([i for i in out if i["row"]["kind"] == k], negatives, "score", "f1", "flag")
                           for k in kinds}
    cm_items = [i for i in out if i["row"]["kind"] in ("copy_move", "copy_move_affine")]
    sp_items = [i for i in out if i["row"]["kind"] == "splice"]
    if sp_items:  # splices ranked by the splice score alone (the copy-move score is not meant for them)
        metrics["splice"] = block(sp_items, negatives, "sp", "f1", "flag")
    if cm_items:
        metrics["copy_move"] = block(cm_items, negatives, "cm", "f1", "flag")
        # the copy-move score alone, per copy-move kind (per_kind above ranks by max(copy-move, splice))
        metrics["copy_move"]["per_kind"] = {
            k: block([i for i in cm_items if i["row"]["kind"] == k], negatives, "cm", "f1", "flag")
            for k in ("copy_move", "copy_move_affine") if any(i["row"]["kind"] == k for i in cm_items)}
    metrics["thresholds"] = {"copy_move_low": tp.COPY_MOVE_THRESHOLD, "copy_move_medium": tp.COPY_MOVE_MEDIUM,
                             "splice": tp.SPLICE_THRESHOLD}
    peers: dict[str, Any] = {}
    if with_peers:
        peers["ela"] = block(out, negatives, "ela_score", "ela_f1", None)
        peers["ela"]["per_kind"] = {k: block([i for i in out if i["row"]["kind"] == k], negatives, "ela_score",
                                             "ela_f1", None) for k in kinds}
        if cm_items:
            peers["ela"]["copy_move"] = block(cm_items, negatives, "ela_score", "ela_f1", None)
    if options.get("mp12"):
        metrics["integrity_checks_12mp"] = time_12mp(dataset_dir, int(options["mp12"]))
    result: dict[str, Any] = {"bench": "tamper", "dataset": str(dataset_dir or "generated"), "n_images": len(out),
                              "split": options.get("split", "all") if not suite else None, "strip": strip,
                              "messenger": options.get("messenger", "0") == "1",
                              "seconds": round(time.perf_counter() - t_start, 1), "metrics": metrics, "peers": peers}
    if desc:
        result["suite"] = desc
    if options.get("dump"):
        result["per_image"] = [{"image": i["row"]["image"], "kind": i["row"]["kind"], "score": rnd(i["score"]),
                                "copy_move": rnd(i["cm"]), "splice": rnd(i["sp"]), "f1": rnd(i.get("f1"))}
                               for i in out]
    return result


def time_12mp(src_dir: Path | None, n: int) -> dict[str, Any]:
    """Median per-photo time of the three integrity checks together on 12 MP (4000 x 3000) JPEGs.

    The photos are real ones upscaled with camera-like noise (so they are not unnaturally smooth) and
    carry phone EXIF with a thumbnail. The shared ``gray(640)`` copy is counted in the total (and shown
    apart: the duplicates check computes the same one), decode is not. ``total_cpu_ms_median`` is the
    process CPU time of the same work: on a busy machine it is the fairer number.
    """
    from PIL import Image

    from claimlens.checks.base import PhotoInfo
    from claimlens.checks.integrity import MetadataForensicsCheck, RecaptureCheck, TamperCheck
    from claimlens.datasets.integrity_suite import DEFAULT_SOURCES, exif_bytes, list_sources

    srcs = [p for _, p in list_sources([src_dir] if src_dir else DEFAULT_SOURCES, "all")][:n]
    checks = (RecaptureCheck(), TamperCheck(), MetadataForensicsCheck())
    rng = np.random.default_rng(0)
    per: dict[str, list[float]] = {c.name: [] for c in checks}
    total, total_cpu, gray = [], [], []
    for i, p in enumerate(srcs):
        img = np.asarray(Image.open(p).convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC), np.float32)
        img = (img + rng.normal(0, 2.0, img.shape)).clip(0, 255).astype(np.uint8)
        thumb = cv2.imencode(".jpg", cv2.resize(img, (160, 120), interpolation=cv2.INTER_AREA)[..., ::-1])[1].tobytes()
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=92,
                                  exif=exif_bytes("HUAWEI", "P40", thumbnail=thumb, width=4000, height=3000))
        photo = decode_photo(buf.getvalue())
        info = PhotoInfo(photo_id=f"p{i}", claim_id="BENCH", stage="survey", role=None, sha256="0" * 64,
                         size_bytes=len(buf.getvalue()), filename=None, uploaded_at=None)
        t_all = 0.0
        c_all = time.process_time()
        t0 = time.perf_counter()
        photo.gray(640)  # the shared reduced copy (the duplicates check computes the same one)
        gray.append(time.perf_counter() - t0)
        t_all += gray[-1]
        for c in checks:
            t0 = time.perf_counter()
            c.analyse_photo(photo, info)
            dt = time.perf_counter() - t0
            per[c.name].append(dt)
            t_all += dt
        total.append(t_all)
        total_cpu.append(time.process_time() - c_all)
    return {"n_photos": len(total), "total_ms_median": round(1000 * statistics.median(total), 1),
            "total_ms_max": round(1000 * max(total), 1),
            "total_cpu_ms_median": round(1000 * statistics.median(total_cpu), 1),
            "shared_gray640_ms_median": round(1000 * statistics.median(gray), 1),
            "per_check_ms_median": {k: round(1000 * statistics.median(v), 1) for k, v in per.items()}}
