"""Train the damaged-part detector (``weights/damage_det.onnx``) with ultralytics, on CPU, offline.

    # .venv-train has ultralytics (scripts/train-env.sh)
    OMP_NUM_THREADS=1 YOLO_OFFLINE=1 nice -n 5 .venv-train/bin/python training/train_damage_detector.py train \
        --epochs 60
    .venv-train/bin/python training/train_damage_detector.py export     # -> weights/damage_det.onnx + manifest
    .venv/bin/claimlens bench damage ../shared/data/car_damage_roboflow --json out/damage/bench_heldout.json
    .venv-train/bin/python training/train_damage_detector.py manifest --bench-json out/damage/bench_heldout.json

Data: ``../shared/data/car_damage_roboflow`` (481 real photos, 256 px, Roboflow Universe
'car-damage-detection-t0g92' v2, CC BY 4.0; boxes/polygons of the damaged part, 7 classes). The split comes
from :func:`claimlens.bench.damage.assign_splits` (the bench uses the same function): test/ plus ~15 % of the
source-photo groups of valid/ are held out and never seen here; ~8 % of the groups are the ``tune`` set
ultralytics validates on each epoch (it picks ``best.pt``); the rest (348 photos) is trained on. Groups join
exports of one Roboflow source name and the pairs of ``known_duplicates.csv``, so no source photo is on two
sides.

The YOLO dataset view lives under ``--work`` (default ``out/damage``, git-ignored): images are symlinks to
../shared/data (nothing copied), labels are rewritten there as plain boxes (the set mixes polygon and box rows in
one file, which ultralytics drops as corrupt), and the label caches ultralytics writes land there too.

Checkpoint shipped: ``last.pt`` (the end of the fixed schedule: LR decayed, mosaic off for the last epochs).
ultralytics' ``best.pt`` is the epoch with the best fitness on ``tune``, but 39 photos make that a noisy pick
(docs/damage.md).

Offline: the model is built from ``yolo11n.yaml`` (no pretrained weights exist offline here), ``amp=False``
(the AMP check downloads a model), ``plots=False`` (plots download a font), ``YOLO_OFFLINE=1`` and
``YOLO_AUTOINSTALL=0`` (set below before ultralytics is imported) so it never tries the network or pip.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "car_damage_roboflow"
DEFAULT_WORK = REPO / "out" / "damage"
MODEL_NAME = "damage_det"
ONNX_FILE = "damage_det.onnx"

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "0")
os.environ.setdefault("YOLO_VERBOSE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

sys.path.insert(0, str(REPO))
from claimlens.bench.damage import assign_splits, label_path, list_images, read_boxes, read_names


def build_view(data: Path, work: Path) -> Path:
    """Symlink view ``work/view/{train,tune,heldout}/{images,labels}`` + ``data.yaml``; returns the yaml."""
    images = list_images(data)
    sides = assign_splits(data, images)
    view = work / "view"
    if view.exists():
        shutil.rmtree(view)
    counts: dict[str, int] = {}
    for img in images:
        side = sides[img]
        name = img.replace("/", "__")  # valid/images/x.jpg -> valid__images__x.jpg (unique across splits)
        stem = Path(name).stem
        (view / side / "images").mkdir(parents=True, exist_ok=True)
        (view / side / "labels").mkdir(parents=True, exist_ok=True)
        os.symlink((data / img).resolve(), view / side / "images" / name)
        # labels: written as boxes (the set mixes polygon and box rows in one file, which ultralytics rejects
        # as corrupt; a polygon's bounding rectangle is what its detect task would use anyway)
        w, h = 1, 1  # read_boxes scales normalised coordinates by these: stay normalised
        rows = [f"{c} {(x1 + x2) / 2:.6f} {(y1 + y2) / 2:.6f} {x2 - x1:.6f} {y2 - y1:.6f}"
                for c, x1, y1, x2, y2 in read_boxes(label_path(data, img), w, h) if x2 > x1 and y2 > y1]
        (view / side / "labels" / f"{stem}.txt").write_text("\n".join(rows) + ("\n" if rows else ""))
        counts[side] = counts.get(side, 0) + 1
    names = read_names(data)
    yaml = view / "data.yaml"
    yaml.write_text(
        f"path: {view.resolve()}\ntrain: train/images\nval: tune/images\ntest: heldout/images\n"
        f"nc: {len(names)}\nnames: {json.dumps(names)}\n", encoding="utf-8")
    (work / "split.json").write_text(json.dumps({"counts": counts, "sides": sides}, indent=1) + "\n")
    print("dataset view", yaml, counts, flush=True)
    return yaml


def cmd_train(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    from ultralytics import YOLO
    from ultralytics.utils import SETTINGS

    SETTINGS.update({"sync": False})  # no analytics / hub calls
    yaml = build_view(args.data, args.work)
    model = YOLO(args.model)  # a .yaml: architecture only, random init
    t0 = time.time()
    model.train(
        data=str(yaml), epochs=args.epochs, imgsz=args.imgsz, batch=args.batch, workers=0, device="cpu",
        pretrained=False, amp=False, plots=False, seed=0, deterministic=True, cache=False,
        project=str(args.work.resolve() / "runs"), name=args.name, exist_ok=True, patience=0,
        optimizer=args.optimizer, lr0=args.lr0, cos_lr=False, close_mosaic=args.close_mosaic,
        # augmentation (ultralytics defaults, spelled out): mosaic, left-right flips, HSV, scale/translate
        mosaic=1.0, fliplr=0.5, flipud=0.0, hsv_h=0.015, hsv_s=0.7, hsv_v=0.4, scale=0.5, translate=0.1,
        degrees=0.0, mixup=0.0, verbose=True,
    )
    print(f"training wall time {time.time() - t0:.0f} s", flush=True)


def cmd_export(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    from ultralytics import YOLO

    ckpt = args.checkpoint or (args.work / "runs" / args.name / "weights" / "last.pt")
    model = YOLO(str(ckpt))
    out = model.export(format="onnx", opset=17, imgsz=args.imgsz, simplify=False, dynamic=False, half=False,
                       nms=False, device="cpu")
    dest = REPO / "weights" / ONNX_FILE
    shutil.copyfile(out, dest)
    print("exported", ckpt, "->", dest, flush=True)
    write_manifest(args, ckpt, metrics=None)


def write_manifest(args: argparse.Namespace, ckpt: Path | None, metrics: dict | None) -> None:
    from claimlens.vision.onnx import manifest_entries, sha256_file, upsert_manifest_entry

    dest = REPO / "weights" / ONNX_FILE
    old = manifest_entries().get(MODEL_NAME, {})
    train_info = dict(old.get("training") or {})
    if ckpt is not None:
        train_info["checkpoint"] = str(Path(ckpt).relative_to(REPO)) if Path(ckpt).is_relative_to(REPO) else str(ckpt)
        results = Path(ckpt).parent.parent / "results.csv"
        if results.is_file():
            rows = results.read_text().strip().splitlines()
            train_info["epochs_run"] = len(rows) - 1
            train_info["last_results_row"] = dict(zip([c.strip() for c in rows[0].split(",")],
                                                      [c.strip() for c in rows[-1].split(",")]))
        split = args.work / "split.json"
        if split.is_file():
            train_info["split_counts"] = json.loads(split.read_text())["counts"]
    if args.train_seconds:
        train_info["wall_seconds"] = args.train_seconds
    if args.note:
        train_info["note"] = args.note
    entry = {
        "name": MODEL_NAME,
        "file": ONNX_FILE,
        "sha256": sha256_file(dest),
        "bytes": dest.stat().st_size,
        "source": {
            "trained_here": True,
            "framework": "ultralytics==8.4.190 (AGPL-3.0), torch==2.13.0, architecture yolo11n.yaml, random init "
                         "(no pretrained weights)",
            "data": "../shared/data/car_damage_roboflow: Roboflow Universe 'car-damage-detection-t0g92' v2 "
                    "(workspace capstone-nh0nc), https://universe.roboflow.com/capstone-nh0nc/car-damage-detection-t0g92, "
                    "via https://github.com/yatharthbhatia/car-damage-analysis @18b6b24; CC BY 4.0",
        },
        "licence": ("AGPL-3.0 (treated as such) + CC BY 4.0 data attribution. The weights were trained here, from "
                    "random initialisation (no Ultralytics pretrained weights), with the AGPL-3.0 ultralytics package "
                    "on CC BY 4.0 data (attribution: source above and docs/damage.md). Ultralytics' position is that "
                    "models trained with its AGPL-3.0 code fall under AGPL-3.0 unless an Ultralytics Enterprise "
                    "licence is held, and the exported ONNX carries 'license: AGPL-3.0' in its metadata. Whether "
                    "trained weights are a derivative work is legally unsettled; we take the conservative reading: "
                    "shipping this file in a network service means offering the corresponding source (the training "
                    "script, this recipe and the repo are that source); clear it with legal before a closed "
                    "commercial deployment, or retrain under an Enterprise licence or with a non-AGPL trainer. The "
                    "runtime (onnxruntime + numpy + OpenCV) contains no ultralytics code."),
        "recipe": ("scripts/train-env.sh && OMP_NUM_THREADS=1 YOLO_OFFLINE=1 nice -n 5 .venv-train/bin/python "
                   f"training/train_damage_detector.py train --epochs {args.epochs} --imgsz {args.imgsz} "
                   f"--batch {args.batch} --close-mosaic {args.close_mosaic} && .venv-train/bin/python training/train_damage_detector.py export "
                   f"--imgsz {args.imgsz}"),
        "task": ("damaged-part detection, 7 classes in this order: bonnet, bumper, trunk (Roboflow 'Dickey'), door, "
                 "fender, light, windshield. Input 'images' float32 1x3xSxS RGB 0..1, letterboxed (grey 114, "
                 "centred); output 'output0' 1x(4+7)x(anchors): cx, cy, w, h in input pixels, then class scores "
                 "(sigmoid, no objectness); NMS not in the graph. Runtime: claimlens.vision.damage.detector"),
        "input": {"name": "images", "shape": [1, 3, args.imgsz, args.imgsz], "format": "RGB 0..1, letterbox 114"},
        "output": {"name": "output0", "layout": "1 x 11 x N (cx, cy, w, h, 7 class scores)"},
        "classes": ["bonnet", "bumper", "trunk", "door", "fender", "light", "windshield"],
        "training": train_info,
        "metrics": metrics if metrics is not None else old.get("metrics", {}),
    }
    upsert_manifest_entry(entry)
    print("manifest entry", MODEL_NAME, entry["sha256"], entry["bytes"], flush=True)


def cmd_manifest(args: argparse.Namespace) -> None:
    metrics: dict = {}
    for path in args.bench_json:
        res = json.loads(Path(path).read_text())
        m = res["metrics"]
        key = f"{Path(res['dataset']).name}_{m.get('split', 'all')}"
        metrics[key] = {k: m[k] for k in ("map50", "map50_95", "per_class", "n_boxes", "operating_point",
                                          "ms_per_image", "peak_rss_mb", "speed_12mp") if k in m}
        metrics[key]["n_images"] = res["n_images"]
        metrics[key]["command"] = args.command_line or f"claimlens bench damage {res['dataset']}"
    ckpt = args.checkpoint or (args.work / "runs" / args.name / "weights" / "last.pt")
    write_manifest(args, ckpt if Path(ckpt).is_file() else None, metrics)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["view", "train", "export", "manifest"])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK)
    ap.add_argument("--name", default="yolo11n_256")
    ap.add_argument("--model", default="yolo11n.yaml")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--imgsz", type=int, default=256)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--optimizer", default="AdamW")
    ap.add_argument("--lr0", type=float, default=0.002)
    ap.add_argument("--close-mosaic", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--checkpoint", type=Path, default=None)
    ap.add_argument("--train-seconds", type=int, default=0, help="measured training wall time, for the manifest")
    ap.add_argument("--bench-json", nargs="*", default=[])
    ap.add_argument("--command-line", default="")
    ap.add_argument("--note", default="", help="free text for the manifest's training record")
    args = ap.parse_args(argv)
    if args.command == "view":
        build_view(args.data, args.work)
    elif args.command == "train":
        cmd_train(args)
    elif args.command == "export":
        cmd_export(args)
    else:
        cmd_manifest(args)


if __name__ == "__main__":
    main()
