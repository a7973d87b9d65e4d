"""``claimlens bench damage DIR``: the damaged-part detector (``weights/damage_det.onnx``) on YOLO labels.

DIR is a YOLO-layout folder: ``images/`` + ``labels/`` (one ``class cx cy w h`` line per box, or a polygon
``class x1 y1 x2 y2 ...``, whose bounding rectangle is the box, as Roboflow exports them) and ``data.yaml``
with ``names``; the images may sit in split sub-folders (``valid/images``, ``test/images``, ...) as in
``../shared/data/car_damage_roboflow``. Class names are mapped to the detector's part names (lower case,
``Dickey`` -> ``trunk``); a label class the detector does not know simply scores AP 0.

Options (``--opt KEY=VALUE``):

* ``split=heldout|all`` (default ``heldout`` when DIR has the shared set's ``known_duplicates.csv``, else
  ``all``): ``heldout`` is the split the shipped model never saw in training (see :func:`assign_splits`);
* ``min_score`` (default 0.001): the lowest detection score kept for AP (low, as mAP needs the whole
  precision/recall curve); the product's operating threshold is reported separately;
* ``limit=N``: the first N images only (smoke runs); ``threads`` (default 1);
* ``speed12mp=N`` (default 0): also time decode + detect of N full-resolution 12 MP JPEGs (4000 x 3000,
  made by upscaling real images of the set in memory and encoding them at quality 92).

**The car_damage_train taxonomy** (``../shared/data/car_damage_train``; any folder whose ``data.yaml`` names
are those 18 classes): ``images/`` + ``labels/`` flat, ``splits.csv`` (``image,split``; default ``split=val``;
an image listed in the split but missing is an error: ``build_images.py`` of the set rebuilds the train
images) and ``images.csv`` with ``label_group`` (``damage`` | ``parts``). **Labels are partial by source**:
damage photos carry no part boxes and part photos no damage boxes, so a damage class is scored only on
``damage``-group images and a part class only on ``parts``-group images (:func:`class_scope`); detections of
a class on the other group's images are ignored, not counted as false positives. Detector names are mapped
to the taxonomy by :data:`TAXONOMY_ALIASES` (the shipped damaged-part model's ``bonnet`` -> ``hood``,
``light`` -> ``headlamp`` and ``taillamp``; its ``fender`` has no counterpart); a class the folder has but
the model lacks scores AP 0 and stays in the mean, a class the folder lacks is left out of every mean.
Extra keys: ``damage_map50`` / ``parts_map50`` (means over the damage / part classes present),
``damage_any_ap50`` (class-agnostic: every damage box merged into one class, on the damage-group images;
the detections are the model's damage classes, or every box when the model has none, as the shipped
damaged-part model), ``damage_any_operating_point`` and ``by_group`` counts.

Metrics: ``map50`` (mean over classes with at least one ground-truth box of the AP at IoU >= 0.5),
``per_class`` {part: ap50}, ``map50_95`` (COCO-style mean over IoU 0.50:0.05:0.95 of the same AP),
``n_boxes`` per class, ``precision`` / ``recall`` at the shipped threshold, ``ms_per_image`` (detect only,
wall, images already decoded), ``peak_rss_mb`` (process peak).

AP is computed here in numpy, PASCAL VOC 2010+ style: per class, every detection of the class over all
images, sorted by score (descending), is matched greedily to the unmatched ground-truth box of that class in
its image with the highest IoU; IoU >= threshold makes it a true positive, otherwise (or if that box is
already taken) a false positive. AP is the area under the precision/recall curve after making precision
monotonically non-increasing (all-point interpolation, no 11-point sampling).
"""

from __future__ import annotations

import csv
import hashlib
import re
import statistics
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from claimlens.bench.common import peak_rss_mb

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
# data.yaml names of the shared set -> the detector's part names
NAME_MAP = {"dickey": "trunk", "boot": "trunk", "hood": "bonnet", "headlight": "light", "taillight": "light",
            "lamp": "light", "windscreen": "windshield"}
# deterministic split of the shared set (fractions of the source-photo groups of valid/; test/ is always held out)
HELDOUT_FRACTION = 0.15
TUNE_FRACTION = 0.08

DAMAGE_CLASSES = ("scratch", "dent", "glass_shatter", "lamp_broken", "broken_part", "paint_damage", "damage",
                  "airbag_deployed")
PART_CLASSES = ("bumper", "door", "hood", "trunk", "headlamp", "taillamp", "mirror", "wheel", "windshield",
                "rear_window")
TAXONOMY = DAMAGE_CLASSES + PART_CLASSES
"""The 18 classes of ../shared/data/car_damage_train (class id = position)."""
TAXONOMY_ALIASES: dict[str, tuple[str, ...]] = {
    "bonnet": ("hood",), "light": ("headlamp", "taillamp"), "headlight": ("headlamp",),
    "taillight": ("taillamp",), "boot": ("trunk",), "dickey": ("trunk",), "windscreen": ("windshield",)}
"""A detector's class name -> the taxonomy classes it stands for (a ``light`` box is a candidate for both
lamps: each class is scored on its own, so this never counts one box twice in one AP)."""


def part_name(label: str) -> str:
    key = label.strip().lower()
    return NAME_MAP.get(key, key)


# --------------------------------------------------------------------------- dataset


def read_names(root: Path) -> list[str]:
    """Class names from ``data.yaml`` (``names: [...]`` or a ``names:`` block, without needing PyYAML), or
    from ``classes.txt`` when there is no data.yaml."""
    path = root / "data.yaml"
    if not path.is_file() and (root / "classes.txt").is_file():  # one name per line, line = class id
        return [n.strip() for n in (root / "classes.txt").read_text(encoding="utf-8").splitlines() if n.strip()]
    if not path.is_file():
        raise SystemExit(f"{path} not found (a YOLO folder needs data.yaml or classes.txt with the class names)")
    text = path.read_text(encoding="utf-8")
    m = re.search(r"^names:\s*\[(.*?)\]", text, re.MULTILINE | re.DOTALL)
    if m:
        return [s.strip().strip("'\"") for s in m.group(1).split(",") if s.strip()]
    m = re.search(r"^names:\s*\n((?:[ \t]+.*\n?)+)", text, re.MULTILINE)
    if m:
        out = []
        for line in m.group(1).splitlines():
            line = line.strip()
            if line.startswith("- "):
                out.append(line[2:].strip().strip("'\""))
            elif ":" in line:
                out.append(line.split(":", 1)[1].strip().strip("'\""))
        return out
    raise SystemExit(f"{path} has no names list")


def list_images(root: Path) -> list[str]:
    """Image paths relative to ``root`` that sit in an ``images`` folder (any depth), sorted."""
    out = []
    for p in root.rglob("*"):
        if p.suffix.lower() in IMAGE_SUFFIXES and p.parent.name == "images" and p.is_file():
            out.append(p.relative_to(root).as_posix())
    return sorted(out)


def label_path(root: Path, image_rel: str) -> Path:
    parts = image_rel.split("/")
    idx = len(parts) - 1 - parts[::-1].index("images")
    parts[idx] = "labels"
    return (root / "/".join(parts)).with_suffix(".txt")


def read_boxes(path: Path, width: int, height: int) -> list[tuple[int, float, float, float, float]]:
    """(class, x1, y1, x2, y2) in pixels from a YOLO label file; a polygon gives its bounding rectangle.
    A missing file means an image without boxes."""
    out = []
    if not path.is_file():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        vals = line.split()
        if not vals:
            continue
        cls, nums = int(float(vals[0])), [float(v) for v in vals[1:]]
        if len(nums) == 4:
            cx, cy, w, h = nums
            x1, y1, x2, y2 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
        elif len(nums) >= 6 and len(nums) % 2 == 0:
            xs, ys = nums[0::2], nums[1::2]
            x1, y1, x2, y2 = min(xs), min(ys), max(xs), max(ys)
        else:
            raise SystemExit(f"bad label line in {path}: {line!r}")
        out.append((cls, max(0.0, x1) * width, max(0.0, y1) * height, min(1.0, x2) * width, min(1.0, y2) * height))
    return out


def source_name(image_rel: str) -> str:
    """The Roboflow source photo of an export: the file name before ``.rf.<hash>`` (``0010_JPEG``,
    ``damage_1009_jpg``); other names are their own source."""
    name = image_rel.rsplit("/", 1)[-1]
    return name.split(".rf.")[0] if ".rf." in name else name.rsplit(".", 1)[0]


def source_groups(root: Path, images: Sequence[str]) -> list[list[str]]:
    """Images that show the same source photo: the same Roboflow source name, or a pair listed in
    ``known_duplicates.csv`` (union-find over both)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    known = set(images)
    by_source: dict[str, str] = {}
    for img in images:
        find(img)
        s = source_name(img)
        if s in by_source:
            union(img, by_source[s])
        else:
            by_source[s] = img
    dup = root / "known_duplicates.csv"
    if dup.is_file():
        with open(dup, encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                a, b = row.get("image_a", ""), row.get("image_b", "")
                if a in known and b in known:
                    union(a, b)
    groups: dict[str, list[str]] = {}
    for img in images:
        groups.setdefault(find(img), []).append(img)
    return sorted((sorted(g) for g in groups.values()), key=lambda g: g[0])


def assign_splits(root: Path, images: Sequence[str] | None = None, *, heldout_fraction: float = HELDOUT_FRACTION,
                  tune_fraction: float = TUNE_FRACTION) -> dict[str, str]:
    """image -> ``heldout`` | ``tune`` | ``train``, deterministic and group-closed.

    A group (see :func:`source_groups`) with any image under ``test/`` is held out whole. Every other group
    gets u = first 8 hex digits of sha1(sorted source names of the group) / 2**32: u < ``heldout_fraction``
    -> held out, u < ``heldout_fraction + tune_fraction`` -> tune (the validation set training uses to pick
    its checkpoint), else train. So no source photo is on two sides, and the split does not depend on file
    order or on the machine.
    """
    images = list(images) if images is not None else list_images(root)
    out: dict[str, str] = {}
    for group in source_groups(root, images):
        if any(img.split("/", 1)[0] == "test" for img in group):
            side = "heldout"
        else:
            key = "|".join(sorted({source_name(img) for img in group}))
            u = int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:8], 16) / 2**32
            side = "heldout" if u < heldout_fraction else "tune" if u < heldout_fraction + tune_fraction else "train"
        for img in group:
            out[img] = side
    return out


# --------------------------------------------------------------------------- metrics


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of boxes (N, 4) x (M, 4), x1 y1 x2 y2."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-12)


def voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """All-point interpolated AP (VOC 2010+): area under the precision envelope."""
    mrec = np.concatenate([[0.0], np.asarray(recall, np.float64), [1.0]])
    mpre = np.concatenate([[0.0], np.asarray(precision, np.float64), [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    idx = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]))


def average_precision(detections: Iterable[tuple[Any, float, Sequence[float]]],
                      ground_truth: dict[Any, np.ndarray], iou_threshold: float = 0.5) -> float | None:
    """AP of one class.

    Args:
        detections: (image_id, score, (x1, y1, x2, y2)) over all images.
        ground_truth: image_id -> (K, 4) boxes of this class (images without boxes may be absent).
        iou_threshold: a detection is a true positive when its best free ground-truth box has IoU >= this.

    Returns:
        AP in 0..1, or None when there is no ground-truth box of the class (undefined, left out of the mean).
    """
    npos = sum(len(v) for v in ground_truth.values())
    if npos == 0:
        return None
    dets = sorted(detections, key=lambda d: -float(d[1]))
    if not dets:
        return 0.0
    taken = {k: np.zeros(len(v), bool) for k, v in ground_truth.items()}
    tp = np.zeros(len(dets))
    for i, (img, _score, box) in enumerate(dets):
        gts = ground_truth.get(img)
        if gts is None or len(gts) == 0:
            continue
        ious = box_iou(np.asarray(box, np.float64)[None], gts)[0]
        j = int(np.argmax(ious))
        if ious[j] >= iou_threshold and not taken[img][j]:
            taken[img][j] = True
            tp[i] = 1
    ctp = np.cumsum(tp)
    cfp = np.cumsum(1 - tp)
    return voc_ap(ctp / npos, ctp / np.maximum(ctp + cfp, 1e-12))


def evaluate(predictions: dict[Any, list[tuple[str, float, Sequence[float]]]],
             ground_truth: dict[Any, list[tuple[str, Sequence[float]]]], classes: Sequence[str],
             iou_thresholds: Sequence[float] = (0.5,), scope: dict[str, set[Any]] | None = None
             ) -> dict[float, dict[str, float | None]]:
    """Per IoU threshold, per class AP. predictions: image -> [(part, score, box)]; ground_truth: image ->
    [(part, box)]. ``scope`` (class -> images), when given, limits each class to the images where it is
    labelled at all (partial labels): detections of the class elsewhere are ignored."""
    out: dict[float, dict[str, float | None]] = {}
    for thr in iou_thresholds:
        per: dict[str, float | None] = {}
        for c in classes:
            allowed = None if scope is None else scope.get(c, set())
            gt = {img: np.asarray([b for p, b in boxes if p == c], np.float64).reshape(-1, 4)
                  for img, boxes in ground_truth.items() if allowed is None or img in allowed}
            dets = [(img, s, b) for img, ps in predictions.items() for p, s, b in ps
                    if p == c and (allowed is None or img in allowed)]
            per[c] = average_precision(dets, gt, thr)
        out[float(thr)] = per
    return out


def mean_defined(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def is_taxonomy(names: Sequence[str]) -> bool:
    """True for a folder labelled in the car_damage_train taxonomy (its 18 names, in order)."""
    return tuple(n.strip().lower() for n in names) == TAXONOMY


def read_taxonomy_meta(root: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(image -> split from ``splits.csv``, image -> label group from ``images.csv``); either empty when its
    file is absent. Image paths are relative to ``root`` (``images/<name>.jpg``)."""
    splits: dict[str, str] = {}
    groups: dict[str, str] = {}
    for name, key, into in (("splits.csv", "split", splits), ("images.csv", "label_group", groups)):
        path = root / name
        if not path.is_file():
            continue
        with path.open(encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                if row.get("image") and row.get(key):
                    into[row["image"].strip()] = row[key].strip()
    return splits, groups


def class_scope(images: Iterable[str], groups: dict[str, str]) -> dict[str, set[str]]:
    """class -> the images on which it is scored: damage classes on ``damage``-group images, part classes on
    ``parts``-group images; an image with no group (or a folder without images.csv) counts for both."""
    images = list(images)
    damage = {i for i in images if groups.get(i, "damage") == "damage" or i not in groups}
    parts = {i for i in images if groups.get(i, "parts") == "parts" or i not in groups}
    return {c: (damage if c in DAMAGE_CLASSES else parts) for c in TAXONOMY}


def to_taxonomy(name: str) -> tuple[str, ...]:
    """The taxonomy classes a detector class stands for (itself when it is one; none for e.g. ``fender``)."""
    key = name.strip().lower()
    if key in TAXONOMY:
        return (key,)
    return TAXONOMY_ALIASES.get(key, ())


def agnostic(predictions: dict[Any, list[tuple[str, float, Sequence[float]]]],
             ground_truth: dict[Any, list[tuple[str, Sequence[float]]]], keep_pred: set[str] | None,
             keep_gt: set[str], images: set[Any]) -> tuple[dict[Any, list], dict[Any, list]]:
    """Predictions and ground truth merged into one class ``any`` on ``images`` (predictions of every class
    when ``keep_pred`` is None), with class-wise duplicates of one box removed."""
    preds: dict[Any, list] = {}
    for img in images:
        seen: dict[tuple, float] = {}
        for p, s, b in predictions.get(img, []):
            if keep_pred is None or p in keep_pred:
                k = tuple(round(float(v), 2) for v in b)
                seen[k] = max(seen.get(k, 0.0), float(s))
        preds[img] = [("any", s, k) for k, s in seen.items()]
    gts = {img: [("any", b) for p, b in ground_truth.get(img, []) if p in keep_gt] for img in images}
    return preds, gts


THRESHOLDS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)


def operating_point(predictions: dict[Any, list[tuple[str, float, Sequence[float]]]],
                    ground_truth: dict[Any, list[tuple[str, Sequence[float]]]], min_score: float) -> dict[str, float]:
    """Precision, recall and F1 of the boxes kept at ``min_score`` (class-aware, IoU >= 0.5, each ground-truth
    box matched once, best score first) and the fraction of images with at least one kept box."""
    tp = fp = 0
    for img, preds in predictions.items():
        gts = ground_truth.get(img, [])
        taken = [False] * len(gts)
        for part, score, box in sorted(preds, key=lambda p: -p[1]):
            if score < min_score:
                continue
            best, best_j = 0.0, -1
            for j, (gp, gb) in enumerate(gts):
                if gp == part and not taken[j]:
                    iou = float(box_iou(np.asarray(box)[None], np.asarray(gb)[None])[0, 0])
                    if iou > best:
                        best, best_j = iou, j
            if best >= 0.5:
                taken[best_j] = True
                tp += 1
            else:
                fp += 1
    npos = sum(len(g) for g in ground_truth.values())
    precision, recall = tp / max(tp + fp, 1), tp / max(npos, 1)
    with_box = sum(any(s >= min_score for _, s, _ in p) for p in predictions.values())
    return {"precision": round(precision, 4), "recall": round(recall, 4),
            "f1": round(2 * precision * recall / max(precision + recall, 1e-12), 4),
            "images_with_a_box": round(with_box / max(len(predictions), 1), 4)}


# --------------------------------------------------------------------------- bench


def run(dataset_dir: Path | None, *, suite: bool, options: dict[str, str]) -> dict[str, Any]:
    import cv2

    from claimlens.vision.damage.detector import DEFAULT_MIN_SCORE, PARTS, DamageDetector

    if suite:
        raise SystemExit("the damage bench has no generated suite; give a YOLO folder (images/, labels/, data.yaml)")
    if dataset_dir is None:
        raise SystemExit("usage: claimlens bench damage DIR [--opt split=heldout|all]")
    root = dataset_dir
    raw_names = read_names(root)
    taxonomy = is_taxonomy(raw_names)
    names = [n.strip().lower() for n in raw_names] if taxonomy else [part_name(n) for n in raw_names]
    splits, groups = read_taxonomy_meta(root) if taxonomy else ({}, {})
    if splits:
        split = options.get("split") or "val"
        if split != "all" and split not in set(splits.values()):
            raise SystemExit(f"--opt split={split}: splits.csv has {sorted(set(splits.values()))} (or all)")
        images = sorted(i for i, s in splits.items() if split == "all" or s == split)
        missing = [i for i in images if not (root / i).is_file()]
        if missing:
            raise SystemExit(f"{len(missing)} images of split {split} are missing (first: {root / missing[0]}); "
                             "build the full set with the folder's build_images.py")
    else:
        images = list_images(root)
        if not images:
            raise SystemExit(f"no images under {root} (expected images/ folders)")
        split = options.get("split") or ("heldout" if (root / "known_duplicates.csv").is_file() else "all")
        if split not in ("heldout", "all", "train", "tune"):
            raise SystemExit("--opt split= must be heldout, all, train or tune")
        if split != "all":
            sides = assign_splits(root, images)
            images = [img for img in images if sides[img] == split]
    limit = int(options.get("limit", 0) or 0)
    if limit:
        images = images[:limit]
    min_score = float(options.get("min_score", 0.001))
    detector = DamageDetector(threads=int(options.get("threads", 1)))
    t_start = time.perf_counter()
    detector.detect(np.zeros((64, 64, 3), np.uint8))  # session creation and sha256 are not per-image costs

    predictions: dict[str, list[tuple[str, float, tuple[float, float, float, float]]]] = {}
    ground_truth: dict[str, list[tuple[str, tuple[float, float, float, float]]]] = {}
    times: list[float] = []
    for img in images:
        bgr = cv2.imread(str(root / img), cv2.IMREAD_COLOR)
        if bgr is None:
            raise SystemExit(f"unreadable image: {root / img}")
        h, w = bgr.shape[:2]
        rgb = np.ascontiguousarray(bgr[..., ::-1])
        gts = []
        for cls, x1, y1, x2, y2 in read_boxes(label_path(root, img), w, h):
            gts.append((names[cls] if cls < len(names) else f"class{cls}", (x1, y1, x2, y2)))
        ground_truth[img] = gts
        t0 = time.perf_counter()
        boxes = detector.detect(rgb, min_score=min_score)
        times.append((time.perf_counter() - t0) * 1000)
        predictions[img] = [(b.part, b.score, (b.x1, b.y1, b.x2, b.y2)) for b in boxes]

    thresholds = [round(0.5 + 0.05 * i, 2) for i in range(10)]
    if taxonomy:
        metrics = _taxonomy_metrics(predictions, ground_truth, groups, detector.parts, thresholds, DEFAULT_MIN_SCORE)
    else:
        metrics = _flat_metrics(predictions, ground_truth, list(dict.fromkeys([*PARTS, *names])), thresholds,
                                DEFAULT_MIN_SCORE)
    metrics.update({
        "ms_per_image": round(statistics.fmean(times), 2),
        "p95_ms": round(float(np.percentile(times, 95)), 2),
        "input_size": detector.input_size,
        "split": split,
        "ap_method": "VOC all-point interpolation, greedy score-sorted matching, per class; mAP over classes "
                     "with ground truth" + (" in the images of their label group" if taxonomy else ""),
    })
    n_speed = int(options.get("speed12mp", 0) or 0)
    if n_speed:
        metrics["speed_12mp"] = _speed_12mp(root, images[:n_speed], detector)
    metrics["peak_rss_mb"] = peak_rss_mb()
    return {"bench": "damage", "dataset": str(root), "n_images": len(images),
            "seconds": round(time.perf_counter() - t_start, 2), "metrics": metrics, "peers": {}}


def _rounded(v: float | None) -> float | None:
    return round(v, 4) if v is not None else None


def _flat_metrics(predictions: dict[str, list], ground_truth: dict[str, list], classes: list[str],
                  thresholds: Sequence[float], min_score: float) -> dict[str, Any]:
    """Folders in the damaged-part names (car_damage_roboflow): every class scored on every image. Each box
    is a damaged part, so ``damage_any_ap50`` merges them all and ``parts_map50`` is ``map50``."""
    aps = evaluate(predictions, ground_truth, classes, thresholds)
    map50 = mean_defined(aps[0.5].values())
    per_thr = [mean_defined(aps[t].values()) for t in thresholds]
    map50_95 = float(np.mean([v for v in per_thr if v is not None])) if any(v is not None for v in per_thr) else None
    ap_preds, ap_gts = agnostic(predictions, ground_truth, None, set(classes), set(ground_truth))
    return {
        "map50": _rounded(map50),
        "per_class": {c: _rounded(v) for c, v in aps[0.5].items()},
        "map50_95": _rounded(map50_95),
        "damage_map50": None, "parts_map50": _rounded(map50),
        "damage_any_ap50": _rounded(evaluate(ap_preds, ap_gts, ["any"])[0.5]["any"]),
        "n_boxes": {c: sum(1 for g in ground_truth.values() for p, _ in g if p == c) for c in classes},
        "operating_point": {"min_score": min_score, **operating_point(predictions, ground_truth, min_score)},
        "by_threshold": {str(t): operating_point(predictions, ground_truth, t) for t in THRESHOLDS},
    }


def _taxonomy_metrics(raw: dict[str, list], ground_truth: dict[str, list], groups: dict[str, str],
                      model_classes: Sequence[str], thresholds: Sequence[float], min_score: float) -> dict[str, Any]:
    """The car_damage_train taxonomy: detector classes mapped by :func:`to_taxonomy`, each class scored on
    the images of its label group (:func:`class_scope`), means over the classes present."""
    images = list(ground_truth)
    scope = class_scope(images, groups)
    mapped = {img: [(t, s, b) for p, s, b in preds for t in to_taxonomy(p) if img in scope[t]]
              for img, preds in raw.items()}
    present = [c for c in TAXONOMY if any(p == c for g in ground_truth.values() for p, _ in g)]
    aps = evaluate(mapped, ground_truth, present, thresholds, scope)
    per = aps[0.5]
    per_thr = [mean_defined(aps[t].values()) for t in thresholds]
    map50_95 = float(np.mean([v for v in per_thr if v is not None])) if any(v is not None for v in per_thr) else None
    model_damage = {c for c in model_classes if any(t in DAMAGE_CLASSES for t in to_taxonomy(c))}
    damage_images = {i for i in images if groups.get(i, "damage") == "damage"}
    ap_preds, ap_gts = agnostic(raw, ground_truth, model_damage or None, set(DAMAGE_CLASSES), damage_images)
    any_ap = evaluate(ap_preds, ap_gts, ["any"])[0.5]["any"] if damage_images else None
    by_group: dict[str, dict[str, int]] = {}
    for img in images:
        g = groups.get(img, "unknown")
        by_group.setdefault(g, {"images": 0, "boxes": 0})
        by_group[g]["images"] += 1
        by_group[g]["boxes"] += len(ground_truth[img])
    return {
        "map50": _rounded(mean_defined(per.values())),
        "per_class": {c: _rounded(v) for c, v in per.items()},
        "map50_95": _rounded(map50_95),
        "damage_map50": _rounded(mean_defined(per[c] for c in present if c in DAMAGE_CLASSES)),
        "parts_map50": _rounded(mean_defined(per[c] for c in present if c in PART_CLASSES)),
        "damage_any_ap50": _rounded(any_ap),
        "damage_any_from": "damage classes of the model" if model_damage else
                           "every box (the model has no damage classes: each box is a damaged part)",
        "n_boxes": {c: sum(1 for g in ground_truth.values() for p, _ in g if p == c) for c in present},
        "classes_absent": [c for c in TAXONOMY if c not in present],
        "model_classes_unmapped": [c for c in model_classes if not to_taxonomy(c)],
        "by_group": by_group,
        "operating_point": {"min_score": min_score, **operating_point(mapped, ground_truth, min_score)},
        "damage_any_operating_point": {"min_score": min_score, **operating_point(ap_preds, ap_gts, min_score)},
        "by_threshold": {str(t): operating_point(mapped, ground_truth, t) for t in THRESHOLDS},
    }


def _speed_12mp(root: Path, images: Sequence[str], detector) -> dict[str, Any]:
    """Decode (cv2.imdecode of a 4000 x 3000 JPEG) + detect, per photo, on this process's threads."""
    import cv2

    decode_ms, detect_ms = [], []
    for img in images:
        bgr = cv2.imread(str(root / img), cv2.IMREAD_COLOR)
        big = cv2.resize(bgr, (4000, 3000), interpolation=cv2.INTER_CUBIC)
        ok, jpg = cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 92])
        if not ok:
            raise SystemExit("JPEG encoding failed")
        t0 = time.perf_counter()
        dec = cv2.imdecode(np.frombuffer(jpg.tobytes(), np.uint8), cv2.IMREAD_COLOR)
        rgb = np.ascontiguousarray(dec[..., ::-1])
        t1 = time.perf_counter()
        detector.detect(rgb)
        t2 = time.perf_counter()
        decode_ms.append((t1 - t0) * 1000)
        detect_ms.append((t2 - t1) * 1000)
    return {"n": len(images), "width": 4000, "height": 3000,
            "decode_ms": round(statistics.fmean(decode_ms), 1), "detect_ms": round(statistics.fmean(detect_ms), 1),
            "total_ms": round(statistics.fmean(d + e for d, e in zip(decode_ms, detect_ms)), 1),
            "total_p95_ms": round(float(np.percentile([d + e for d, e in zip(decode_ms, detect_ms)], 95)), 1)}
