"""Fixed dev / test splits of the real photo sets the integrity checks are fitted and measured on.

The real-data protocol (docs/integrity.md): thresholds and models are fitted on ``dev`` only; ``test`` is
read once per change and reported first. A split never separates two photos of one scene (or one source
photo), so a model cannot pass the test by recognising a scene it saw in dev:

* ``recapture_real``: scene groups in ``datasets/recapture_real_split.csv`` (committed; rebuilt by
  :func:`build_recapture_split`): photos of one source whose copy-detection embeddings are close (cosine
  >= 0.5: a real scene and its re-photographs from a laptop, a phone or a printout, or two shots of one
  scene) form one group; groups go to dev / test in hash order, balancing each source's photo count.
* ``tamper_real`` (CASIA v1.0): CASIA scene ids (``Au_ani_0002`` -> ``ani0002``; a forgery
  ``Sp_D_CND_A_pla0005_pla0023_0281`` joins ``pla0005`` and ``pla0023``) are merged into groups, so a
  forgery, its authentic background and its donor stay on one side; groups go to dev / test by hash.
* ``car_damage_roboflow`` and ``car_damage_train`` (val photos only): one group per original photo (the
  name before Roboflow's ``.rf.`` suffix; the known duplicate pairs of car_damage_roboflow merged), split by
  hash. Each photo there is its own scene.

Everything is deterministic (md5 of names, no randomness), so anyone re-running a bench gets the same halves.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"
RECAPTURE_SPLIT_CSV = REPO / "datasets" / "recapture_real_split.csv"
SPLITS = ("dev", "test")
GENUINE_SETS = ("car_damage_roboflow", "car_damage_train", "recapture_real", "tamper_real")
SCENE_SIMILARITY = 0.5  # copy-embedding cosine above which two photos of one source show one scene
_CASIA_ID = re.compile(r"^([a-z]{3})_?(\d{4})$")


def _h(key: str) -> int:
    return int(hashlib.md5(key.encode()).hexdigest()[:8], 16)


def hash_split(group: str) -> str:
    """``dev`` or ``test`` from the md5 of a group key (about half each)."""
    return SPLITS[_h(group) & 1]


def roboflow_group(rel_image: str) -> str:
    """The original photo behind a Roboflow export name (``a/b/0009_JPEG.rf.<hash>.jpg`` -> ``0009_JPEG``)."""
    return Path(rel_image).name.split(".rf.")[0]


def casia_ids(rel_image: str) -> list[str]:
    """CASIA v1.0 scene ids a file depends on: ``Au_ani_0002`` -> [ani0002]; ``Sp_D_CND_A_pla0005_pla0023_0281``
    -> [pla0005, pla0023] (background, donor)."""
    stem = Path(rel_image).stem
    parts = stem.split("_")
    if parts[0] == "Au" and len(parts) >= 3:
        return [parts[1] + parts[2]]
    ids = [p for p in parts if _CASIA_ID.match(p) and not p.isdigit()]
    return ids or [stem]


def _union_groups(items: Iterable[tuple[str, list[str]]]) -> dict[str, str]:
    """item -> group key (the smallest id of its connected component) over shared ids."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    items = list(items)
    for _, ids in items:
        for a in ids[1:]:
            ra, rb = find(ids[0]), find(a)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    return {name: find(ids[0]) for name, ids in items}


def casia_splits(rel_images: Iterable[str]) -> dict[str, str]:
    """image -> dev / test for a tamper folder: CASIA scene groups (other names: one group per file)."""
    return {rel: hash_split(g) for rel, g in _union_groups((r, casia_ids(r)) for r in rel_images).items()}


@dataclass(frozen=True)
class SplitTable:
    """(set, relative image path) -> (group, split)."""

    rows: dict[tuple[str, str], tuple[str, str]]

    def split(self, set_name: str, rel_image: str) -> str:
        key = (set_name, rel_image)
        if key not in self.rows:
            raise KeyError(f"{rel_image} of {set_name} has no split (rebuild datasets/recapture_real_split.csv?)")
        return self.rows[key][1]


def read_recapture_split(path: Path = RECAPTURE_SPLIT_CSV) -> dict[str, dict[str, str]]:
    """image -> {scene, split, kind_detail} from the committed CSV."""
    with path.open(newline="") as f:
        return {r["image"]: r for r in csv.DictReader(f)}


def split_table(shared_data: Path = SHARED_DATA) -> SplitTable:
    """Every photo of the four real sets that are present under ``shared_data``, with its group and split."""
    rows: dict[tuple[str, str], tuple[str, str]] = {}
    robo = shared_data / "car_damage_roboflow"
    if robo.is_dir():
        rels = sorted(p.relative_to(robo).as_posix() for p in robo.rglob("*.jpg"))
        merged: dict[str, list[str]] = {r: [roboflow_group(r)] for r in rels}
        dup = robo / "known_duplicates.csv"
        if dup.is_file():
            with dup.open(newline="") as f:
                for d in csv.DictReader(f):
                    for a, b in ((d["image_a"], d["image_b"]), (d["image_b"], d["image_a"])):
                        if a in merged:
                            merged[a].append(roboflow_group(b))
        for rel, group in _union_groups(merged.items()).items():
            rows[("car_damage_roboflow", rel)] = (group, hash_split(group))
    train = shared_data / "car_damage_train"
    if (train / "val.txt").is_file():
        for line in (train / "val.txt").read_text().splitlines():
            rel = line.strip().removeprefix("./")
            if rel:
                group = roboflow_group(rel)
                rows[("car_damage_train", rel)] = (group, hash_split(group))
    tamper = shared_data / "tamper_real"
    if (tamper / "labels.csv").is_file():
        with (tamper / "labels.csv").open(newline="") as f:
            rels = [r["image"] for r in csv.DictReader(f)]
        for rel, group in _union_groups((r, casia_ids(r)) for r in rels).items():
            rows[("tamper_real", rel)] = (group, hash_split(group))  # = casia_splits(rels)
    if (shared_data / "recapture_real").is_dir() and RECAPTURE_SPLIT_CSV.is_file():
        for rel, r in read_recapture_split().items():
            rows[("recapture_real", rel)] = (r["scene"], r["split"])
    return SplitTable(rows)


def genuine_photos(shared_data: Path = SHARED_DATA) -> list[tuple[str, str, Path]]:
    """(set, relative path, path) of every genuine photo of the false-alarm budget: all of
    car_damage_roboflow, the val photos of car_damage_train, the ``real`` photos of recapture_real and the
    ``authentic`` photos of tamper_real. Sets missing under ``shared_data`` are left out."""
    out: list[tuple[str, str, Path]] = []
    robo = shared_data / "car_damage_roboflow"
    if robo.is_dir():
        out += [("car_damage_roboflow", p.relative_to(robo).as_posix(), p) for p in sorted(robo.rglob("*.jpg"))]
    train = shared_data / "car_damage_train"
    if (train / "val.txt").is_file():
        for line in (train / "val.txt").read_text().splitlines():
            rel = line.strip().removeprefix("./")
            if rel:
                out.append(("car_damage_train", rel, train / rel))
    for name, label in (("recapture_real", "real"), ("tamper_real", "authentic")):
        path = shared_data / name / "labels.csv"
        if path.is_file():
            with path.open(newline="") as f:
                out += [(name, r["image"], shared_data / name / r["image"]) for r in csv.DictReader(f)
                        if r["label"] == label]
    return out


def kind_detail(rel_image: str, kind: str) -> str:
    """The recapture kind the issue reports (laptop, phone, print; ``screen`` where the source mixes them)."""
    folder = rel_image.split("/")[-2] if "/" in rel_image else ""
    return {"screen-laptop": "laptop", "screen-mobile": "phone", "screen-print": "print"}.get(folder, kind)


def build_recapture_split(dataset_dir: Path, out_csv: Path = RECAPTURE_SPLIT_CSV) -> list[dict[str, str]]:
    """Scene groups of recapture_real from the shipped copy-detection embedding, then a balanced dev / test
    assignment; writes ``out_csv`` (image,label,kind_detail,source,scene,split). How the committed CSV
    was made; re-run only when the set changes."""
    import numpy as np
    from PIL import Image

    from claimlens.vision.embedding import CopyEmbedder

    with (dataset_dir / "labels.csv").open(newline="") as f:
        labels = list(csv.DictReader(f))
    emb = CopyEmbedder().embed_batch(
        [np.asarray(Image.open(dataset_dir / r["image"]).convert("RGB").reduce(4)) for r in labels])
    sim = emb @ emb.T
    source = [r["image"].split("/")[0] for r in labels]
    items = []
    for i, r in enumerate(labels):
        near = [labels[j]["image"] for j in range(len(labels))
                if j != i and source[j] == source[i] and sim[i, j] >= SCENE_SIMILARITY]
        items.append((r["image"], [r["image"], *near]))
    group = _union_groups(items)
    members: dict[str, list[str]] = {}
    for img, g in group.items():
        members.setdefault(g, []).append(img)
    count: dict[tuple[str, str], int] = {}
    split_of: dict[str, str] = {}
    for g in sorted(members, key=lambda k: (_h(k), k)):  # hash order, balance photo counts per source
        src = g.split("/")[0]
        s = min(SPLITS, key=lambda x: (count.get((src, x), 0), x))
        split_of[g] = s
        count[(src, s)] = count.get((src, s), 0) + len(members[g])
    scene_id = {g: f"s{_h(g) % 100000:05d}" for g in members}
    rows = [{"image": r["image"], "label": r["label"], "kind_detail": kind_detail(r["image"], r["kind"]),
             "source": r["image"].split("/")[0], "scene": scene_id[group[r["image"]]],
             "split": split_of[group[r["image"]]]} for r in labels]
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    with out_csv.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return rows
