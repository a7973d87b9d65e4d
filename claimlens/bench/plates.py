"""``claimlens bench plates DIR`` / ``--suite``: plate reading accuracy and cost (Chinese and Latin plates).

``DIR/labels.csv`` (or ``--opt labels=FILE``, its image paths still relative to DIR): ``image,plate_text``
(extra columns ignored; ``kind`` is used when present). An image that looks like a plate crop (wide and
low, e.g. 94 x 24) is read as a crop; any other image is a photo: the plate is localised first and the best
valid read is the prediction. Rows without ``plate_text`` only measure localisation (a ``kind`` containing
``np`` / ``no_plate`` means the photo has no plate: any confident read there is a false alarm).

Metrics: ``exact_accuracy``, ``char_accuracy`` (1 - edit distance / length, summed over characters),
``ms_per_image`` (wall, the reader only, decoding excluded), ``cpu_ms_per_image`` (process CPU time: the
cost on one core when the machine is shared), ``p95_ms``; per kind (crop / photo), the province accuracy on
plates outside 皖 (the crops are 95 % 皖), localisation on photos (exactly one plate found) and the
operating point of the check (coverage and precision of reads at the check's confidence threshold).
``--opt peers=0`` skips the ablation peers (each recogniser alone, grammar-constrained); ``--opt latin=0``
reads Chinese plates only.

``--suite`` generates the Latin plate suite (:mod:`claimlens.datasets.plates_latin_suite`: rendered UK, EU, US
and Russian plates on real car photos, with distractor text and plate-less photos; ``--opt n=240
negatives=60 seed=4``; seeds 0 and 2 fit the plate-likeness model, 1 and 3 served development, 4 is held
out and the default) and adds per-country accuracy and the rate of confident reads on plate-less photos
(``localisation.no_plate_false_read_rate``).
"""

from __future__ import annotations

import csv
import json
import statistics
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from claimlens.vision.plates.grammar import levenshtein

CROP_LATIN_SWITCH = 0.01  # a Chinese crop read below this (and valid) may be a Latin plate: see _run
HELD_OUT_SEED = 4  # of the Latin plate suite: never used to fit or tune (docs/plates_vins.md)


def read_labels(dataset_dir: Path, options: dict[str, str], text_column: str) -> list[dict[str, str]]:
    path = Path(options["labels"]) if options.get("labels") else dataset_dir / "labels.csv"
    if not path.is_file():
        raise SystemExit(f"labels file not found: {path}")
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "image" not in rows[0] or text_column not in rows[0]:
        raise SystemExit(f"{path} needs the columns image,{text_column}")
    for r in rows:
        if not (dataset_dir / r["image"]).is_file():
            raise SystemExit(f"missing image listed in {path}: {dataset_dir / r['image']}")
    if options.get("split"):
        rows = _split_rows(dataset_dir, rows, options)
    limit = int(options.get("limit", 0) or 0)
    return rows[:limit] if limit else rows


def _split_rows(dataset_dir: Path, rows: list[dict[str, str]], options: dict[str, str]) -> list[dict[str, str]]:
    """The rows of one fixed split (``--opt split=dev|test``): ``--opt splits=FILE`` or the project's
    ``datasets/<folder name>_split.csv`` (``image,split[,group]``; datasets/make_plate_splits.py)."""
    path = Path(options.get("splits") or Path(__file__).resolve().parents[2] / "datasets"
                / f"{dataset_dir.resolve().name}_split.csv")
    if not path.is_file():
        raise SystemExit(f"split file not found: {path} (give --opt splits=FILE)")
    with open(path, encoding="utf-8-sig", newline="") as f:
        split_of = {r["image"]: r["split"] for r in csv.DictReader(f)}
    wanted = options["split"]
    if wanted not in set(split_of.values()):
        raise SystemExit(f"no split {wanted!r} in {path} (has {sorted(set(split_of.values()))})")
    return [r for r in rows if split_of.get(r["image"]) == wanted]


def _accuracy(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    if not pairs:
        return {"n": 0, "exact_accuracy": None, "char_accuracy": None}
    exact = sum(p == g for p, g in pairs) / len(pairs)
    total = sum(len(g) for _, g in pairs)
    char = sum(max(0, len(g) - levenshtein(p, g)) for p, g in pairs) / max(total, 1)
    return {"n": len(pairs), "exact_accuracy": round(exact, 4), "char_accuracy": round(char, 4)}


def run(dataset_dir: Path | None, *, suite: bool, options: dict[str, str]) -> dict[str, Any]:
    tmp = None
    if suite:
        from claimlens.bench.common import suite_folder
        from claimlens.datasets.plates_latin_suite import generate

        dataset_dir, tmp = suite_folder("plates", options)
        generate(dataset_dir, n=int(options.get("n", 240)), negatives=int(options.get("negatives", 60)),
                 seed=int(options.get("seed", HELD_OUT_SEED)))
    if dataset_dir is None:
        raise SystemExit("usage: claimlens bench plates DIR [--opt labels=FILE] | --suite")
    try:
        return _run(dataset_dir, options, suite)
    finally:
        if tmp is not None:
            tmp.cleanup()


def _run(dataset_dir: Path, options: dict[str, str], suite: bool) -> dict[str, Any]:
    from claimlens.bench.common import peak_rss_mb
    from claimlens.checks.plate_vin import PLATE_MIN_CONFIDENCE as min_conf
    from claimlens.checks.plate_vin import plate_confident, would_accuse
    from claimlens.vision.plates import CN_PLAUSIBLE, PlateReader, is_plate_crop
    from claimlens.vision.plates.grammar import PROVINCES, normalise

    rows = read_labels(dataset_dir, options, "plate_text")
    reader = PlateReader(threads=int(options.get("threads", 1)), latin=options.get("latin", "1") != "0")
    mode = options.get("mode", "auto")
    t_start = time.perf_counter()
    # warm up (session creation and sha256 checks are not per-image costs)
    reader.read_crop(np.zeros((24, 94, 3), np.uint8))
    reader.read(np.zeros((64, 64, 3), np.uint8))
    results: list[dict[str, Any]] = []
    for r in rows:
        bgr = cv2.imread(str(dataset_dir / r["image"]), cv2.IMREAD_COLOR)
        if bgr is None:
            raise SystemExit(f"unreadable image: {dataset_dir / r['image']}")
        crop = (mode == "crop") or (mode == "auto" and is_plate_crop(bgr.shape))
        t0, c0 = time.perf_counter(), time.process_time()
        confident, plate_score, layout = False, None, None
        if crop:
            # a Chinese read first; a crop the Chinese grammar cannot explain is read as a Latin plate crop,
            # judged by the same rule as in photos. "Cannot explain": invalid, or valid below
            # CROP_LATIN_SWITCH (125 of 128 Indian crops; 4 of the 7 real Chinese crops below CN_PLAUSIBLE
            # are above it), and the Latin read is not the Chinese one without its province glyph (a
            # Chinese plate read as Latin drops the glyph or replaces it by one letter)
            res = reader.read_crop(bgr)
            text, conf, found, det, kind = (res.text if res.valid else ""), res.confidence, 1, 1.0, "cn"
            layout = res.layout
            confident = plate_confident({"valid": res.valid, "kind": "cn", "confidence": res.confidence,
                                         "det_score": 1.0})
            lat = reader.read_latin_crop(bgr) if reader.latin and not (res.valid and res.confidence >= CROP_LATIN_SWITCH) \
                else None
            if lat is not None and lat.valid and not (res.valid and len(lat.text) <= len(res.text)
                                                      and res.text[1:] in lat.text):
                text, conf, det, kind, layout = lat.text, lat.confidence, 0.0, "latin", lat.layout
                plate_score, confident = lat.plate_score, plate_confident(lat.as_json())
        else:
            reads = reader.read(np.ascontiguousarray(bgr[..., ::-1]))
            # the read the product relies on: the first confident one, else the reader's first plausible one
            # (Chinese reads by detector score, Latin ones by plate-likeness; a Chinese-grammar read of a
            # Latin plate, confidence below CN_PLAUSIBLE, only when nothing else was read)
            valid = [x for x in reads if x.valid]
            sure = [x for x in valid if plate_confident(x.as_json())]
            plausible = [x for x in valid if x.kind == "latin" or x.confidence >= CN_PLAUSIBLE]
            best = (sure or plausible or valid or [None])[0]
            text = best.text if best else ""
            conf = best.confidence if best else 0.0
            det = best.det_score if best else 0.0
            kind = best.kind if best else ""
            layout = best.layout if best else None
            plate_score = best.plate_score if best else None
            confident = bool(sure)  # best is sure[0] whenever any read is confident
            found = len(reads)
        wall, cpu = (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000
        gt = r.get("plate_text", "")
        gt = normalise(gt) if gt[:1] in PROVINCES or r.get("kind", "").startswith("cn") else _latin_norm(gt)
        kind_label = r.get("kind", "") or r.get("country", "") or ("no_plate" if "country" in r and not gt else "")
        results.append({"image": r["image"], "kind": kind_label, "gt": gt,
                        "pred": text, "conf": conf, "det": det, "found": found, "crop": crop, "read_kind": kind,
                        "layout": layout, "plate_score": plate_score, "confident": confident,
                        "wall": wall, "cpu": cpu})
    labelled = [x for x in results if x["gt"]]
    pairs = [(x["pred"], x["gt"]) for x in labelled]
    overall = _accuracy(pairs)
    metrics: dict[str, Any] = {
        "exact_accuracy": overall["exact_accuracy"], "char_accuracy": overall["char_accuracy"],
        "ms_per_image": round(statistics.fmean(x["wall"] for x in results), 2),
        "cpu_ms_per_image": round(statistics.fmean(x["cpu"] for x in results), 2),
        "p95_ms": round(float(np.percentile([x["wall"] for x in results], 95)), 2),
        "n_labelled": len(labelled),
    }
    for name, sel in (("crops", [x for x in labelled if x["crop"]]), ("photos", [x for x in labelled if not x["crop"]])):
        if sel:
            acc = _accuracy([(x["pred"], x["gt"]) for x in sel])
            acc["ms_per_image"] = round(statistics.fmean(x["wall"] for x in sel), 2)
            acc["cpu_ms_per_image"] = round(statistics.fmean(x["cpu"] for x in sel), 2)
            metrics[name] = acc
    outside = [x for x in labelled if x["gt"][0] in PROVINCES and x["gt"][0] != "皖"]
    if outside:
        metrics["outside_wan"] = {"n": len(outside),
                                  "exact_accuracy": round(sum(x["pred"] == x["gt"] for x in outside) / len(outside), 4),
                                  "province_accuracy": round(sum(x["pred"][:1] == x["gt"][:1] for x in outside)
                                                             / len(outside), 4)}
    metrics["province_accuracy"] = round(sum(x["pred"][:1] == x["gt"][:1] for x in labelled) / max(len(labelled), 1), 4)
    # operating point of the check (its own rule: plate_vin.plate_confident)
    ok = [x for x in labelled if x["confident"] and x["pred"]]
    metrics["check_operating_point"] = {
        "min_confidence": min_conf, "coverage": round(len(ok) / max(len(labelled), 1), 4),
        "precision": round(sum(x["pred"] == x["gt"] for x in ok) / max(len(ok), 1), 4) if ok else None,
        "n_confident": len(ok), "n_confident_wrong": sum(x["pred"] != x["gt"] for x in ok),
        # confident wrong reads that are no near-miss of the truth: each a HIGH mismatch on an honest claim
        # (plate photo) if the policy holds the true plate
        "n_would_accuse": sum(would_accuse(x["pred"], x["gt"]) for x in ok),
        "would_accuse_rate": round(sum(would_accuse(x["pred"], x["gt"]) for x in ok) / max(len(labelled), 1), 4),
        # per plate family of the read (cn, latin): each has its own fitted accusation point
        "by_family": {fam: {"coverage": round(len(s) / max(len(labelled), 1), 4),
                            "precision": round(sum(x["pred"] == x["gt"] for x in s) / len(s), 4) if s else None,
                            "n_confident": len(s)}
                      for fam in ("cn", "latin") for s in [[x for x in ok if x["read_kind"] == fam]]},
        "by_threshold": {str(t): {"coverage": round(len(s) / max(len(labelled), 1), 4),
                                  "precision": round(sum(x["pred"] == x["gt"] for x in s) / max(len(s), 1), 4)}
                         for t in (0.3, 0.5, 0.7, 0.8, 0.9, 0.95)
                         for s in [[x for x in labelled if x["pred"] and x["conf"] >= t]]},
    }
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for x in labelled:
        if x["kind"]:
            by_kind.setdefault(x["kind"], []).append(x)
    if 1 < len(by_kind) <= 20:
        metrics["per_kind"] = {k: _accuracy([(x["pred"], x["gt"]) for x in v]) for k, v in sorted(by_kind.items())}
    photos = [x for x in results if not x["crop"]]
    if photos:
        with_plate = [x for x in photos if not _no_plate(x["kind"])]
        without = [x for x in photos if _no_plate(x["kind"])]
        metrics["localisation"] = {
            "photos": len(photos),
            "exactly_one_plate_rate": round(sum(x["found"] == 1 for x in with_plate) / max(len(with_plate), 1), 4)
            if with_plate else None,
            "at_least_one_plate_rate": round(sum(x["found"] >= 1 for x in with_plate) / max(len(with_plate), 1), 4)
            if with_plate else None,
            "no_plate_photos": len(without),
            "no_plate_false_read_rate": round(sum(x["confident"] for x in without) / len(without), 4) if without else None,
            "no_plate_any_read_rate": round(sum(bool(x["pred"]) for x in without) / len(without), 4) if without else None,
        }
    metrics["peak_rss_mb"] = peak_rss_mb()
    out: dict[str, Any] = {"bench": "plates", "dataset": "suite" if suite else str(dataset_dir), "n_images": len(results),
                           "seconds": round(time.perf_counter() - t_start, 2), "metrics": metrics, "peers": {}}
    if options.get("peers", "1") != "0" and any(x["crop"] for x in results) and any(x["gt"][:1] in PROVINCES
                                                                                 for x in results):
        out["peers"] = _peers(dataset_dir, [r for r, x in zip(rows, results) if x["crop"] and x["gt"]], reader)
    if options.get("peers", "1") != "0" and options.get("rapidocr", "1") != "0":
        out["peers"]["rapidocr_det_rec"] = _rapidocr_peer(dataset_dir, labelled)
    if options.get("items"):
        # every read, for fitting the accusation operating points (training/fit_plate_operating_points.py)
        with open(options["items"], "w", encoding="utf-8") as f:
            json.dump([{k: x[k] for k in ("image", "kind", "gt", "pred", "conf", "det", "read_kind", "layout",
                                          "plate_score", "confident", "crop")} for x in labelled], f,
                      ensure_ascii=False, indent=0)
    if options.get("errors", "0") == "1":
        out["errors"] = [{"image": x["image"], "gt": x["gt"], "pred": x["pred"], "conf": round(x["conf"], 3)}
                         for x in labelled if x["pred"] != x["gt"]]
    return out


def _no_plate(kind: str) -> bool:
    k = (kind or "").lower()
    return "no_plate" in k or "_np_" in k or k.endswith("_np")


def _latin_norm(text: str) -> str:
    return "".join(c for c in (text or "").upper() if c.isalnum())


def _peers(dataset_dir: Path, rows: list[dict[str, str]], reader) -> dict[str, Any]:
    """Ablation on the crops: each recogniser alone under the grammar (no fusion)."""
    from claimlens.vision.plates import grammar
    from claimlens.vision.plates.ocr import ctc_constrained_decode, fold_probs, greedy_decode
    from claimlens.vision.plates.recognize import CLP_CHARS, PLATE_MERGE

    rec = reader.recognizer
    clp_chars = [""] + list(CLP_CHARS)
    clp_ids = np.arange(1, len(clp_chars))
    pairs: dict[str, list[tuple[str, str]]] = {"ppocr_v6_grammar": [], "clp_rec_grammar": [], "ppocr_v6_greedy": []}
    times: dict[str, list[float]] = {k: [] for k in pairs}
    for r in rows:
        bgr = cv2.imread(str(dataset_dir / r["image"]), cv2.IMREAD_COLOR)
        gt = grammar.normalise(r["plate_text"])
        t0 = time.perf_counter()
        p6 = rec.v6.probs([bgr])[0]
        greedy = grammar.normalise("".join(c for c in greedy_decode(p6, rec.v6.chars)))
        times["ppocr_v6_greedy"].append((time.perf_counter() - t0) * 1000)
        pairs["ppocr_v6_greedy"].append((greedy, gt))
        best = ctc_constrained_decode(fold_probs(p6, rec.v6.index, PLATE_MERGE), rec.v6.chars, rec.v6_ids,
                                      grammar.next_chars, grammar.complete)
        times["ppocr_v6_grammar"].append((time.perf_counter() - t0) * 1000)
        pairs["ppocr_v6_grammar"].append((best[0][0] if best else "", gt))
        t1 = time.perf_counter()
        pc = rec._clp_probs(bgr)
        bestc = ctc_constrained_decode(pc, clp_chars, clp_ids, grammar.next_chars, grammar.complete)
        times["clp_rec_grammar"].append((time.perf_counter() - t1) * 1000)
        pairs["clp_rec_grammar"].append((bestc[0][0] if bestc else "", gt))
    out = {}
    for k, v in pairs.items():
        acc = _accuracy(v)
        acc["ms_per_image"] = round(statistics.fmean(times[k]), 2) if times[k] else None
        out[k] = acc
    return out


def _plate_like(text: str) -> bool:
    """A line that could be a plate: 4-11 letters / digits with at least one of each (a Chinese plate's
    province glyph counts as a letter)."""
    return 4 <= len(text) <= 11 and any(c.isdigit() for c in text) and any(not c.isdigit() for c in text)


def _rapidocr_peer(dataset_dir: Path, labelled: list[dict[str, Any]]) -> dict[str, Any]:
    """The off-the-shelf peer (issue 15): RapidOCR 3.10's own pipeline (PP-OCRv6 det + cls + rec, its default
    models inside the wheel, one thread) on the whole image; the prediction is the most confident line that
    looks like a plate after normalisation (upper case, letters and digits only), else the most confident
    line. ``any_line_exact`` counts an image right when any line normalises to the plate."""
    from rapidocr import RapidOCR

    from claimlens.vision.plates.grammar import PROVINCES, normalise

    engine = RapidOCR(params={"Global.log_level": "critical", "Global.text_score": 0.0,
                              "EngineConfig.onnxruntime.intra_op_num_threads": 1,
                              "EngineConfig.onnxruntime.inter_op_num_threads": 1})
    engine(np.zeros((64, 64, 3), np.uint8))  # warm-up
    pairs, any_hit, times = [], 0, []
    per_kind: dict[str, list[tuple[str, str]]] = {}
    for x in labelled:
        bgr = cv2.imread(str(dataset_dir / x["image"]), cv2.IMREAD_COLOR)
        t0 = time.perf_counter()
        res = engine(bgr)
        times.append((time.perf_counter() - t0) * 1000)
        cn = x["gt"][:1] in PROVINCES
        lines = [((normalise(t) if cn else _latin_norm(t)), float(sc))
                 for t, sc in zip(res.txts or (), res.scores or ())]
        lines = [(t, sc) for t, sc in lines if t]
        plate_like = [ln for ln in lines if _plate_like(ln[0])]
        best = max(plate_like or lines, key=lambda ln: ln[1])[0] if lines else ""
        pairs.append((best, x["gt"]))
        any_hit += any(t == x["gt"] for t, _ in lines)
        if x["kind"]:
            per_kind.setdefault(x["kind"], []).append((best, x["gt"]))
    out = _accuracy(pairs)
    out["any_line_exact"] = round(any_hit / max(len(pairs), 1), 4)
    out["ms_per_image"] = round(statistics.fmean(times), 2) if times else None
    if 1 < len(per_kind) <= 20:
        out["per_kind"] = {k: _accuracy(v) for k, v in sorted(per_kind.items())}
    return out
