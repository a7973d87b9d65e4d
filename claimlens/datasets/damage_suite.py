"""Generated suites for the damage-forensics benches (fake scratches, part age, same part), from real photos.

Why generated: no public set labels scratches as hand-made or accidental, ages one panel of a car, or pairs
survey and reinspection photos of the same physical part. The physics the detectors rely on is simple to
render onto real panels, and the labels are then exact. The numbers are optimistic (detector and renderer
written by the same people); ``docs/damage_forensics.md`` keeps them apart from numbers on real photos.

Sources: the real photos of ``../shared/data/car_damage_roboflow`` (CC BY 4.0, 256 px) with their YOLO boxes
of the damaged part (plain ``cls cx cy w h`` lines or polygon lines; both are read). Photos listed second in
``known_duplicates.csv`` are skipped (the same picture under another name would make a false "different
part" pair). A photo belongs to ``train`` or ``test`` by a hash of its relative path (the same split as
:func:`claimlens.datasets.integrity_suite.split_of`: calib = train), so the scorer is fitted on one half of
the source photos and evaluated on the other.

Scratch suite (``labels.csv``: ``image,label,x1,y1,x2,y2,kind,source``; label ``genuine`` | ``artificial``;
the box is the scratched region in the image's pixels). Sources: photos whose largest labelled part is a
painted panel (:func:`painted_sources`: no windshields or lamps). Per source photo, the labelled part (plus a
margin; the whole photo when the box is tiny) is upscaled to a 512-px panel crop and each class is rendered
once on it, in the same box of 35-70 % of the crop, the smoothest of 8 random boxes (:func:`panel_region`:
on paint rather than on a tyre, a grille or the background), with an exposed-material colour that contrasts
with that paint (:func:`_scratch_colour`):

* ``genuine`` (one contact event): a bundle of 6-30 striations in one direction with irregular spacing,
  long and mostly continuous (an occasional gap), sharing one slight curvature, tapering at the ends,
  lighter (clear coat/primer) or darker; optional paint transfer of another colour smeared along them
  (60 %); optional dent shading across the path (50 %).
* ``artificial`` kinds, in turn: ``sandpaper`` (a sharp-edged polygon of even haze and hundreds of short
  micro-scratches in all directions), ``swirl`` (circular arcs, polishing / rubbing in circles),
  ``crossing`` (straight strokes in 3-6 directions crossing each other), ``keys`` (3-8 straight strokes of
  equal length at equal spacing, sometimes two such sets) and ``card`` (a sharp-edged band rubbed back and
  forth: short strokes in two close directions over an even haze).

Both classes get the same lighting jitter (gradient, gamma, colour temperature), sensor-like noise and JPEG
85-95, and the same range of stroke widths (1-3 px) and contrasts.

Parts suite (``pairs.csv``: ``image_a,image_b,same_part,ax1,ay1,ax2,ay2,bx1,by1,bx2,by2,part``; ``labels.csv``:
``image,label,x1,y1,x2,y2,kind,source`` with label ``fresh`` | ``old``):

* pairs: each source photo (2x upscaled) is rendered twice under independent viewpoint (perspective warp,
  scale 0.8-1.25, rotation +-15 degrees), lighting (gamma, colour temperature, a specular highlight, a
  shadow band) and JPEG (70-95) changes: the two views of the part are a ``same_part`` pair. Each view A
  is also paired with the B view of another photo whose labelled part has the same class (1 negative per
  positive). Rank-1 in the bench uses every B view as the gallery.
* pairs, ``hard=True`` (``claimlens bench parts --suite --opt hard=1``): view B is instead a reinspection-like
  photo (:func:`hard_view`: part plane tilted 25-40 degrees with the parallax of a 2-8 % relief, scale
  0.5-1.8, rotation +-25 degrees, reframing, an occluder over 5-25 % of the box in 60 %, another scene
  reflected on the paint in 60 %, gamma 0.5-1.8, colour temperature +-25 %, a hard shadow edge, a specular
  highlight, defocus or motion blur, sensor noise, JPEG 50-90), and each A also gets the same-class part
  nearest in mean Lab colour as a second negative. The default suite is unchanged byte for byte.
* age (sources: :func:`age_sources`, painted parts covering at most half the photo, so that neighbours are
  visible): the labelled part of a photo aged relative to its neighbours (``old``: 1-3 of rust spots/patches,
  fading/chalking, dirt, gloss loss inside the part box) or left as is (``fresh``), both through the same
  lighting/JPEG jitter.

Everything is deterministic for (sources, seed, split, n): one numpy generator per photo and variant.
Regenerate: ``python -m claimlens.datasets.damage_suite scratches OUT [--split train|test] [--n 150]`` (and
``parts``), or let the benches do it with ``--suite``.
"""

from __future__ import annotations

import argparse
import csv
import math
from collections.abc import Callable, Iterable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from claimlens.datasets.integrity_suite import SHARED_DATA, encode_jpeg, split_of

DEFAULT_SOURCE = SHARED_DATA / "car_damage_roboflow"
PART_NAMES = ("bonnet", "bumper", "trunk", "door", "fender", "light", "windshield")
"""Classes of car_damage_roboflow's data.yaml (Bonnet, Bumper, Dickey = trunk, Door, Fender, Light, Windshield)."""

SCRATCH_KINDS = ("sandpaper", "swirl", "crossing", "keys", "card")
AGE_KINDS = ("rust", "fading", "dirt", "gloss")
PANEL_SIDE = 512
TRANSFER_COLOURS = ((0.75, 0.08, 0.08), (0.05, 0.05, 0.06), (0.92, 0.92, 0.9), (0.1, 0.2, 0.7),
                    (0.7, 0.7, 0.72), (0.9, 0.75, 0.1), (0.1, 0.45, 0.15))


# ------------------------------------------------------------------------------------------------ sources


def _split_name(split: str) -> str:
    return {"train": "calib", "test": "test", "calib": "calib", "all": "all"}[split]


def read_yolo_boxes(label_path: Path, w: int, h: int) -> list[tuple[int, int, int, int, int]]:
    """(x1, y1, x2, y2, class) boxes in pixels from a YOLO txt (box lines or polygon lines)."""
    out = []
    if not label_path.is_file():
        return out
    for line in label_path.read_text().splitlines():
        p = line.split()
        if len(p) < 5:
            continue
        try:
            cls = int(float(p[0]))
            v = [float(x) for x in p[1:]]
        except ValueError:
            continue
        if len(v) == 4:
            cx, cy, bw, bh = v
            x1, y1, x2, y2 = cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2
        else:
            xs, ys = v[0::2], v[1::2]
            x1, y1, x2, y2 = min(xs), min(ys), max(xs), max(ys)
        b = (max(0, int(x1 * w)), max(0, int(y1 * h)), min(w, round(x2 * w)), min(h, round(y2 * h)))
        if b[2] - b[0] >= 8 and b[3] - b[1] >= 8:
            out.append((*b, cls))
    return out


def list_sources(src: Path, split: str) -> list[tuple[str, Path]]:
    """(name, path) of the photos of ``src`` in ``split`` (train | test | all), sorted, known duplicates
    (second column of known_duplicates.csv) removed."""
    src = Path(src)
    dup: set[str] = set()
    kd = src / "known_duplicates.csv"
    if kd.is_file():
        with kd.open(newline="") as f:
            for r in csv.DictReader(f):
                dup.add((r.get("image_b") or "").strip())
    s = _split_name(split)
    out = []
    for p in sorted(src.rglob("*")):
        if p.suffix.lower() not in (".jpg", ".jpeg", ".png") or not p.is_file():
            continue
        rel = p.relative_to(src).as_posix()
        if rel in dup:
            continue
        name = f"{src.name}/{rel}"
        if s == "all" or split_of(name) == s:
            out.append((name, p))
    return out


def label_path_of(img_path: Path) -> Path:
    return img_path.parent.parent / "labels" / (img_path.stem + ".txt")


def _pick(sources: list, n: int, seed: int) -> list:
    if n >= len(sources):
        return sources
    rng = np.random.default_rng([seed, 5])
    return [sources[i] for i in np.sort(rng.choice(len(sources), size=n, replace=False))]


def _load(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.uint8)


def largest_box(path: Path, shape: tuple[int, int]) -> tuple[int, int, int, int, int] | None:
    boxes = read_yolo_boxes(label_path_of(path), shape[1], shape[0])
    if not boxes:
        return None
    return max(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))


def panel_crop(rgb: np.ndarray, box: tuple[int, int, int, int] | None, side: int = PANEL_SIDE) -> np.ndarray:
    """The part box plus a 10 % margin (the whole photo when there is no box or it is under 48 px), resized
    to long side ``side`` (bicubic), float32 0..1."""
    h, w = rgb.shape[:2]
    if box is not None and min(box[2] - box[0], box[3] - box[1]) >= 48:
        x1, y1, x2, y2 = box[:4]
        mx, my = int(0.1 * (x2 - x1)), int(0.1 * (y2 - y1))
        rgb = rgb[max(0, y1 - my):min(h, y2 + my), max(0, x1 - mx):min(w, x2 + mx)]
    hh, ww = rgb.shape[:2]
    s = side / max(hh, ww)
    out = cv2.resize(rgb, (max(16, round(ww * s)), max(16, round(hh * s))), interpolation=cv2.INTER_CUBIC)
    return out.astype(np.float32) / 255.0


# ------------------------------------------------------------------------------------------ rendering


def _finish(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Lighting jitter, sensor-like noise; uint8 out. The same for every class."""
    h, w = img.shape[:2]
    gx, gy = np.meshgrid(np.linspace(-1, 1, w, dtype=np.float32), np.linspace(-1, 1, h, dtype=np.float32))
    a = rng.uniform(0, 2 * np.pi)
    grad = 1.0 + float(rng.uniform(0.0, 0.25)) * (np.cos(a) * gx + np.sin(a) * gy)
    temp = np.array([1 + rng.uniform(-0.08, 0.08), 1.0, 1 + rng.uniform(-0.08, 0.08)], np.float32)
    img = np.clip(img * grad[..., None] * temp, 0, 1) ** float(rng.uniform(0.8, 1.25))
    img = img + rng.normal(0, rng.uniform(0.004, 0.015), img.shape).astype(np.float32)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def _draw(mask: np.ndarray, pts: np.ndarray, width: float, value: float = 1.0) -> None:
    """Anti-aliased polyline of ``width`` px into ``mask`` (float32), drawn at 4x sub-pixel precision."""
    thick = max(1, round(width))
    p = np.round(pts * 16).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(mask, [p], False, float(value), thickness=thick, lineType=cv2.LINE_AA, shift=4)


def _scratch_colour(base: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Target colour of exposed material and its contrast, for a scratch on the paint ``base`` (the region's
    pixels, float 0..1).

    Physics: a scratch through the clear coat scatters light (reads lighter than the paint), one through the
    colour coat shows grey primer, one to the metal shows dark metal or shadow. What a photo shows is the
    contrast with the paint: on dark paint the light kinds, on white or silver paint primer or dark metal,
    on mid tones any. The previous version drew the colour regardless of the paint, so ~1 render in 5 (of
    either class) was a light mark on white or a dark one on black, invisible in the photo. Identical for
    both classes."""
    lum = float(np.median(base.mean(axis=2))) if base.size else 0.5
    light = (np.array([rng.uniform(0.75, 1.0)] * 3, np.float32)
             * np.array([1, 1, rng.uniform(0.92, 1.0)], np.float32))
    primer = np.array([rng.uniform(0.45, 0.65)] * 3, np.float32)
    dark = np.array([rng.uniform(0.05, 0.2)] * 3, np.float32)
    options = [c for c in (light, primer, dark) if abs(float(c.mean()) - lum) >= 0.25] or [light, dark]
    weights = np.array([0.65 if c is light else 0.2 if c is primer else 0.15 for c in options])
    col = options[int(rng.choice(len(options), p=weights / weights.sum()))]
    return col, float(rng.uniform(0.35, 0.9))


def _composite(img: np.ndarray, mask: np.ndarray, col: np.ndarray, alpha: float) -> np.ndarray:
    m = np.clip(mask, 0, 1)[..., None] * alpha
    return img * (1 - m) + col[None, None, :] * m


def _region(shape: tuple[int, int], rng: np.random.Generator) -> tuple[int, int, int, int]:
    h, w = shape
    rw, rh = int(w * rng.uniform(0.35, 0.7)), int(h * rng.uniform(0.3, 0.65))
    x1, y1 = int(rng.integers(0, max(1, w - rw))), int(rng.integers(0, max(1, h - rh)))
    return x1, y1, x1 + rw, y1 + rh


def panel_region(panel: np.ndarray, rng: np.random.Generator, tries: int = 8) -> tuple[int, int, int, int]:
    """The scratched region: of ``tries`` random boxes (35-70 % of the crop), the smoothest (lowest mean
    gradient magnitude of the smoothed grey image), i.e. the one most on plain paint rather than on a tyre,
    a grille, the crumpled part of the damage or the background: people scratch paint, and a contact
    scratch shows on paint. Chosen once per source photo and shared by both classes."""
    g = cv2.GaussianBlur(panel.mean(axis=2).astype(np.float32), (0, 0), 1.0)
    mag = np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3))
    ii = cv2.integral(mag)
    best, best_v = None, float("inf")
    for _ in range(tries):
        x1, y1, x2, y2 = _region(panel.shape[:2], rng)
        v = (ii[y2, x2] - ii[y1, x2] - ii[y2, x1] + ii[y1, x1]) / max(1, (x2 - x1) * (y2 - y1))
        if v < best_v:
            best, best_v = (x1, y1, x2, y2), float(v)
    return best  # type: ignore[return-value]


def _arc_points(p0: np.ndarray, direction: float, length: float, sag: float, n: int = 24,
                wobble: float = 0.0, rng: np.random.Generator | None = None) -> np.ndarray:
    t = np.linspace(0, 1, n)
    d = np.array([math.cos(direction), math.sin(direction)])
    nrm = np.array([-d[1], d[0]])
    off = sag * length * 4 * t * (1 - t)
    if wobble and rng is not None:
        off = off + np.cumsum(rng.normal(0, wobble, n)) * 0.3
    return p0[None, :] + (t * length)[:, None] * d[None, :] + off[:, None] * nrm[None, :]


def render_genuine(img: np.ndarray, box: tuple[int, int, int, int], rng: np.random.Generator) -> np.ndarray:
    """One contact event: a bundle of striations in one direction (see module doc)."""
    h, w = img.shape[:2]
    x1, y1, x2, y2 = box
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    # contact scratches run mostly along the panel (the box's long axis), within +-35 degrees
    ang = (0.0 if x2 - x1 >= y2 - y1 else np.pi / 2) + rng.uniform(-0.6, 0.6)
    # length along the direction that fits the box
    d = np.array([math.cos(ang), math.sin(ang)])
    L = min((x2 - x1) / max(abs(d[0]), 1e-3), (y2 - y1) / max(abs(d[1]), 1e-3)) * rng.uniform(0.85, 1.0)
    band = min(x2 - x1, y2 - y1) * rng.uniform(0.25, 0.8)
    n = int(rng.integers(6, 31))
    sag = rng.uniform(-0.06, 0.06)
    nrm = np.array([-d[1], d[0]])
    mask = np.zeros((h, w), np.float32)
    offs = np.sort(rng.uniform(-band / 2, band / 2, n) if rng.random() < 0.5 else
                   rng.normal(0, band / 4, n).clip(-band / 2, band / 2))
    for o in offs:
        frac = rng.uniform(0.55, 1.0)
        start = rng.uniform(0, 1 - frac) * L
        p0 = np.array([cx, cy]) - d * L / 2 + d * start + nrm * o
        pts = _arc_points(p0, ang, frac * L, sag, n=32, wobble=0.15, rng=rng)
        width = float(rng.choice([1.0, 1.0, 1.5, 2.0, 3.0]))
        v = float(rng.uniform(0.35, 1.0))
        if rng.random() < 0.25:  # one gap
            k = int(rng.integers(8, 24))
            _draw(mask, pts[:k], width, v)
            _draw(mask, pts[k + 2:], width, v)
        else:
            _draw(mask, pts, width, v)
    # taper towards the ends of the path
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    along = ((xx - cx) * d[0] + (yy - cy) * d[1]) / (L / 2 + 1e-6)
    mask *= np.clip(1.3 - np.abs(along) ** 2 * 0.6, 0.2, 1.0)
    mask = cv2.GaussianBlur(mask, (0, 0), float(rng.uniform(0.3, 0.8)))
    col, alpha = _scratch_colour(img[y1:y2, x1:x2], rng)
    out = img.copy()
    if rng.random() < 0.5:  # dent: shading across the path
        across = ((xx - cx) * nrm[0] + (yy - cy) * nrm[1]) / (band / 2 + 10)
        bump = -across * np.exp(-across ** 2) * np.exp(-np.clip(np.abs(along) - 0.7, 0, None) ** 2 * 8)
        out = out * (1 + float(rng.uniform(0.1, 0.3)) * bump[..., None])
    out = _composite(out, mask, col, alpha)
    if rng.random() < 0.6:  # paint transfer of the other object
        tc = np.array(TRANSFER_COLOURS[int(rng.integers(len(TRANSFER_COLOURS)))], np.float32)
        sm = cv2.GaussianBlur(mask, (0, 0), float(rng.uniform(1.5, 3.5)))
        sm = sm / max(float(sm.max()), 1e-6)
        sm *= (rng.random((h, w)) > 0.3).astype(np.float32) * 0.5 + 0.5
        out = _composite(out, sm, tc, float(rng.uniform(0.3, 0.7)))
    return np.clip(out, 0, 1)


def _polygon_mask(shape: tuple[int, int], box: tuple[int, int, int, int], rng: np.random.Generator) -> np.ndarray:
    h, w = shape
    x1, y1, x2, y2 = box
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    k = int(rng.integers(4, 7))
    angs = np.sort(rng.uniform(0, 2 * np.pi, k))
    rx, ry = (x2 - x1) / 2, (y2 - y1) / 2
    rad = rng.uniform(0.75, 1.0, k)
    pts = np.stack([cx + rx * rad * np.cos(angs), cy + ry * rad * np.sin(angs)], 1)
    if rng.random() < 0.5:  # a rotated rectangle instead
        a = rng.uniform(-0.4, 0.4)
        r = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
        rect = np.array([[-rx, -ry], [rx, -ry], [rx, ry], [-rx, ry]]) * 0.85
        pts = rect @ r.T + np.array([cx, cy])
    m = np.zeros((h, w), np.float32)
    cv2.fillPoly(m, [np.round(pts * 16).astype(np.int32)], 1.0, lineType=cv2.LINE_AA, shift=4)
    return m


def render_artificial(img: np.ndarray, box: tuple[int, int, int, int], kind: str,
                      rng: np.random.Generator) -> np.ndarray:
    """A hand-made pattern of ``kind`` (one of :data:`SCRATCH_KINDS`) in ``box``."""
    h, w = img.shape[:2]
    x1, y1, x2, y2 = box
    bw, bh = x2 - x1, y2 - y1
    mask = np.zeros((h, w), np.float32)
    col, alpha = _scratch_colour(img[y1:y2, x1:x2], rng)
    out = img.copy()

    def rnd_pt() -> np.ndarray:
        return np.array([rng.uniform(x1, x2), rng.uniform(y1, y2)])

    if kind in ("sandpaper", "card"):
        patch = _polygon_mask((h, w), box, rng)
        haze = float(rng.uniform(0.08, 0.3))
        tex = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 0.7)
        out = _composite(out, patch * (0.6 + 0.8 * tex), col, haze)
        n = int(rng.integers(250, 700)) if kind == "sandpaper" else int(rng.integers(120, 300))
        base_ang = rng.uniform(0, np.pi)
        for _ in range(n):
            p0 = rnd_pt()
            if kind == "sandpaper":
                a, ln = rng.uniform(0, np.pi), rng.uniform(4, 22)
            else:
                a = base_ang + (0.18 if rng.random() < 0.5 else -0.18) + rng.normal(0, 0.08)
                ln = rng.uniform(15, 60)
            pts = _arc_points(p0, a, ln, 0.0, n=4)
            _draw(mask, pts, 1.0, float(rng.uniform(0.3, 1.0)))
        mask *= patch
    elif kind == "swirl":
        for _ in range(int(rng.integers(12, 45))):
            c = rnd_pt()
            r = rng.uniform(8, 0.5 * min(bw, bh))
            a0 = rng.uniform(0, 2 * np.pi)
            span = rng.uniform(1.0, 5.0)
            t = np.linspace(a0, a0 + span, 40)
            rr = r * (1 + rng.uniform(-0.2, 0.2) * (t - a0) / span)
            pts = np.stack([c[0] + rr * np.cos(t), c[1] + rr * np.sin(t) * rng.uniform(0.6, 1.0)], 1)
            _draw(mask, pts, float(rng.choice([1.0, 1.5, 2.0])), float(rng.uniform(0.4, 1.0)))
    elif kind == "crossing":
        dirs = rng.uniform(0, np.pi, int(rng.integers(3, 7)))
        for a in dirs:
            for _ in range(int(rng.integers(2, 8))):
                ln = rng.uniform(0.3, 0.9) * math.hypot(bw, bh) / 1.6
                p0 = rnd_pt() - np.array([math.cos(a), math.sin(a)]) * ln / 2
                pts = _arc_points(p0, a, ln, rng.uniform(-0.02, 0.02), n=8)
                _draw(mask, pts, float(rng.choice([1.0, 1.5, 2.0, 3.0])), float(rng.uniform(0.4, 1.0)))
    elif kind == "keys":
        for _ in range(1 if rng.random() < 0.65 else 2):
            a = rng.uniform(0, np.pi)
            d = np.array([math.cos(a), math.sin(a)])
            nrm = np.array([-d[1], d[0]])
            k = int(rng.integers(3, 9))
            gap = rng.uniform(8, 30)
            ln = min(bw / max(abs(d[0]), 1e-3), bh / max(abs(d[1]), 1e-3)) * rng.uniform(0.5, 0.9)
            c = np.array([(x1 + x2) / 2, (y1 + y2) / 2]) + rng.uniform(-0.1, 0.1, 2) * [bw, bh]
            width = float(rng.choice([1.5, 2.0, 3.0]))
            for i in range(k):
                o = (i - (k - 1) / 2) * gap + rng.normal(0, 0.5)
                p0 = c - d * ln / 2 + nrm * o + d * rng.normal(0, 2)
                pts = _arc_points(p0, a + rng.normal(0, 0.01), ln * rng.uniform(0.95, 1.05), 0.0, n=4)
                _draw(mask, pts, width, float(rng.uniform(0.7, 1.0)))
    else:
        raise ValueError(f"unknown kind {kind}")
    mask = cv2.GaussianBlur(mask, (0, 0), float(rng.uniform(0.3, 0.8)))
    return np.clip(_composite(out, mask, col, alpha), 0, 1)


# ------------------------------------------------------------------------------------------ scratch suite


def _write(out_dir: Path, rel: str, data: bytes) -> str:
    p = out_dir / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return rel


def _write_csv(path: Path, rows: list[dict], fields: tuple[str, ...]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=list(fields), extrasaction="ignore")
        wr.writeheader()
        wr.writerows(rows)


def generate_scratch_suite(out_dir: Path, sources: Iterable[Path] | Path | None = None, *, n: int = 150,
                           seed: int = 0, split: str = "test") -> list[dict]:
    """Write ``n`` source photos x (1 genuine + 1 artificial) scratch images and labels.csv to ``out_dir``."""
    out_dir = Path(out_dir)
    src = _one_source(sources)
    rows = []
    for i, (name, path) in enumerate(_pick(painted_sources(list_sources(src, split)), n, seed)):
        rgb = _load(path)
        panel = panel_crop(rgb, largest_box(path, rgb.shape[:2]))
        stem = path.stem[:40]
        box = panel_region(panel, np.random.default_rng([seed, i, 0]))
        for label in ("genuine", "artificial"):
            kind = "contact" if label == "genuine" else SCRATCH_KINDS[i % len(SCRATCH_KINDS)]
            rng = np.random.default_rng([seed, i, 1 if label == "genuine" else 2])
            img = render_genuine(panel, box, rng) if label == "genuine" else render_artificial(panel, box, kind, rng)
            rel = _write(out_dir, f"{label}/{i:04d}_{stem}.jpg", encode_jpeg(_finish(img, rng), int(rng.integers(85, 96))))
            rows.append({"image": rel, "label": label, "x1": box[0], "y1": box[1], "x2": box[2], "y2": box[3],
                         "kind": kind, "source": name})
    _write_csv(out_dir / "labels.csv", rows, ("image", "label", "x1", "y1", "x2", "y2", "kind", "source"))
    return rows


GLASS_PARTS = ("light", "windshield")
"""Parts whose labelled damage is glass or a lamp lens: no paint to scratch, so no scratch-suite source."""


def painted_sources(sources: list[tuple[str, Path]]) -> list[tuple[str, Path]]:
    """The sources whose largest labelled part is a painted panel (not :data:`GLASS_PARTS`; photos without a
    box are kept, the whole photo is then the panel). Paint scratches, genuine or hand-made, are rendered on
    paint: on a shattered windshield or a broken lamp the crack pattern of the source photo swamps either
    class and the label says nothing the photo could show (per-class test AUC there was ~0.69 against
    0.85-0.95 on the panels, with the same scorer)."""
    out = []
    for name, path in sources:
        with Image.open(path) as im:
            w, h = im.size
        b = largest_box(path, (h, w))
        if b is None or not (0 <= b[4] < len(PART_NAMES)) or PART_NAMES[b[4]] not in GLASS_PARTS:
            out.append((name, path))
    return out


def _one_source(sources: Iterable[Path] | Path | None) -> Path:
    if sources is None:
        return DEFAULT_SOURCE
    if isinstance(sources, (str, Path)):
        return Path(sources)
    lst = list(sources)
    return Path(lst[0]) if lst else DEFAULT_SOURCE


# -------------------------------------------------------------------------------------------- parts suite


def _view(rgb: np.ndarray, box: tuple[int, int, int, int], rng: np.random.Generator,
          strong: bool = True) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """One simulated photo of the scene: perspective, scale, rotation, lighting; returns (uint8, box)."""
    h, w = rgb.shape[:2]
    s = rng.uniform(0.8, 1.25)
    rot = rng.uniform(-15, 15)
    jit = 0.08 if strong else 0.03
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = src + (rng.uniform(-jit, jit, (4, 2)) * [w, h]).astype(np.float32)
    P = cv2.getPerspectiveTransform(src, dst)
    R = cv2.getRotationMatrix2D((w / 2, h / 2), rot, s)
    M = np.vstack([R, [0, 0, 1]]) @ P
    corners = cv2.perspectiveTransform(src[None], M)[0]
    mn = corners.min(0)
    T = np.array([[1, 0, -mn[0]], [0, 1, -mn[1]], [0, 0, 1]])
    M = T @ M
    W, H = (corners.max(0) - mn).astype(int) + 1
    img = cv2.warpPerspective(rgb, M, (int(W), int(H)), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    x1, y1, x2, y2 = box[:4]
    bc = cv2.perspectiveTransform(np.float32([[[x1, y1], [x2, y1], [x2, y2], [x1, y2]]]), M)[0]
    nb = (int(max(0, bc[:, 0].min())), int(max(0, bc[:, 1].min())), int(min(W, bc[:, 0].max())),
          int(min(H, bc[:, 1].max())))
    f = img.astype(np.float32) / 255.0
    # lighting: gamma, colour temperature, a highlight, a shadow band
    f = f ** float(rng.uniform(0.7, 1.4))
    f = f * np.array([1 + rng.uniform(-0.12, 0.12), 1.0, 1 + rng.uniform(-0.12, 0.12)], np.float32)
    yy, xx = np.mgrid[0:int(H), 0:int(W)].astype(np.float32)
    if rng.random() < 0.6:
        hx, hy, hr = rng.uniform(0, W), rng.uniform(0, H), rng.uniform(0.05, 0.2) * max(W, H)
        f = f + float(rng.uniform(0.15, 0.4)) * np.exp(-((xx - hx) ** 2 + (yy - hy) ** 2) / (2 * hr * hr))[..., None]
    if rng.random() < 0.5:
        a = rng.uniform(0, np.pi)
        t = (xx * math.cos(a) + yy * math.sin(a))
        t0 = rng.uniform(t.min(), t.max())
        f = f * (1 - float(rng.uniform(0.2, 0.45)) / (1 + np.exp(np.clip(-(t - t0) / 6.0, -50, 50))))[..., None]
    f = f + rng.normal(0, 0.01, f.shape).astype(np.float32)
    return (np.clip(f, 0, 1) * 255 + 0.5).astype(np.uint8), nb


# Hard same-part views (``hard=True``): what a reinspection photo really differs by. Ranges (see the module doc)
HARD_TILT = (25.0, 40.0)
"""Out-of-plane rotation of the part plane between the survey and the reinspection view, degrees."""
HARD_RELIEF = (0.02, 0.08)
"""Height of the part's relief (a bulge plus undulation) as a fraction of its long side: a curved bumper or
fender is not a plane, and under the tilt its points shift by height x sin(tilt) (:func:`_relief`)."""
HARD_SCALE = (0.5, 1.8)
HARD_ROTATION = 25.0
HARD_MARGIN = (-0.05, 0.9)
"""Framing: crop margin per side as a fraction of the part's size (negative: the crop cuts into the part)."""
HARD_GAMMA = (0.5, 1.8)
HARD_TEMPERATURE = 0.25
HARD_JPEG = (50, 91)
HARD_OCCLUSION = (0.05, 0.25)
"""Fraction of the part box an occluder (hand, tool, rag) is drawn to cover, when there is one (60 %)."""
OCCLUDERS = ("hand", "tool", "rag")
HARD_REFLECTION = (0.15, 0.4)
"""Strength of another scene's reflection screen-blended over the part (60 % of views, when given)."""


def _tilt_homography(box: tuple[float, float, float, float], f: float, tilt_deg: float, axis: float,
                     rot_deg: float, scale: float) -> np.ndarray:
    """3x3 map of the source image to a view of the (planar) part rotated out of plane by ``tilt_deg`` about
    an in-plane axis at angle ``axis`` through the box centre (pinhole, focal ``f`` px, the source taken as a
    fronto-parallel view at distance ``f``), then rotated in plane by ``rot_deg`` and scaled by ``scale``
    about the box centre."""
    cx, cy = (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0
    a = np.array([math.cos(axis), math.sin(axis), 0.0])
    R = cv2.Rodrigues(a * math.radians(tilt_deg))[0]
    K = np.array([[f, 0, cx], [0, f, cy], [0, 0, 1]])
    C = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]])
    Pl = np.array([[R[0, 0], R[0, 1], 0], [R[1, 0], R[1, 1], 0], [R[2, 0], R[2, 1], f]])
    S = cv2.getRotationMatrix2D((cx, cy), rot_deg, scale)
    return np.vstack([S, [0, 0, 1]]) @ K @ Pl @ C


def _occluder(shape: tuple[int, int], box: tuple[int, int, int, int], frac: float, kind: str,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(alpha mask 0..1, float RGB fill) of a hand, tool or rag over about ``frac`` of ``box``, coming in
    from one of its sides (its centre inside the box near that side)."""
    h, w = shape
    x1, y1, x2, y2 = box
    bw, bh = max(1, x2 - x1), max(1, y2 - y1)
    area = frac * bw * bh
    side = int(rng.integers(4))
    t = rng.uniform(0.15, 0.85)
    inset = rng.uniform(0.05, 0.25)
    cx = (x1 + t * bw, x1 + inset * bw, x1 + t * bw, x2 - inset * bw)[side]
    cy = (y1 + inset * bh, y1 + t * bh, y2 - inset * bh, y1 + t * bh)[side]
    m = np.zeros((h, w), np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "hand":  # palm ellipse plus four fingers, skin tone with soft shading
        r = math.sqrt(area / math.pi / 0.7)
        ang = rng.uniform(0, 180)
        cv2.ellipse(m, (round(cx), round(cy)), (max(2, round(r)), max(2, round(0.75 * r))), ang, 0, 360, 1.0, -1)
        for k in range(4):
            a = math.radians(ang + (k - 1.5) * 14)
            p0 = np.array([cx, cy]) + 0.6 * r * np.array([math.cos(a), math.sin(a)])
            p1 = p0 + rng.uniform(0.6, 0.9) * r * np.array([math.cos(a), math.sin(a)])
            cv2.line(m, (round(p0[0]), round(p0[1])), (round(p1[0]), round(p1[1])), 1.0, max(2, round(0.22 * r)))
        tone = np.array([0.85, 0.62, 0.5], np.float32) * float(rng.uniform(0.6, 1.1))
        fill = tone * (0.85 + 0.25 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r)))[..., None]
    elif kind == "tool":  # a long bar (wrench, screwdriver, pry bar), metallic gradient across it
        length = rng.uniform(0.8, 1.4) * max(bw, bh)
        width = max(3.0, area / length)
        ang = rng.uniform(0, np.pi)
        d = np.array([math.cos(ang), math.sin(ang)])
        pts = cv2.boxPoints(((cx + d[0] * length * 0.3, cy + d[1] * length * 0.3), (length, width), math.degrees(ang)))
        cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 1.0)
        across = ((xx - cx) * -d[1] + (yy - cy) * d[0]) / max(width, 1.0)
        grey = float(rng.uniform(0.15, 0.6))
        fill = np.clip(grey + 0.3 * np.cos(across * 3.0), 0, 1)[..., None] * np.array([1, 1, 1.05], np.float32)
    else:  # rag: an irregular blob of cloth, a random colour with a weave texture
        r = math.sqrt(area / math.pi)
        k = 14
        angs = np.linspace(0, 2 * np.pi, k, endpoint=False)
        rad = r * rng.uniform(0.65, 1.3, k)
        pts = np.stack([cx + rad * np.cos(angs), cy + rad * np.sin(angs)], 1)
        cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 1.0)
        col = rng.uniform(0.1, 0.9, 3).astype(np.float32)
        tex = 0.8 + 0.2 * np.sign(np.sin(xx * 1.3) * np.sin(yy * 1.3))
        tex = tex + 0.15 * cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 3.0)
        fill = col[None, None, :] * tex[..., None]
    m = cv2.GaussianBlur(m, (0, 0), 0.8)
    return np.clip(m, 0, 1), fill.astype(np.float32)


def _blur(img: np.ndarray, part_size: float, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Defocus (a disk of radius 0.3-1 % of the part's size) or motion blur (a line of 0.5-2 %), or none."""
    u = rng.random()
    if u < 0.35:
        r = max(1.0, rng.uniform(0.003, 0.01) * part_size)
        n = 2 * math.ceil(r) + 1
        k = np.zeros((n, n), np.float32)
        cv2.circle(k, (n // 2, n // 2), round(r), 1.0, -1, lineType=cv2.LINE_AA)
        return cv2.filter2D(img, -1, k / k.sum(), borderType=cv2.BORDER_REFLECT), f"defocus{r:.1f}"
    if u < 0.7:
        L = max(3.0, rng.uniform(0.005, 0.02) * part_size)
        n = 2 * math.ceil(L / 2) + 1
        k = np.zeros((n, n), np.float32)
        a = rng.uniform(0, np.pi)
        d = np.array([math.cos(a), math.sin(a)]) * L / 2
        cv2.line(k, (round(n // 2 - d[0]), round(n // 2 - d[1])), (round(n // 2 + d[0]), round(n // 2 + d[1])), 1.0, 1,
                 cv2.LINE_AA)
        return cv2.filter2D(img, -1, k / k.sum(), borderType=cv2.BORDER_REFLECT), f"motion{L:.1f}"
    return img, "none"


def _relief(rgb: np.ndarray, box: tuple[int, int, int, int], amp: float, shift: np.ndarray,
            rng: np.random.Generator) -> np.ndarray:
    """The parallax of a part that is not flat: a smooth height field inside ``box`` (a bulge plus
    low-frequency undulation, ``amp`` x the box's long side at most, zero on the box's edges so the part
    stays in its box) seen from a camera tilted so that the plane normal projects to ``shift`` (the in-plane
    part of the rotated normal, length sin(tilt)): each point moves by height x ``shift``, which no
    homography of the plane undoes."""
    x1, y1, x2, y2 = box
    bw, bh = max(2, x2 - x1), max(2, y2 - y1)
    if amp <= 0:
        return rgb
    v, u = np.mgrid[0:bh, 0:bw].astype(np.float32)
    u, v = (u + 0.5) / bw, (v + 0.5) / bh
    window = np.sin(np.pi * u) * np.sin(np.pi * v)
    und = cv2.GaussianBlur(rng.normal(0, 1, (bh, bw)).astype(np.float32), (0, 0), 0.2 * max(bw, bh))
    und = und / (np.abs(und).max() + 1e-6)
    z = amp * max(bw, bh) * window * (float(rng.uniform(0.3, 1.0)) + 0.5 * und)
    h, w = rgb.shape[:2]
    mx, my = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mx[y1:y1 + bh, x1:x1 + bw] -= (z * float(shift[0]))[: mx.shape[0] - y1, : mx.shape[1] - x1]
    my[y1:y1 + bh, x1:x1 + bw] -= (z * float(shift[1]))[: my.shape[0] - y1, : my.shape[1] - x1]
    return cv2.remap(rgb, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def hard_view(rgb: np.ndarray, box: tuple[int, int, int, int], rng: np.random.Generator, *,
              photometric: bool = True, reflection: np.ndarray | None = None
              ) -> tuple[np.ndarray, tuple[int, int, int, int], dict]:
    """A reinspection-like photo of the part in ``box`` of ``rgb`` (uint8): returns (uint8 view, the part's
    box in it, the parameters drawn).

    Geometry: the part plane tilted by :data:`HARD_TILT` degrees about a random in-plane axis (pinhole,
    focal 0.9-1.4x the image's long side), the parallax of a relief of :data:`HARD_RELIEF` of the part's
    size inside the box (:func:`_relief`), in-plane rotation +-:data:`HARD_ROTATION` degrees, scale
    :data:`HARD_SCALE` (log-uniform; the source is low-pass filtered first when shrinking), framed by a crop
    around the part with a margin of :data:`HARD_MARGIN` of its size per side, kept inside the warped photo
    where the part allows; the box is the warped box's bounds clipped to the crop.

    Then, when ``photometric``: an occluder (hand, tool or rag) over :data:`HARD_OCCLUSION` of the box
    (60 %); the reflection of another scene (``reflection``, another photo) on the part (60 %, strength
    :data:`HARD_REFLECTION`); an exposure gradient (up to 35 %), colour temperature (R x (1+t), B x (1-t),
    abs(t) <= :data:`HARD_TEMPERATURE`), gamma :data:`HARD_GAMMA` (log-uniform); a hard-edged shadow (60 %,
    30-65 % darker, edge 0.7-2.5 px); a specular highlight in the box (60 %, +0.4-0.9, saturating); defocus
    (35 %) or motion blur (35 %) scaled to the part's size; sensor noise (sigma 0.005-0.02 plus a
    signal-dependent term). The JPEG quality (:data:`HARD_JPEG`) is the caller's."""
    h, w = rgb.shape[:2]
    x1, y1, x2, y2 = box[:4]
    tilt = float(rng.uniform(*HARD_TILT))
    axis = float(rng.uniform(0, np.pi))
    f = float(rng.uniform(0.9, 1.4)) * max(h, w)
    rot = float(rng.uniform(-HARD_ROTATION, HARD_ROTATION))
    scale = float(math.exp(rng.uniform(math.log(HARD_SCALE[0]), math.log(HARD_SCALE[1]))))
    M = _tilt_homography((x1, y1, x2, y2), f, tilt, axis, rot, scale)
    relief = float(rng.uniform(*HARD_RELIEF))
    rgb = _relief(rgb, (x1, y1, x2, y2), relief, cv2.Rodrigues(
        np.array([math.cos(axis), math.sin(axis), 0.0]) * math.radians(tilt))[0][:2, 2], rng)
    quad = cv2.perspectiveTransform(np.float32([[[x1, y1], [x2, y1], [x2, y2], [x1, y2]]]), M)[0]
    qmin, qmax = quad.min(0), quad.max(0)
    size = qmax - qmin
    lo = qmin - rng.uniform(*HARD_MARGIN, 2) * size
    hi = qmax + rng.uniform(*HARD_MARGIN, 2) * size
    # stay (about) inside the warped photo: no mirrored border content unless the part itself reaches it
    img_q = np.sort(cv2.perspectiveTransform(np.float32([[[0, 0], [w, 0], [w, h], [0, h]]]), M)[0], axis=0)
    lo = np.maximum(lo, np.minimum(img_q[1], qmin))
    hi = np.minimum(hi, np.maximum(img_q[2], qmax))
    W, H = (int(v) for v in np.maximum(16, np.ceil(hi - lo)))
    M = np.array([[1, 0, -lo[0]], [0, 1, -lo[1]], [0, 0, 1]]) @ M
    src = rgb
    shrink = scale * math.cos(math.radians(tilt))
    if shrink < 0.9:  # anti-alias before shrinking
        src = cv2.GaussianBlur(rgb, (0, 0), 0.5 / shrink)
    img = cv2.warpPerspective(src, M, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    bq = quad - lo
    nb = (int(max(0, np.floor(bq[:, 0].min()))), int(max(0, np.floor(bq[:, 1].min()))),
          int(min(W, np.ceil(bq[:, 0].max()))), int(min(H, np.ceil(bq[:, 1].max()))))
    params = {"tilt": round(tilt, 1), "relief": round(relief, 3), "scale": round(scale, 2), "rot": round(rot, 1),
              "occluder": "none", "occluded": 0.0, "reflection": 0.0, "blur": "none"}
    if not photometric:
        return img, nb, params
    fimg = img.astype(np.float32) / 255.0
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    if rng.random() < 0.6:
        kind = OCCLUDERS[int(rng.integers(len(OCCLUDERS)))]
        m, fill = _occluder((H, W), nb, float(rng.uniform(*HARD_OCCLUSION)), kind, rng)
        fimg = fimg * (1 - m[..., None]) + fill * m[..., None]
        bm = m[nb[1]:nb[3], nb[0]:nb[2]]
        params["occluder"], params["occluded"] = kind, round(float((bm > 0.5).mean()) if bm.size else 0.0, 3)
    if reflection is not None and rng.random() < 0.6:
        # paint is a mirror: at another place and angle it reflects another scene (another photo, blurred,
        # screen-blended over the part box with a soft edge)
        env = cv2.resize(reflection, (W, H), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        env = cv2.GaussianBlur(env, (0, 0), float(rng.uniform(1.0, 4.0)))
        m = np.zeros((H, W), np.float32)
        cv2.rectangle(m, (nb[0], nb[1]), (max(nb[0], nb[2] - 1), max(nb[1], nb[3] - 1)), 1.0, -1)
        m = cv2.GaussianBlur(m, (0, 0), 3.0)[..., None] * float(rng.uniform(*HARD_REFLECTION))
        fimg = 1 - (1 - fimg) * (1 - m * env)
        params["reflection"] = round(float(m.max()), 2)
    gx, gy = xx / max(W - 1, 1) * 2 - 1, yy / max(H - 1, 1) * 2 - 1
    a = rng.uniform(0, 2 * np.pi)
    grad = 1.0 + float(rng.uniform(0.0, 0.35)) * (np.cos(a) * gx + np.sin(a) * gy)
    t = float(rng.uniform(-HARD_TEMPERATURE, HARD_TEMPERATURE))
    fimg = np.clip(fimg * grad[..., None] * np.array([1 + t, 1.0, 1 - t], np.float32), 0, 1)
    fimg = fimg ** float(math.exp(rng.uniform(math.log(HARD_GAMMA[0]), math.log(HARD_GAMMA[1]))))
    if rng.random() < 0.6:  # hard shadow edge (an edge of a building, a person, the car itself)
        a = rng.uniform(0, np.pi)
        s = xx * math.cos(a) + yy * math.sin(a)
        s0 = rng.uniform(np.quantile(s, 0.2), np.quantile(s, 0.8))
        width = float(rng.uniform(0.7, 2.5))
        fimg = fimg * (1 - float(rng.uniform(0.3, 0.65)) / (1 + np.exp(np.clip(-(s - s0) / width, -50, 50))))[..., None]
    if rng.random() < 0.6:  # specular highlight, saturating at its core
        hx, hy = rng.uniform(nb[0], max(nb[0] + 1, nb[2])), rng.uniform(nb[1], max(nb[1] + 1, nb[3]))
        hr = rng.uniform(0.05, 0.2) * max(W, H)
        fimg = fimg + float(rng.uniform(0.4, 0.9)) * np.exp(-((xx - hx) ** 2 + (yy - hy) ** 2) / (2 * hr * hr))[..., None]
    fimg = np.clip(fimg, 0, 1)
    fimg, params["blur"] = _blur(fimg, float(max(nb[2] - nb[0], nb[3] - nb[1])), rng)
    sigma = float(rng.uniform(0.005, 0.02))
    fimg = fimg + rng.normal(0, 1, fimg.shape).astype(np.float32) * (sigma + 0.02 * np.sqrt(np.clip(fimg, 0, 1)))
    return (np.clip(fimg, 0, 1) * 255 + 0.5).astype(np.uint8), nb, params


def _part_colour(rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Mean CIELAB colour of the part box (for the nearest-looking hard negative)."""
    x1, y1, x2, y2 = box[:4]
    lab = cv2.cvtColor(np.ascontiguousarray(rgb[y1:y2, x1:x2]), cv2.COLOR_RGB2LAB).reshape(-1, 3)
    return lab.astype(np.float32).mean(0)


def age_part(img: np.ndarray, box: tuple[int, int, int, int], kinds: list[str], rng: np.random.Generator) -> np.ndarray:
    """Artificial ageing of the part in ``box`` (float32 0..1 image): rust, fading/chalking, dirt, gloss loss."""
    h, w = img.shape[:2]
    x1, y1, x2, y2 = box
    m = np.zeros((h, w), np.float32)
    cv2.rectangle(m, (x1, y1), (x2 - 1, y2 - 1), 1.0, -1)
    m = cv2.GaussianBlur(m, (0, 0), 1.5)[..., None]
    out = img.copy()
    for k in kinds:
        if k == "fading":  # chroma loss + whitish chalk haze
            grey = out.mean(axis=2, keepdims=True)
            c = float(rng.uniform(0.3, 0.7))
            faded = grey + (out - grey) * (1 - c)
            faded = faded * (1 - 0.25 * c) + 0.25 * c * float(rng.uniform(0.75, 0.95))
            out = out * (1 - m) + faded * m
        elif k == "dirt":
            noise = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), float(rng.uniform(1.0, 4.0)))
            noise = (noise - noise.min()) / max(float(np.ptp(noise)), 1e-6)
            speck = (rng.random((h, w)) < rng.uniform(0.01, 0.05)).astype(np.float32)
            speck = cv2.GaussianBlur(speck, (0, 0), 0.8) * 3
            dirt = np.clip(0.5 * noise + speck, 0, 1)[..., None] * float(rng.uniform(0.3, 0.6))
            tone = np.array([0.35, 0.3, 0.22], np.float32) * float(rng.uniform(0.7, 1.2))
            out = out * (1 - m * dirt) + tone * m * dirt
        elif k == "rust":
            noise = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), float(rng.uniform(2.0, 6.0)))
            noise = (noise - noise.mean()) / (noise.std() + 1e-6)
            cover = float(rng.uniform(0.05, 0.3))
            t = np.quantile(noise[y1:y2, x1:x2], 1 - cover)
            spots = np.clip((noise - t) * 2.0, 0, 1)
            tex = 0.7 + 0.6 * cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 0.7)
            rust = np.stack([0.55 * tex, 0.27 * tex, 0.1 * tex], -1) * float(rng.uniform(0.7, 1.2))
            a = (spots[..., None] * m) * float(rng.uniform(0.6, 0.95))
            out = out * (1 - a) + rust * a
        elif k == "gloss":  # highlights flattened, micro-texture dulled
            blur = cv2.GaussianBlur(out, (0, 0), 2.5)
            local = cv2.GaussianBlur(out, (0, 0), 12.0)
            dull = local + (blur - local) * float(rng.uniform(0.3, 0.6))
            dull = np.minimum(dull, np.quantile(dull, 0.8) + 0.05)
            out = out * (1 - m) + dull * m
    return np.clip(out, 0, 1)


MAX_AGE_BOX_FRACTION = 0.5
"""Part-age sources: the labelled part covers at most this fraction of the photo (neighbours visible)."""


def age_sources(sources: list[tuple[str, Path]]) -> list[tuple[str, Path]]:
    """Sources for the part-age set: the largest labelled part is a painted panel (not :data:`GLASS_PARTS`:
    rust, fading and lost gloss are paint ageing, not glass) and covers at most
    :data:`MAX_AGE_BOX_FRACTION` of the photo. Before, ~6 % of the age images had a box over the whole
    photo (no neighbour to compare with: unmeasurable, scored 0 in either class) and ~12 % were
    windshields or lamps with "rust" painted on the glass."""
    out = []
    for name, path in sources:
        with Image.open(path) as im:
            w, h = im.size
        b = largest_box(path, (h, w))
        if b is None or not (0 <= b[4] < len(PART_NAMES)) or PART_NAMES[b[4]] in GLASS_PARTS:
            continue
        if (b[2] - b[0]) * (b[3] - b[1]) <= MAX_AGE_BOX_FRACTION * w * h:
            out.append((name, path))
    return out


def _age_items(picked: list[tuple[str, Path]]) -> list[tuple[str, Path, np.ndarray, tuple]]:
    out = []
    for name, path in picked:
        rgb = _load(path)
        box = largest_box(path, rgb.shape[:2])
        if box is not None:
            out.append((name, path, rgb, box))
    return out


def generate_parts_suite(out_dir: Path, sources: Iterable[Path] | Path | None = None, *, n: int = 120,
                         seed: int = 0, split: str = "test", hard: bool = False) -> dict[str, list[dict]]:
    """Write the same-part pairs (pairs.csv) and the part-age set (labels.csv) to ``out_dir``.

    ``hard``: view B of each pair is a reinspection-like photo (:func:`hard_view`: tilt 25-40 degrees, scale
    0.5-1.8, rotation +-25, reframing, strong lighting, blur, noise, occlusion, JPEG 50-90) against a view A
    as in the default suite (the survey close-up), and each A gets a second negative, the same-class part
    nearest in mean Lab colour (``negative`` = ``nearest_colour``; the first is ``random``). pairs.csv then
    has extra columns (``negative``, ``tilt``, ``relief``, ``scale``, ``rot``, ``occluder``, ``occluded``,
    ``reflection`` (another source photo reflected on the part), ``blur``, ``jpeg``, all but the first of
    view B, on the positive rows). The default suite (``hard=False``) is
    byte-identical to the one before this option existed."""
    out_dir = Path(out_dir)
    src = _one_source(sources)
    items = []
    for name, path in _pick(list_sources(src, split), n, seed):
        rgb = _load(path)
        box = largest_box(path, rgb.shape[:2])
        if box is None:
            continue
        items.append((name, path, rgb, box))
    views_b: list[tuple[str, tuple, int]] = []
    rows_pairs: list[dict] = []
    rows_age: list[dict] = []
    view_a: list[tuple[str, tuple, int]] = []
    hard_info: list[dict] = []
    colours: list[np.ndarray] = []
    for i, (name, path, rgb, box) in enumerate(items):
        up = cv2.resize(rgb, (rgb.shape[1] * 2, rgb.shape[0] * 2), interpolation=cv2.INTER_CUBIC)
        ub = tuple(int(v * 2) for v in box[:4])
        stem = path.stem[:40]
        rng = np.random.default_rng([seed, i, 21])
        if hard:
            a_img, a_box = _view(up, ub, rng)
            rng_b = np.random.default_rng([seed, i, 22])
            other = items[(i + 1 + int(rng_b.integers(max(1, len(items) - 1)))) % len(items)][2]
            b_img, b_box, prm = hard_view(up, ub, rng_b, reflection=other)
            prm["jpeg"] = int(rng_b.integers(*HARD_JPEG))
            hard_info.append(prm)
            colours.append(_part_colour(rgb, box))
            ra = _write(out_dir, f"views/{i:04d}_{stem}_a.jpg", encode_jpeg(a_img, int(rng.integers(70, 96))))
            rb = _write(out_dir, f"views/{i:04d}_{stem}_b.jpg", encode_jpeg(b_img, prm["jpeg"]))
        else:
            a_img, a_box = _view(up, ub, rng)
            b_img, b_box = _view(up, ub, rng)
            ra = _write(out_dir, f"views/{i:04d}_{stem}_a.jpg", encode_jpeg(a_img, int(rng.integers(70, 96))))
            rb = _write(out_dir, f"views/{i:04d}_{stem}_b.jpg", encode_jpeg(b_img, int(rng.integers(70, 96))))
        view_a.append((ra, a_box, box[4]))
        views_b.append((rb, b_box, box[4]))
    # part age: fresh and old variants of the same photo, on the sources where ageing one part against its
    # neighbours is observable (see age_sources)
    for i, (name, path, rgb, box) in enumerate(_age_items(_pick(age_sources(list_sources(src, split)), n, seed))):
        up = cv2.resize(rgb, (rgb.shape[1] * 2, rgb.shape[0] * 2), interpolation=cv2.INTER_CUBIC)
        ub = tuple(int(v * 2) for v in box[:4])
        stem = path.stem[:40]
        rng2 = np.random.default_rng([seed, i, 31])
        base = up.astype(np.float32) / 255.0
        for label in ("fresh", "old"):
            if label == "old":
                k = int(rng2.integers(1, 4))
                kinds = list(rng2.choice(AGE_KINDS, size=k, replace=False))
                img = age_part(base, ub, kinds, rng2)
            else:
                kinds = []
                img = base
            img8 = _finish(img, rng2)
            rel = _write(out_dir, f"age/{i:04d}_{stem}_{label}.jpg", encode_jpeg(img8, int(rng2.integers(80, 96))))
            rows_age.append({"image": rel, "label": label, "x1": ub[0], "y1": ub[1], "x2": ub[2], "y2": ub[3],
                             "kind": "+".join(kinds) or "fresh", "source": name})
    rng = np.random.default_rng([seed, 99])
    for i, (ra, a_box, cls) in enumerate(view_a):
        rb, b_box, _ = views_b[i]
        rows_pairs.append(_pair_row(ra, rb, 1, a_box, b_box, cls))
        if hard:
            rows_pairs[-1].update(hard_info[i], negative="")
        others = [j for j in range(len(views_b)) if j != i and views_b[j][2] == cls] or \
            [j for j in range(len(views_b)) if j != i]
        if others:
            j = int(others[int(rng.integers(len(others)))])
            rows_pairs.append(_pair_row(ra, views_b[j][0], 0, a_box, views_b[j][1], cls))
            if hard:
                rows_pairs[-1]["negative"] = "random"
                # the same-class part that looks most alike (nearest mean Lab colour), other than the random one
                near = sorted((float(np.linalg.norm(colours[k] - colours[i])), k) for k in others if k != j)
                if near:
                    k = near[0][1]
                    rows_pairs.append(_pair_row(ra, views_b[k][0], 0, a_box, views_b[k][1], cls))
                    rows_pairs[-1]["negative"] = "nearest_colour"
    fields = ("image_a", "image_b", "same_part", "ax1", "ay1", "ax2", "ay2", "bx1", "by1", "bx2", "by2", "part")
    if hard:
        fields += ("negative", "tilt", "relief", "scale", "rot", "occluder", "occluded", "reflection", "blur",
                   "jpeg")
    _write_csv(out_dir / "pairs.csv", rows_pairs, fields)
    _write_csv(out_dir / "labels.csv", rows_age, ("image", "label", "x1", "y1", "x2", "y2", "kind", "source"))
    return {"pairs": rows_pairs, "age": rows_age}


def _pair_row(ra: str, rb: str, same: int, a: tuple, b: tuple, cls: int) -> dict:
    return {"image_a": ra, "image_b": rb, "same_part": same, "ax1": a[0], "ay1": a[1], "ax2": a[2], "ay2": a[3],
            "bx1": b[0], "by1": b[1], "bx2": b[2], "by2": b[3],
            "part": PART_NAMES[cls] if 0 <= cls < len(PART_NAMES) else str(cls)}


GENERATORS: dict[str, Callable[..., object]] = {"scratches": generate_scratch_suite, "parts": generate_parts_suite}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Generate a damage-forensics suite (scratches | parts).")
    ap.add_argument("suite", choices=sorted(GENERATORS))
    ap.add_argument("out", type=Path)
    ap.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    ap.add_argument("--split", default="test", choices=("train", "test", "all"))
    ap.add_argument("--n", type=int, default=150)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hard", action="store_true", help="parts: reinspection-like B views (see hard_view)")
    a = ap.parse_args(argv)
    kw = {"hard": True} if a.hard and a.suite == "parts" else {}
    GENERATORS[a.suite](a.out, a.source, n=a.n, seed=a.seed, split=a.split, **kw)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()


def real_damage_rows(src: Path, split: str = "all") -> list[dict]:
    """labels.csv-like rows for a folder of real damage photos with YOLO labels: every labelled damage box
    of every photo as a ``genuine`` region (the false-alarm set); photos without boxes are analysed whole."""
    src = Path(src)
    rows = []
    for name, path in list_sources(src, split):
        with Image.open(path) as im:
            w, h = im.size
        rel = path.relative_to(src).as_posix()
        boxes = read_yolo_boxes(label_path_of(path), w, h)
        if not boxes:
            rows.append({"image": rel, "label": "genuine", "x1": "", "y1": "", "x2": "", "y2": "", "kind": "real",
                         "source": name})
        for b in boxes:
            rows.append({"image": rel, "label": "genuine", "x1": b[0], "y1": b[1], "x2": b[2], "y2": b[3],
                         "kind": "real", "source": name})
    return rows


# ------------------------------------------------------------------ real genuine damage in the 18-class taxonomy

SCRATCH_CLASSES = ("scratch",)
"""Classes of car_damage_train whose boxes are genuine scratches (the fake-scratch scorer's false-alarm set)."""
PAINTED_PART_CLASSES = ("bumper", "door", "hood", "trunk", "mirror")
"""Part classes of car_damage_train the part-age scorer applies to (painted panels; lamps, glass and wheels are
skipped by the check, :data:`claimlens.checks.damage_forensics.NOT_PAINTED`)."""


def photo_group(image: str) -> str:
    """The physical-photo / vehicle group of a car_damage_train image, for a split that keeps related photos
    together: the Roboflow source name (before ``.rf.``) without the prefix's export noise; the
    ``scr_204_101_20_*`` close-ups (a few cars, mostly one) form one group; a ``sev_`` listing photo
    (``<7-digit id>-...`` or ``...-<upload id>_NN``) goes with its listing; every other photo is its own."""
    name = image.rsplit("/", 1)[-1]
    stem = name.split(".rf.")[0] if ".rf." in name else name.rsplit(".", 1)[0]
    if stem.startswith("scr_204_101_20_"):
        return "scr_204_101_20"
    if stem.startswith("sev_"):
        rest = stem[4:]
        head = rest.split("-", 1)[0]
        if head.isdigit() and len(head) >= 6:
            return "sev_" + head
        parts = rest.rsplit("_", 2)
        if len(parts) == 3 and parts[1].isdigit():
            return "sev_" + parts[0]
    return stem


def dev_test_half(image: str) -> str:
    """``dev`` or ``test``: u = sha1(photo_group(image))[:8] / 2**32, dev when u < 0.5. Thresholds are fitted
    on dev, rates reported on test; a group never straddles the halves."""
    import hashlib

    u = int(hashlib.sha1(photo_group(image).encode("utf-8")).hexdigest()[:8], 16) / 2**32
    return "dev" if u < 0.5 else "test"


def taxonomy_rows(src: Path, classes: Iterable[str], split: str = "val", label_group: str | None = None
                  ) -> list[dict]:
    """One row per labelled box of ``classes`` in a car_damage_train-style folder (``splits.csv``,
    ``images.csv``, ``labels/``, class list from :func:`claimlens.bench.damage.read_names`): ``image``,
    ``label`` (``genuine``: every box is real damage / an original part), ``x1..y2`` (pixels), ``kind`` (the
    class), ``source`` (photo group), ``half`` (:func:`dev_test_half`) and ``others`` (the photo's other
    labelled boxes, so the part-age ring can exclude them as the check does). Only images of ``split`` and,
    when given, of ``label_group``; a listed image that is missing is an error."""
    from claimlens.bench.damage import read_names, read_taxonomy_meta

    src = Path(src)
    names = [n.strip().lower() for n in read_names(src)]
    want = set(classes)
    splits, groups = read_taxonomy_meta(src)
    if not splits:
        raise SystemExit(f"{src} has no splits.csv (a car_damage_train-style folder is expected)")
    rows = []
    for rel in sorted(i for i, s in splits.items() if split == "all" or s == split):
        if label_group and groups.get(rel, label_group) != label_group:
            continue
        path = src / rel
        if not path.is_file():
            raise SystemExit(f"missing image {path} (build the full set with the folder's build_images.py)")
        with Image.open(path) as im:
            w, h = im.size
        boxes = read_yolo_boxes(label_path_of(path), w, h)
        for b in boxes:
            cls = names[b[4]] if b[4] < len(names) else f"class{b[4]}"
            if cls not in want:
                continue
            rows.append({"image": rel, "label": "genuine", "x1": b[0], "y1": b[1], "x2": b[2], "y2": b[3],
                         "kind": cls, "source": photo_group(rel), "half": dev_test_half(rel),
                         "others": [o[:4] for o in boxes if o is not b]})
    return rows
