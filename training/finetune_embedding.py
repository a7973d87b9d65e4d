"""SSCD-style fine-tuning, evaluation and binary-code fitting for the copy-detection embedding.

Runs in the training env (``.venv-train``, see ``scripts/train-env.sh``), on one core::

    export OMP_NUM_THREADS=1
    PY="taskset -c 1 .venv-train/bin/python"
    $PY training/finetune_embedding.py splits                      # print the train / held-out split
    $PY training/finetune_embedding.py cache --cut 11 --views 6 --no-rot90   # trunk outputs of the views (23 min)
    $PY training/finetune_embedding.py train --out-dim 1024 --steps 0 --out out/embedding/base_w1024.pt
    $PY training/finetune_embedding.py train --out-dim 1024 --steps 200 --train-from 11 --lr 3e-5 \
        --tau 0.07 --eval-every 100 --out out/embedding/ft_c.pt   # contrastive fine-tuning of the top
    $PY training/finetune_embedding.py fit-codes --checkpoint out/embedding/base_w1024.pt --out out/embedding/codes
    $PY training/finetune_embedding.py eval --size 224 --p 3       # a plain model in torch (slow)
    $PY training/finetune_embedding.py eval --onnx weights/x.onnx  # an exported graph through CopyEmbedder
    $PY training/finetune_embedding.py eval --shipped              # weights/MANIFEST.json's model + codes

Data (../shared/data, see its MANIFEST.txt files; CC BY 4.0, Roboflow Universe):

* train: car_damage_roboflow ``valid/`` minus the held-out originals, minus every photo that is (or
  duplicates) a photo of neardup_car_damage_roboflow, plus all of vin_plates.
* held-out originals for the transform suite: car_damage_roboflow ``test/`` + a seeded quarter of the
  ``valid/`` groups; never trained on.
* neardup_car_damage_roboflow: evaluation only (groups.csv, 150 groups x 3).

Training: two augmented views per photo (the issue's transforms: crop to 50 % area, rotations 90/180/270
and +-15 deg, mirror, JPEG q20, colour jitter, text overlay, screenshot frame, simulated screen recapture),
InfoNCE over the batch (every other photo's views are negatives) plus SSCD's KoLeo entropy term, BatchNorm
frozen, the stem and first blocks frozen, AdamW, cosine schedule, fixed seed.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2

cv2.setNumThreads(1)
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CLAIMLENS_SHARED_DATA", ROOT.parent / "shared" / "data"))
CAR = DATA / "car_damage_roboflow"
NEARDUP = DATA / "neardup_car_damage_roboflow"
VIN = DATA / "vin_plates" / "roboflow_vin_detection"
SEED = 20240611

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
from claimlens.vision.embedding import preprocess


# ---------------------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------------------
def read_rgb(path: Path | str) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise OSError(f"cannot read {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def stem(name: str) -> str:
    return Path(name).name.split(".rf.")[0].lower()


def car_groups() -> dict[str, list[Path]]:
    """car_damage_roboflow photos grouped: same Roboflow source name or listed in known_duplicates.csv."""
    files = sorted((CAR / "valid" / "images").glob("*.jpg")) + sorted((CAR / "test" / "images").glob("*.jpg"))
    parent = {f: f for f in files}

    def find(x: Path) -> Path:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: Path, b: Path) -> None:
        parent[find(a)] = find(b)

    by_stem: dict[str, Path] = {}
    for f in files:
        s = stem(f.name)
        if s in by_stem:
            union(f, by_stem[s])
        by_stem.setdefault(s, f)
    dup = CAR / "known_duplicates.csv"
    if dup.exists():
        for row in csv.DictReader(dup.open()):
            a, b = CAR / row["image_a"], CAR / row["image_b"]
            if a in parent and b in parent:
                union(a, b)
    groups: dict[str, list[Path]] = {}
    for f in files:
        groups.setdefault(str(find(f)), []).append(f)
    return groups


# groups of neardup's groups.csv that are one photo, as audited for the bench (the same constant as
# claimlens.bench.duplicates.AUDITED_GROUP_MERGES, copied: the training env installs claimlens without deps)
NEARDUP_MERGES = (("damage_487_jpg", "damage_488_jpg"),)


def neardup_items(audited: bool = False) -> tuple[list[Path], list[str]]:
    rows = list(csv.DictReader((NEARDUP / "groups.csv").open()))
    rename = {b: a for a, b in NEARDUP_MERGES} if audited else {}
    return [NEARDUP / r["image"] for r in rows], [rename.get(r["group_id"], r["group_id"]) for r in rows]


def splits(leak_sim: dict[str, float] | None = None, leak_threshold: float = 0.80) -> dict[str, list[Path]]:
    """train / held-out split (deterministic). ``leak_sim``: photo -> max cosine to any neardup photo."""
    groups = car_groups()
    nd_stems = {stem(p.name) for p in neardup_items()[0]}
    rng = random.Random(SEED)
    keys = sorted(groups)
    test_keys = [k for k in keys if any("/test/" in str(p) for p in groups[k])]
    rest = [k for k in keys if k not in test_keys]
    rng.shuffle(rest)
    held_keys = set(test_keys) | set(rest[: len(rest) // 4])
    held, train, excluded = [], [], []
    for k in keys:
        members = groups[k]
        leaked = any(stem(p.name) in nd_stems for p in members) or any(
            (leak_sim or {}).get(str(p), 0.0) >= leak_threshold for p in members
        )
        if k in held_keys:
            held.append(min(members))  # one photo per group: the suite's originals are distinct photos
        elif leaked:
            excluded.extend(members)
        else:
            train.extend(members)
    vin = sorted(VIN.glob("*/images/*.jpg"))
    return {"train_car": train, "train_vin": vin, "held_out": held, "excluded_leak": excluded}


# ---------------------------------------------------------------------------------------------------------
# the transforms (uint8 RGB in, uint8 RGB out)
# ---------------------------------------------------------------------------------------------------------
WORDS = ["2024-03-18 14:22:07", "SURVEY", "Claim #", "GPS 31.23N 121.47E", "定损", "Inspector 07",
         "IMG_4021", "Ping An", "CPIC", "20240318", "Case 8812-A", "watermark"]


def jpeg(img: np.ndarray, q: int) -> np.ndarray:
    _ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(q)])
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def resize_max(img: np.ndarray, side: int) -> np.ndarray:
    h, w = img.shape[:2]
    s = side / max(h, w)
    return cv2.resize(img, (max(8, round(w * s)), max(8, round(h * s))),
                      interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)


def crop_area(img: np.ndarray, rng: random.Random, area: float) -> np.ndarray:
    """Random crop keeping ``area`` of the pixels, aspect ratio jittered."""
    h, w = img.shape[:2]
    ar = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
    ch = round(min(h, math.sqrt(area * h * w / ar)))
    cw = round(min(w, area * h * w / max(ch, 1)))
    y, x = rng.randint(0, h - ch), rng.randint(0, w - cw)
    return img[y:y + ch, x:x + cw]


def rotate_small(img: np.ndarray, deg: float, fill: bool = True) -> np.ndarray:
    """Rotate by ``deg`` keeping the whole frame (corners filled), as a re-saved rotated photo looks."""
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), deg, 1.0)
    c, s = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(h * s + w * c), int(h * c + w * s)
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    border = cv2.BORDER_CONSTANT if fill else cv2.BORDER_REFLECT
    return cv2.warpAffine(img, m, (nw, nh), flags=cv2.INTER_LINEAR, borderMode=border, borderValue=(0, 0, 0))


def colour(img: np.ndarray, rng: random.Random, strength: float = 1.0) -> np.ndarray:
    x = img.astype(np.float32) / 255.0
    x = x * (1 + strength * rng.uniform(-0.35, 0.35)) + strength * rng.uniform(-0.2, 0.2)  # contrast, brightness
    gray = x.mean(axis=2, keepdims=True)
    x = gray + (x - gray) * (1 + strength * rng.uniform(-0.6, 0.6))  # saturation
    x = x * (1 + strength * np.array([rng.uniform(-0.12, 0.12) for _ in range(3)], np.float32))  # colour cast
    x = np.clip(x, 0, 1) ** math.exp(strength * rng.uniform(-0.4, 0.4))  # gamma
    return (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)


def text_overlay(img: np.ndarray, rng: random.Random) -> np.ndarray:
    out = img.copy()
    h, w = out.shape[:2]
    for _ in range(rng.randint(1, 3)):
        txt = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3)))
        txt = txt.encode("ascii", "replace").decode().replace("?", "#")
        scale = rng.uniform(0.3, 0.9) * max(h, w) / 400
        th = max(1, round(scale * 2))
        (tw, tht), _ = cv2.getTextSize(txt, cv2.FONT_HERSHEY_SIMPLEX, scale, th)
        x = rng.randint(0, max(0, w - tw))
        y = rng.choice([tht + 4, h - 6, rng.randint(tht + 4, max(tht + 5, h - 6))])
        if rng.random() < 0.5:  # survey-app banner behind the text
            cv2.rectangle(out, (0, max(0, y - tht - 6)), (w, min(h, y + 6)), (0, 0, 0), -1)
        col = rng.choice([(255, 255, 255), (255, 220, 0), (255, 60, 60), (0, 0, 0)])
        cv2.putText(out, txt, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, col, th, cv2.LINE_AA)
    return out


def screenshot(img: np.ndarray, rng: random.Random) -> np.ndarray:
    """Photo shown inside a phone/desktop UI: status bar, toolbars, letterbox, then the whole screen saved."""
    h, w = img.shape[:2]
    portrait = rng.random() < 0.6
    sw = max(w, int(w * rng.uniform(1.0, 1.15)))
    sh = int(sw * (rng.uniform(1.8, 2.2) if portrait else rng.uniform(0.55, 0.8)))
    sh = max(sh, h + 40)
    bg = rng.choice([(0, 0, 0), (255, 255, 255), (32, 32, 36), (242, 242, 247)])
    canvas = np.full((sh, sw, 3), bg, np.uint8)
    scale = min(sw / w, (sh - 60) / h) * rng.uniform(0.85, 1.0)
    pic = cv2.resize(img, (max(8, int(w * scale)), max(8, int(h * scale))), interpolation=cv2.INTER_AREA)
    ph, pw = pic.shape[:2]
    y0 = rng.randint(30, max(30, sh - ph - 30))
    x0 = (sw - pw) // 2
    canvas[y0:y0 + ph, x0:x0 + pw] = pic
    fg = (255, 255, 255) if sum(bg) < 300 else (0, 0, 0)
    bar = max(12, sh // 30)
    cv2.rectangle(canvas, (0, 0), (sw, bar), tuple(max(0, c - 10) for c in bg), -1)
    cv2.putText(canvas, f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}", (6, bar - 3),
                cv2.FONT_HERSHEY_SIMPLEX, bar / 30, fg, 1, cv2.LINE_AA)
    cv2.rectangle(canvas, (sw - 30, 3), (sw - 8, bar - 3), fg, 1)
    cv2.rectangle(canvas, (0, sh - bar * 2), (sw, sh), tuple(min(255, c + 12) for c in bg), -1)
    for i in range(4):
        cx = int(sw * (i + 0.5) / 4)
        cv2.circle(canvas, (cx, sh - bar), max(3, bar // 3), fg, 1)
    return canvas


def recapture(img: np.ndarray, rng: random.Random) -> np.ndarray:
    """Photo of a screen showing the photo: perspective, screen grid/moire, glare, blur, noise, colour cast."""
    h, w = img.shape[:2]
    # screen sub-pixel grid -> moire after resampling
    up = cv2.resize(img, (w * 2, h * 2), interpolation=cv2.INTER_NEAREST).astype(np.float32)
    period = rng.choice([2, 3])
    grid = np.ones((h * 2, w * 2, 1), np.float32)
    grid[::period] *= rng.uniform(0.55, 0.8)
    grid[:, ::period] *= rng.uniform(0.7, 0.9)
    up *= grid
    # perspective: the camera is not square to the screen; some background (bezel/desk) around
    W, H = w * 2, h * 2
    m = 0.12
    src = np.float32([[0, 0], [W, 0], [W, H], [0, H]])
    dst = np.float32([[rng.uniform(-m, m) * W + (m * W), rng.uniform(-m, m) * H + (m * H)],
                      [W - rng.uniform(-m, m) * W - (m * W), rng.uniform(-m, m) * H + (m * H)],
                      [W - rng.uniform(-m, m) * W - (m * W), H - rng.uniform(-m, m) * H - (m * H)],
                      [rng.uniform(-m, m) * W + (m * W), H - rng.uniform(-m, m) * H - (m * H)]])
    bezel = rng.choice([(10, 10, 10), (40, 40, 45), (90, 80, 70)])
    warped = cv2.warpPerspective(up, cv2.getPerspectiveTransform(src, dst), (W, H),
                                 flags=cv2.INTER_LINEAR, borderValue=bezel)
    if rng.random() < 0.7:  # keep a tighter framing (the recapture is usually cropped to the screen)
        cy, cx = int(H * m * rng.uniform(0.3, 1.0)), int(W * m * rng.uniform(0.3, 1.0))
        warped = warped[cy:H - cy, cx:W - cx]
    out = cv2.resize(warped, (w, h), interpolation=cv2.INTER_AREA)
    # glare, colour cast of the display/camera, blur, sensor noise
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    gx, gy = rng.uniform(0, w), rng.uniform(0, h)
    glare = np.exp(-((xx - gx) ** 2 + (yy - gy) ** 2) / (2 * (0.3 * max(h, w)) ** 2))[..., None]
    out = out * np.array([rng.uniform(0.85, 1.1) for _ in range(3)], np.float32) + glare * rng.uniform(0, 60)
    k = rng.choice([1, 3, 3, 5])
    out = cv2.GaussianBlur(out, (k, k), 0) if k > 1 else out
    out = out + np.random.default_rng(rng.randint(0, 2**31)).normal(0, rng.uniform(2, 8), out.shape)
    return jpeg(np.clip(out, 0, 255).astype(np.uint8), rng.randint(50, 85))


def random_view(img: np.ndarray, rng: random.Random, rot90: bool = True) -> np.ndarray:
    """One training view: a random subset of the transforms, strengths sampled up to the issue's limits."""
    x = img
    r = rng.random
    if r() < 0.7:
        x = crop_area(x, rng, rng.uniform(0.45, 1.0))
    if r() < 0.5:
        x = x[:, ::-1]
    if rot90 and r() < 0.3:
        x = np.rot90(x, rng.randint(1, 3))
    if r() < 0.3:
        x = rotate_small(np.ascontiguousarray(x), rng.uniform(-15, 15), fill=r() < 0.5)
    if r() < 0.6:
        x = colour(np.ascontiguousarray(x), rng, rng.uniform(0.3, 1.0))
    if r() < 0.1:
        x = np.repeat(cv2.cvtColor(np.ascontiguousarray(x), cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    x = np.ascontiguousarray(x)
    if r() < 0.3:
        x = text_overlay(x, rng)
    u = r()
    if u < 0.12:
        x = screenshot(x, rng)
    elif u < 0.24:
        x = recapture(x, rng)
    if r() < 0.2:
        k = rng.choice([3, 5])
        x = cv2.GaussianBlur(x, (k, k), 0)
    if r() < 0.4:
        x = resize_max(x, rng.randint(96, 256))
    if r() < 0.6:
        x = jpeg(x, rng.randint(20, 90))
    return np.ascontiguousarray(x)


SUITE: dict[str, Callable[[np.ndarray, random.Random], np.ndarray]] = {
    "jpeg_q20": lambda x, r: jpeg(x, 20),
    "resize_small": lambda x, r: jpeg(resize_max(x, 128), 75),
    "crop_50": lambda x, r: crop_area(x, r, 0.5),
    "crop_70": lambda x, r: crop_area(x, r, 0.7),
    "rot90": lambda x, r: np.ascontiguousarray(np.rot90(x, 1)),
    "rot180": lambda x, r: np.ascontiguousarray(np.rot90(x, 2)),
    "rot270": lambda x, r: np.ascontiguousarray(np.rot90(x, 3)),
    "rot_15": lambda x, r: rotate_small(x, r.choice([-15, 15])),
    "rot_7": lambda x, r: rotate_small(x, r.choice([-7, 7])),
    "mirror": lambda x, r: np.ascontiguousarray(x[:, ::-1]),
    "colour": lambda x, r: colour(x, r, 1.0),
    "text_overlay": lambda x, r: text_overlay(x, r),
    "screenshot": lambda x, r: screenshot(x, r),
    "recapture": lambda x, r: recapture(x, r),
    "combo": lambda x, r: jpeg(colour(crop_area(x, r, 0.7), r, 0.6), 40),
}
DIHEDRAL = {"rot90", "rot180", "rot270"}


def make_suite(originals: list[Path], seed: int = SEED) -> tuple[list[np.ndarray], list[int], list[str]]:
    """Queries (one per original x class), the index of their original, and the class names."""
    imgs, src, cls = [], [], []
    for i, p in enumerate(originals):
        base = read_rgb(p)
        for j, (name, fn) in enumerate(SUITE.items()):
            rng = random.Random(seed * 1000 + i * 37 + j)
            imgs.append(fn(base, rng))
            src.append(i)
            cls.append(name)
    return imgs, src, cls


# ---------------------------------------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------------------------------------
def recall_at_precision(scores: np.ndarray, labels: np.ndarray, precision: float = 0.99) -> tuple[float, float]:
    """Max recall over thresholds whose precision >= ``precision``; returns (recall, threshold)."""
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order].astype(np.int64)
    tp = np.cumsum(y)
    k = np.arange(1, len(y) + 1)
    # only cut between distinct scores
    last = np.r_[s[1:] != s[:-1], True]
    ok = (tp / k >= precision) & last
    if not ok.any() or y.sum() == 0:
        return 0.0, float("inf")
    i = np.flatnonzero(ok)[np.argmax(tp[ok])]
    return float(tp[i] / y.sum()), float(s[i])


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    from scipy.stats import rankdata

    r = rankdata(scores)
    npos = labels.sum()
    nneg = len(labels) - npos
    return float((r[labels.astype(bool)].sum() - npos * (npos + 1) / 2) / (npos * nneg))


def eval_neardup(emb: np.ndarray, groups: list[str]) -> dict:
    sim = emb @ emb.T
    iu = np.triu_indices(len(groups), 1)
    g = np.asarray(groups)
    lab = g[iu[0]] == g[iu[1]]
    s = sim[iu]
    rec, thr = recall_at_precision(s, lab)
    # retrieval view: of each photo's m group mates, the share found among its m nearest neighbours
    same = g[:, None] == g[None, :]
    np.fill_diagonal(same, False)
    np.fill_diagonal(sim, -np.inf)
    order = np.argsort(-sim, axis=1)
    found = [same[i, order[i, : same[i].sum()]].mean() for i in range(len(g)) if same[i].any()]
    return {"recall_at_p99": round(rec, 4), "threshold": round(thr, 4), "roc_auc": round(roc_auc(s, lab), 5),
            "mates_in_top_m": round(float(np.mean(found)), 4), "pairs": len(s), "positives": int(lab.sum())}


def eval_suite(q: np.ndarray, g: np.ndarray, src: list[int], cls: list[str]) -> dict:
    sim = q @ g.T
    lab = np.zeros_like(sim, dtype=bool)
    lab[np.arange(len(src)), np.asarray(src)] = True
    res = {}
    for name, mask in [("all", np.ones(len(cls), bool)),
                       ("non_dihedral", np.array([c not in DIHEDRAL for c in cls]))]:
        rec, thr = recall_at_precision(sim[mask].ravel(), lab[mask].ravel())
        res[name] = {"recall_at_p99": round(rec, 4), "threshold": round(thr, 4),
                     "roc_auc": round(roc_auc(sim[mask].ravel(), lab[mask].ravel()), 5)}
    thr = res["non_dihedral"]["threshold"]
    pos = sim[np.arange(len(src)), np.asarray(src)]
    per = {}
    for name in SUITE:
        m = np.array([c == name for c in cls])
        per[name] = round(float((pos[m] >= thr).mean()), 3)
    res["per_class_at_non_dihedral_threshold"] = per
    return res


def hamming_eval(codes_q: np.ndarray, codes_g: np.ndarray, lab: np.ndarray) -> dict:
    """codes as bool arrays; score = -Hamming distance."""
    d = (codes_q[:, None, :] != codes_g[None, :, :]).sum(-1)
    rec, thr = recall_at_precision(-d.ravel().astype(np.float64), lab.ravel())
    return {"recall_at_p99": round(rec, 4), "max_distance": int(-thr) if np.isfinite(thr) else None}


# ---------------------------------------------------------------------------------------------------------
# embedders
# ---------------------------------------------------------------------------------------------------------
def torch_embedder(model, batch: int = 32) -> Callable[[list[np.ndarray]], np.ndarray]:
    import torch

    def run(imgs: list[np.ndarray]) -> np.ndarray:
        out = []
        with torch.no_grad():
            for i in range(0, len(imgs), batch):
                x = np.stack([preprocess(im, model.size) for im in imgs[i:i + batch]])
                out.append(model(torch.from_numpy(x)).numpy())
        return np.concatenate(out).astype(np.float32)

    return run


def onnx_embedder(path: str) -> Callable[[list[np.ndarray]], np.ndarray]:
    from claimlens.vision.embedding import CopyEmbedder, sha256_file

    e = CopyEmbedder(model_path=path, expected_sha256=sha256_file(Path(path)))
    return lambda imgs: e.embed_batch(imgs, batch_size=32)


def get_embedder(a) -> tuple[Callable[[list[np.ndarray]], np.ndarray], object]:
    if getattr(a, "shipped", False):
        from claimlens.vision.embedding import CopyEmbedder

        e = CopyEmbedder()  # weights/MANIFEST.json, sha256-checked: exactly what the runtime loads
        return (lambda imgs: e.embed_batch(imgs, batch_size=32)), e
    if a.onnx:
        return onnx_embedder(a.onnx), None
    import torch
    from export_embedding import build_model, load_checkpoint

    torch.set_num_threads(1)
    if a.checkpoint:
        model, _ = load_checkpoint(a.checkpoint)
    else:
        model = build_model({"size": a.size, "p": a.p, "norm": a.norm}).eval()
    if getattr(a, "whiten", None):
        w = np.load(a.whiten)
        model.set_projection(w["mean"], w["matrix"])
    return torch_embedder(model.eval()), model


def evaluate(embed: Callable[[list[np.ndarray]], np.ndarray], sp: dict[str, list[Path]]) -> dict:
    t0 = time.time()
    nd_paths, nd_groups = neardup_items()
    nd = embed([read_rgb(p) for p in nd_paths])
    res = {"neardup": eval_neardup(nd, neardup_items(audited=True)[1]),
           "neardup_raw_labels": eval_neardup(nd, nd_groups)}
    qi, src, cls = make_suite(sp["held_out"])
    gal = embed([read_rgb(p) for p in sp["held_out"]])
    q = embed(qi)
    res["suite"] = eval_suite(q, gal, src, cls)
    res["suite"]["originals"] = len(sp["held_out"])
    res["suite"]["queries"] = len(qi)
    res["seconds"] = round(time.time() - t0, 1)
    return res, {"neardup": nd, "suite_q": q, "suite_g": gal, "src": src, "cls": cls, "nd_groups": nd_groups}


def code_metrics(embedder, cache: dict) -> dict:
    """Hamming recall at precision 0.99 (and the distance it needs) of the embedder's shipped code widths."""
    def bits_of(vecs: np.ndarray, bits: int) -> np.ndarray:
        ints = embedder.binary_codes(vecs, bits)
        return np.array([[(c >> (bits - 1 - i)) & 1 for i in range(bits)] for c in ints], bool)

    g = np.asarray(neardup_items(audited=True)[1])
    iu = np.triu_indices(len(g), 1)
    lab_nd = (g[:, None] == g[None, :])[iu]
    src, cls = np.asarray(cache["src"]), list(cache["cls"])
    keep = np.array([c not in DIHEDRAL for c in cls])
    lab = np.zeros((int(keep.sum()), len(cache["suite_g"])), bool)
    lab[np.arange(int(keep.sum())), src[keep]] = True
    out = {}
    for bits in embedder.code_bits():
        cn = bits_of(cache["neardup"], bits)
        d = np.stack([(cn[i] != cn).sum(1) for i in range(len(cn))])[iu]
        rec, thr = recall_at_precision(-d.astype(float), lab_nd)
        hs = hamming_eval(bits_of(cache["suite_q"][keep], bits), bits_of(cache["suite_g"], bits), lab)
        out[str(bits)] = {"neardup_recall_at_p99": round(rec, 4), "neardup_max_distance": int(-thr),
                          "suite_non_dihedral_recall_at_p99": hs["recall_at_p99"],
                          "suite_max_distance": hs["max_distance"]}
    return out


def leak_similarity() -> dict[str, float]:
    """Base-model cosine of every car_damage photo to its nearest neardup photo (cached)."""
    cache = ROOT / "out" / "embedding" / "leak_sim.json"
    if cache.exists():
        return json.loads(cache.read_text())
    import torch
    from export_embedding import build_model

    torch.set_num_threads(1)
    model = build_model({"size": 224, "p": 3.0, "norm": "tf"}).eval()
    embed = torch_embedder(model)
    files = [p for ps in car_groups().values() for p in ps]
    a = embed([read_rgb(p) for p in files])
    b = embed([read_rgb(p) for p in neardup_items()[0]])
    # mirrored copies are in neardup: take the max over the mirror too
    bm = embed([np.ascontiguousarray(read_rgb(p)[:, ::-1]) for p in neardup_items()[0]])
    sim = np.maximum((a @ b.T).max(1), (a @ bm.T).max(1))
    out = {str(p): round(float(s), 4) for p, s in zip(files, sim)}
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(out))
    return out


# ---------------------------------------------------------------------------------------------------------
# training: frozen trunk cached over many augmented views, the top of the network fine-tuned on them
# ---------------------------------------------------------------------------------------------------------
# Why cached: on one CPU core a full forward+backward of EfficientNet-Lite0 at 224 px costs ~0.3-0.5 s per
# view, i.e. ~3k views in a 25-minute run, each seen once. Freezing the trunk (stem + blocks [0, cut)) and
# caching its output for V fixed augmented views per photo lets the top (last MBConv blocks, head conv, GeM,
# projection) see every view pair many times for the same compute.
def cache_path(a) -> Path:
    return ROOT / "out" / "embedding" / f"cache_s{a.size}_{a.norm}_cut{a.cut}_v{a.views}.npz"


def build_cache(a) -> None:
    import torch
    from export_embedding import build_model

    torch.set_num_threads(1)
    model = build_model({"size": a.size, "p": a.p, "norm": a.norm}).eval()

    def trunk(imgs: list[np.ndarray]) -> np.ndarray:
        out = []
        with torch.no_grad():
            for i in range(0, len(imgs), 32):
                x = torch.from_numpy(np.stack([preprocess(im, a.size) for im in imgs[i:i + 32]]))
                out.append(model.trunk(x, a.cut).numpy().astype(np.float16))
        return np.concatenate(out)

    t0 = time.time()
    sp = splits(leak_similarity())
    rng = random.Random(a.seed)
    files = sp["train_car"] + sp["train_vin"]
    tr, tr_img = [], []
    for k, p in enumerate(files):
        im = read_rgb(p)
        views = [im] + [random_view(im, rng, rot90=a.rot90) for _ in range(a.views)]
        tr.append(trunk(views))
        tr_img += [k] * len(views)
        if k % 100 == 0:
            print(f"train {k}/{len(files)} {time.time() - t0:.0f}s", flush=True)
    nd_paths, nd_groups = neardup_items()
    nd = trunk([read_rgb(p) for p in nd_paths])
    qi, src, cls = make_suite(sp["held_out"])
    g = trunk([read_rgb(p) for p in sp["held_out"]])
    q = trunk(qi)
    out = cache_path(a)
    np.savez(out, tr=np.concatenate(tr), tr_img=np.asarray(tr_img), nd=nd, nd_groups=np.asarray(nd_groups),
             g=g, q=q, src=np.asarray(src), cls=np.asarray(cls), n_car=len(sp["train_car"]))
    print(f"cached {out} in {time.time() - t0:.0f}s", flush=True)


def whitening(feats: np.ndarray, dim: int, shrink: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """PCA-whitening of L2-normalised pooled features: (mean (D,), matrix (D, dim))."""
    x = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    mean = x.mean(0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    sd = s / np.sqrt(len(x))
    return mean, vt[:dim].T / (sd[:dim] + shrink * sd[0])[None, :]


def cached_embed(model, h: np.ndarray, cut: int, batch: int = 64) -> np.ndarray:
    """Embeddings (N, D) from cached trunk outputs (blocks [0, cut) already applied)."""
    import torch

    out = []
    with torch.no_grad():
        for i in range(0, len(h), batch):
            out.append(model.head(model.top(torch.from_numpy(h[i:i + batch].astype(np.float32)), cut)).numpy())
    return np.concatenate(out)


def train(a) -> None:
    import torch
    import torch.nn.functional as F
    from export_embedding import build_model

    torch.set_num_threads(1)
    random.seed(a.seed)
    np.random.seed(a.seed)
    torch.manual_seed(a.seed)
    c = np.load(cache_path(a))
    tr, tr_img = c["tr"], c["tr_img"]
    if not a.vin:
        keep = tr_img < int(c["n_car"])
        tr, tr_img = tr[keep], tr_img[keep]
    n_img = int(tr_img.max()) + 1
    views_of = [np.flatnonzero(tr_img == k) for k in range(n_img)]
    print(f"cache: {len(tr)} views of {n_img} photos, trunk output {tr.shape[1:]}", flush=True)
    cfg = {"size": a.size, "p": a.p, "norm": a.norm, "out_dim": 0, "learn_p": a.learn_p}
    model = build_model(cfg).eval()
    start = max(a.cut, a.train_from)

    def top(h: np.ndarray) -> np.ndarray:
        return cached_embed(model, h, a.cut)

    def evaluate_cached() -> dict:
        model.eval()
        e_nd = top(c["nd"])
        nd = eval_neardup(e_nd, neardup_items(audited=True)[1])
        su = eval_suite(top(c["q"]), top(c["g"]), list(c["src"]), list(c["cls"]))
        return {"neardup": nd, "neardup_raw_labels": eval_neardup(e_nd, list(c["nd_groups"])), "suite": su}

    # frozen trunk part that is not cached (blocks [cut, start)) runs once over the train views
    if start > a.cut:
        with torch.no_grad():
            hs = []
            for i in range(0, len(tr), 64):
                x = torch.from_numpy(tr[i:i + 64].astype(np.float32))
                for blk in model.backbone._blocks[a.cut:start]:
                    x = blk(x)
                hs.append(x.numpy().astype(np.float16))
        tr_in = np.concatenate(hs)
    else:
        tr_in = tr
    # initial projection: PCA-whitening of the base features of the train views
    if a.out_dim:
        with torch.no_grad():
            base = np.concatenate([model.top(torch.from_numpy(tr_in[i:i + 128].astype(np.float32)), start).numpy()
                                   for i in range(0, len(tr_in), 128)])
        mean, mat = whitening(base, a.out_dim)
        model.set_projection(mean, mat)
        cfg["whiten_dim"] = a.out_dim
    log = [{"step": 0, **{k: v for k, v in evaluate_cached().items()}}]
    print(json.dumps(log[-1]), flush=True)
    for prm in model.parameters():
        prm.requires_grad = False
    trainable = list(model.backbone._blocks[start:].parameters()) + list(model.backbone._conv_head.parameters()) \
        + list(model.backbone._bn1.parameters()) + list(model.proj.parameters())
    if a.learn_p:
        trainable.append(model.pool.p)
    for prm in trainable:
        prm.requires_grad = True
    opt = torch.optim.AdamW([{"params": [p for p in trainable if p is not model.pool.p]},
                             {"params": [model.pool.p] if a.learn_p else [], "lr": a.lr * 10}],
                            lr=a.lr, weight_decay=a.wd)
    rng = np.random.default_rng(a.seed)
    t0 = time.time()
    step = 0
    while step < a.steps and time.time() - t0 < a.max_minutes * 60:
        idx = rng.choice(n_img, size=min(a.batch, n_img), replace=False)
        pick = [rng.choice(views_of[k], size=2, replace=False) for k in idx]
        x = torch.from_numpy(tr_in[np.concatenate(pick)].astype(np.float32))  # 2B, pairs adjacent
        model.train()
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.eval()
        z = model.head(model.top(x, start))
        n = z.shape[0]
        sim = (z @ z.T / a.tau).masked_fill(torch.eye(n, dtype=torch.bool), float("-inf"))
        target = torch.arange(n) ^ 1
        loss_nce = F.cross_entropy(sim, target)
        with torch.no_grad():
            d = torch.cdist(z, z)
            same = (torch.arange(n)[:, None] // 2) == (torch.arange(n)[None, :] // 2)
            nn_idx = d.masked_fill(same, float("inf")).argmin(1)
        koleo = -torch.log((z - z[nn_idx]).norm(dim=1) + 1e-8).mean()
        loss = loss_nce + a.koleo * koleo
        lr = a.lr * 0.5 * (1 + math.cos(math.pi * step / a.steps)) * min(1.0, (step + 1) / max(1, a.warmup))
        for gp in opt.param_groups:
            gp["lr"] = lr * (10 if gp["params"] and gp["params"][0] is model.pool.p else 1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % 20 == 0 or step == 1:
            acc = (sim.argmax(1) == target).float().mean().item()
            print(json.dumps({"step": step, "loss": round(loss_nce.item(), 4), "koleo": round(koleo.item(), 3),
                              "acc": round(acc, 3), "p": round(float(model.pool.p), 3),
                              "min": round((time.time() - t0) / 60, 2)}), flush=True)
        if a.eval_every and step % a.eval_every == 0:
            log.append({"step": step, **evaluate_cached()})
            print(json.dumps(log[-1]), flush=True)
    minutes = round((time.time() - t0) / 60, 2)
    if not log or log[-1]["step"] != step:
        log.append({"step": step, **evaluate_cached()})
        print(json.dumps(log[-1]), flush=True)
    model.eval()
    cfg["p"] = float(model.pool.p)
    cfg["learn_p"] = False
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config": cfg, "state_dict": model.state_dict(), "args": vars(a), "steps": step,
                "minutes": minutes, "log": log}, out)
    print(f"saved {out} after {step} steps, {minutes} min", flush=True)


# ---------------------------------------------------------------------------------------------------------
# binary codes: PCA + ITQ on augmented training photos
# ---------------------------------------------------------------------------------------------------------
def itq(v: np.ndarray, iters: int = 50, seed: int = SEED) -> np.ndarray:
    """Iterative quantisation (Gong & Lazebnik): orthogonal R minimising ||sign(VR) - VR||."""
    rs = np.random.default_rng(seed)
    r, _ = np.linalg.qr(rs.normal(size=(v.shape[1], v.shape[1])))
    for _ in range(iters):
        b = np.sign(v @ r)
        u, _, wt = np.linalg.svd(b.T @ v)
        r = (u @ wt).T
    return r


def fit_codes(a) -> None:
    """Binary-code projections (D + 1, bits) for every width and kind ("first": sign of the first coordinates,
    "pca": PCA of the final embeddings of the cached training views, "itq": PCA + ITQ rotation); reports
    Hamming recall at precision 0.99 on both benchmarks and saves the kind asked for."""
    import torch
    from export_embedding import load_checkpoint

    torch.set_num_threads(1)
    model, cfg = load_checkpoint(a.checkpoint)
    c = np.load(cache_path(argparse.Namespace(**{**vars(a), "size": cfg["size"], "norm": cfg["norm"]})))
    x = cached_embed(model, c["tr"], a.cut).astype(np.float64)
    nd, q, g = (cached_embed(model, c[k], a.cut) for k in ("nd", "q", "g"))
    print(f"fit on {len(x)} embeddings of training views", flush=True)
    mean = x.mean(0)
    xc = x - mean
    _, _, vt = np.linalg.svd(xc, full_matrices=False)
    groups = np.asarray(neardup_items(audited=True)[1])
    iu = np.triu_indices(len(groups), 1)
    lab_nd = (groups[:, None] == groups[None, :])[iu]
    src, cls = np.asarray(c["src"]), list(c["cls"])
    keep = np.array([k not in DIHEDRAL for k in cls])
    lab_suite = np.zeros((len(src), len(g)), bool)
    lab_suite[np.arange(len(src)), src] = True
    report = {"float": {"neardup": eval_neardup(nd, list(groups))["recall_at_p99"],
                        "suite_non_dihedral": eval_suite(q, g, list(src), cls)["non_dihedral"]["recall_at_p99"]}}
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for bits in a.bits:
        for kind in ("first", "pca", "itq"):
            if kind == "first":  # sign of the first `bits` coordinates; with a PCA-whitening projection these
                # are the top principal components of the pooled features, already centred by the graph
                w = np.vstack([np.eye(x.shape[1], bits), np.zeros((1, bits))]).astype(np.float32)
            else:  # PCA of the final embeddings (+ ITQ rotation)
                p = vt[:bits].T
                if kind == "itq":
                    p = p @ itq(xc @ p)
                w = np.vstack([p, -(mean @ p)[None, :]]).astype(np.float32)
            if kind == a.kind:
                np.save(f"{out}{bits}.npy", w)

            def code(v: np.ndarray, w: np.ndarray = w) -> np.ndarray:
                return (v @ w[:-1] + w[-1]) > 0

            cn = code(nd)
            d = np.stack([(cn[i] != cn).sum(1) for i in range(len(cn))])[iu]
            rec_nd, thr_nd = recall_at_precision(-d.astype(float), lab_nd)
            hs = hamming_eval(code(q[keep]), code(g), lab_suite[keep])
            report[f"{bits}_{kind}"] = {"neardup": round(rec_nd, 4), "neardup_max_distance": -thr_nd,
                                        "suite_non_dihedral": hs["recall_at_p99"],
                                        "suite_max_distance": hs["max_distance"]}
            print(bits, kind, json.dumps(report[f"{bits}_{kind}"]), flush=True)
    Path(f"{out}_report.json").write_text(json.dumps(report, indent=2))


# ---------------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    def model_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--size", type=int, default=224)
        p.add_argument("--p", type=float, default=3.0)
        p.add_argument("--norm", default="tf")
        p.add_argument("--checkpoint")
        p.add_argument("--onnx")
        p.add_argument("--whiten")
        p.add_argument("--seed", type=int, default=SEED)

    sub.add_parser("splits")
    pe = sub.add_parser("eval")
    model_args(pe)
    pe.add_argument("--json")
    pe.add_argument("--shipped", action="store_true", help="the runtime's CopyEmbedder() + its binary codes")
    pk = sub.add_parser("cache")
    model_args(pk)
    pk.add_argument("--cut", type=int, default=11, help="cache the output of MBConv blocks [0, cut)")
    pk.add_argument("--views", type=int, default=6, help="augmented views per training photo (+ the photo)")
    pk.add_argument("--no-rot90", dest="rot90", action="store_false")
    pt = sub.add_parser("train")
    model_args(pt)
    pt.add_argument("--cut", type=int, default=11)
    pt.add_argument("--views", type=int, default=6)
    pt.add_argument("--train-from", type=int, default=15, help="first MBConv block trained (16 = head only)")
    pt.add_argument("--out-dim", type=int, default=512, help="projection (PCA-whitening init); 0 = none")
    pt.add_argument("--out", required=True)
    pt.add_argument("--steps", type=int, default=400)
    pt.add_argument("--max-minutes", type=float, default=25)
    pt.add_argument("--batch", type=int, default=64, help="photos per batch (2 views each)")
    pt.add_argument("--lr", type=float, default=1e-4)
    pt.add_argument("--wd", type=float, default=1e-4)
    pt.add_argument("--warmup", type=int, default=20)
    pt.add_argument("--tau", type=float, default=0.05)
    pt.add_argument("--koleo", type=float, default=0.03)
    pt.add_argument("--learn-p", action="store_true")
    pt.add_argument("--eval-every", type=int, default=0)
    pt.add_argument("--no-vin", dest="vin", action="store_false")
    pc = sub.add_parser("fit-codes")
    pc.add_argument("--checkpoint", required=True, help="from `train` (--steps 0 = base + PCA-whitening)")
    pc.add_argument("--cut", type=int, default=11)
    pc.add_argument("--views", type=int, default=6)
    pc.add_argument("--out", required=True, help="prefix: writes PREFIX64.npy, PREFIX256.npy, PREFIX_report.json")
    pc.add_argument("--bits", type=int, nargs="+", default=[64, 128, 256])
    pc.add_argument("--kind", choices=["first", "pca", "itq"], default="first", help="which kind to save")
    a = ap.parse_args(argv)

    if a.cmd == "splits":
        sp = splits(leak_similarity())
        print(json.dumps({k: len(v) for k, v in sp.items()}))
        print("excluded (near a neardup photo):", [p.name for p in sp["excluded_leak"]])
    elif a.cmd == "eval":
        embed, handle = get_embedder(a)
        res, cache = evaluate(embed, splits(leak_similarity()))
        if a.shipped:
            res["codes"] = code_metrics(handle, cache)
        print(json.dumps(res, indent=1))
        if a.json:
            Path(a.json).parent.mkdir(parents=True, exist_ok=True)
            Path(a.json).write_text(json.dumps(res, indent=2))
    elif a.cmd == "cache":
        build_cache(a)
    elif a.cmd == "train":
        train(a)
    elif a.cmd == "fit-codes":
        fit_codes(a)


if __name__ == "__main__":
    main()
