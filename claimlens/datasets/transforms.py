"""The copy-detection transform suite: one edited copy per class of every chosen original.

Why a generator and not a data set: the edits that fraudsters apply to a reused photo (re-encoding,
resizing, cropping, rotating, mirroring, colour shifts, survey-app overlays, screenshots, re-photographing a
screen) are easy to synthesise, and the ground truth (which copy comes from which photo) is then exact.
The output is a plain folder with ``groups.csv`` so ``claimlens bench duplicates DIR`` reads it like any other
set; the bench's ``--suite`` mode calls :func:`generate_suite` into a temporary folder.

Layout written under ``out_dir``::

    groups.csv            group_id,image,transform   (distractors: empty group_id, transform "distractor")
    originals/<gid>.jpg   the chosen original, re-saved once at JPEG quality 95
    copies/<gid>__<class>.<ext>
    distractors/<name>.jpg

Everything is deterministic for a given ``seed`` and input folder (photo order is the sorted relative path,
and each original gets its own ``numpy`` generator seeded with ``(seed, index)``).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont, ImageOps

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")

TRANSFORM_CLASSES: tuple[str, ...] = (
    "jpeg_q20",
    "resize_256",
    "crop_50",
    "rot90",
    "rot180",
    "rot270",
    "rot_small",
    "mirror",
    "color",
    "overlay_text",
    "screenshot",
    "recapture",
)
"""The classes of the issue, in report order."""


@dataclass(frozen=True)
class SuiteEntry:
    """One row of ``groups.csv``."""

    group_id: str
    image: str
    transform: str


# --------------------------------------------------------------------------------------------- helpers


def list_images(folder: Path) -> list[Path]:
    """All image files under ``folder`` (recursive), sorted by relative path so the order is stable."""
    folder = Path(folder)
    files = [p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


AUDITED_DUPLICATES: dict[str, tuple[tuple[str, str], ...]] = {
    "car_damage_roboflow": (
        # mirror images of one photo
        ("valid/images/damage_6666_jpg.rf.c1dc1af7afcaac391fce37788396b70b.jpg",
         "test/images/damage_6667_jpg.rf.20d8398835a25c8306e395b5b90e0d55.jpg"),
        # one stock photo sold with a 123RF and with a Shutterstock watermark
        ("valid/images/minor_272_jpg.rf.cbc774ebf5dadf6cad2fac6557813f89.jpg",
         "valid/images/minor_273_jpg.rf.1629720cb794250a9a020f7cf347ec1a.jpg"),
    ),
}
"""Same-picture pairs missing from a data set's ``known_duplicates.csv``, found by verifying all 115,440
pairs of its 481 photos with local features and confirmed by eye (docs/duplicates.md, "label audit").
Every other pair that reached 8 inliers was a different photo carrying the same stock-agency watermark."""


def read_known_duplicates(folder: Path) -> list[tuple[str, str]]:
    """Pairs of relative paths that are the same photo under two names: ``known_duplicates.csv`` if present,
    plus :data:`AUDITED_DUPLICATES` for a folder of that name (pairs whose files exist)."""
    folder = Path(folder)
    pairs: list[tuple[str, str]] = []
    path = folder / "known_duplicates.csv"
    if path.is_file():
        with path.open(newline="") as fh:
            pairs += [(row["image_a"], row["image_b"]) for row in csv.DictReader(fh)]
    for a, b in AUDITED_DUPLICATES.get(folder.resolve().name, ()):
        if (folder / a).is_file() and (folder / b).is_file():
            pairs.append((a, b))
    return pairs


def _clusters(names: list[str], pairs: Iterable[tuple[str, str]]) -> list[list[str]]:
    """Union-find over the known-duplicate pairs; clusters keep the input order."""
    parent = {n: n for n in names}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        if a in parent and b in parent:
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(find(n), []).append(n)
    return list(groups.values())


def _jpeg(img: Image.Image, quality: int, subsampling: int | None = None) -> bytes:
    buf = io.BytesIO()
    kwargs = {} if subsampling is None else {"subsampling": subsampling}
    img.convert("RGB").save(buf, format="JPEG", quality=int(quality), **kwargs)
    return buf.getvalue()


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled scalable font: the same glyphs on every machine (no system fonts needed)."""
    return ImageFont.load_default(size=max(8, int(size)))


# ------------------------------------------------------------------------------------------ transforms
# Each transform takes the original (RGB PIL image) and a generator, returns (encoded bytes, extension).


def t_jpeg_q20(img: Image.Image, rng: np.random.Generator) -> tuple[bytes, str]:
    """Re-encode at JPEG quality 20 with 4:2:0 chroma subsampling (what messaging apps do to photos)."""
    return _jpeg(img, 20, subsampling=2), "jpg"


def t_resize_256(img: Image.Image, rng: np.random.Generator) -> tuple[bytes, str]:
    """Downscale so the longer side is 256 px; an original already at <= 256 px is halved instead.

    The Roboflow originals are 256 px already, so their copies are 128 px: harder than the issue's
    "down to 256 px" on full-size photos.
    """
    long_side = max(img.size)
    target = 256 if long_side > 256 else max(32, long_side // 2)
    scale = target / long_side
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return _jpeg(img.resize(size, Image.Resampling.BICUBIC), 75), "jpg"


def t_crop_50(img: Image.Image, rng: np.random.Generator) -> tuple[bytes, str]:
    """Random crop keeping 50-75 % of the area, aspect ratio jittered by up to +-25 %, random position."""
    w, h = img.size
    area = rng.uniform(0.50, 0.75)
    aspect = math.exp(rng.uniform(math.log(0.8), math.log(1.25)))
    cw = min(w, round(w * math.sqrt(area * aspect)))
    ch = min(h, round(h * area / (cw / w)))
    x0 = int(rng.integers(0, w - cw + 1))
    y0 = int(rng.integers(0, h - ch + 1))
    return _jpeg(img.crop((x0, y0, x0 + cw, y0 + ch)), 90), "jpg"


def t_rot90(img: Image.Image, rng: np.random.Generator) -> tuple[bytes, str]:
    """Rotate by 90 degrees counter-clockwise (lossless pixel transpose, then JPEG 90)."""
    return _jpeg(img.transpose(Image.Transpose.ROTATE_90), 90), "jpg"


def t_rot180(img: Image.Image, rng: np.random.Generator) -> tuple[bytes, str]:
    """Rotate by 180 degrees."""
    return _jpeg(img.transpose(Image.Transpose.ROTATE_180), 90), "jpg"


def t_rot270(img: Image.Image, rng: np.random.Generator) -> tuple[bytes, str]:
    """Rotate by 270 degrees counter-clockwise."""
    return _jpeg(img.transpose(Image.Transpose.ROTATE_270), 90), "jpg"


def t_rot_small(img: Image.Image, rng: np.random.Generator) -> tuple[bytes, str]:
    """Rotate by 5-15 degrees either way; half the copies keep the black border, half are cropped to the
    largest axis-aligned rectangle inside the rotated photo (what "straighten" tools do)."""
    angle = float(rng.uniform(5.0, 15.0) * rng.choice([-1.0, 1.0]))
    crop = bool(rng.integers(0, 2))
    rot = img.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(0, 0, 0))
    if crop:
        w, h = img.size
        a = math.radians(abs(angle))
        # largest centred axis-aligned rectangle of the same aspect inside the rotated w x h rectangle
        k = min(w / (w * math.cos(a) + h * math.sin(a)), h / (w * math.sin(a) + h * math.cos(a)))
        cw, ch = int(w * k), int(h * k)
        cx, cy = rot.width / 2, rot.height / 2
        rot = rot.crop((round(cx - cw / 2), round(cy - ch / 2), round(cx - cw / 2) + cw, round(cy - ch / 2) + ch))
    return _jpeg(rot, 90), "jpg"


def t_mirror(img: Image.Image, rng: np.random.Generator) -> tuple[bytes, str]:
    """Mirror left-right (the cheapest way to dodge a naive hash)."""
    return _jpeg(ImageOps.mirror(img), 90), "jpg"


def t_color(img: Image.Image, rng: np.random.Generator) -> tuple[bytes, str]:
    """Brightness, contrast and saturation each scaled by 0.6-0.8 or 1.25-1.5, and a hue rotation of
    10-40 degrees either way (an "enhance" filter)."""

    def factor() -> float:
        return float(rng.uniform(0.6, 0.8) if rng.integers(0, 2) else rng.uniform(1.25, 1.5))

    out = ImageEnhance.Brightness(img).enhance(factor())
    out = ImageEnhance.Contrast(out).enhance(factor())
    out = ImageEnhance.Color(out).enhance(factor())
    hsv = np.array(out.convert("HSV"))
    shift = round(float(rng.uniform(10, 40) * rng.choice([-1, 1]) * 256 / 360))
    hsv[..., 0] = (hsv[..., 0].astype(np.int16) + shift) % 256
    out = Image.fromarray(hsv, mode="HSV").convert("RGB")
    return _jpeg(out, 85), "jpg"


def t_overlay_text(img: Image.Image, rng: np.random.Generator) -> tuple[bytes, str]:
    """A survey-app stamp: a translucent band (bottom or top) with a timestamp, GPS and claim number, plus a
    diagonal translucent watermark across the photo."""
    out = img.convert("RGBA")
    w, h = out.size
    layer = Image.new("RGBA", out.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    band_h = max(14, int(h * rng.uniform(0.12, 0.2)))
    top = bool(rng.integers(0, 2))
    y0 = 0 if top else h - band_h
    draw.rectangle((0, y0, w, y0 + band_h), fill=(0, 0, 0, int(rng.integers(110, 190))))
    when = datetime(2023, 1, 1) + timedelta(seconds=int(rng.integers(0, 3 * 365 * 86400)))
    lat, lon = rng.uniform(22, 40), rng.uniform(100, 122)
    lines = [f"{when:%Y-%m-%d %H:%M:%S}  N{lat:.5f} E{lon:.5f}",
             f"SURVEY-CAM  Claim No. CL{int(rng.integers(10**8, 10**9))}  Inspector {int(rng.integers(100, 999))}"]
    fsize = max(8, band_h // 3)
    font = _font(fsize)
    for i, line in enumerate(lines):
        draw.text((4, y0 + 2 + i * (fsize + 2)), line, fill=(255, 255, 255, 235), font=font)
    # diagonal watermark
    wm = Image.new("RGBA", (w * 2, h * 2), (0, 0, 0, 0))
    wdraw = ImageDraw.Draw(wm)
    wfont = _font(max(10, h // 8))
    wdraw.text((w // 2, h - h // 16), "INSURANCE SURVEY", fill=(255, 255, 255, int(rng.integers(60, 110))),
               font=wfont)
    wm = wm.rotate(float(rng.uniform(20, 40)), resample=Image.Resampling.BICUBIC)
    wm = wm.crop((w // 2, h // 2, w // 2 + w, h // 2 + h))
    layer = Image.alpha_composite(layer, wm)
    out = Image.alpha_composite(out, layer).convert("RGB")
    return _jpeg(out, 88), "jpg"


def _draw_status_bar(draw: ImageDraw.ImageDraw, w: int, bar_h: int, dark: bool, rng: np.random.Generator) -> None:
    fg = (255, 255, 255) if dark else (20, 20, 20)
    font = _font(int(bar_h * 0.6))
    draw.text((int(w * 0.06), int(bar_h * 0.18)), f"{int(rng.integers(0, 24)):02d}:{int(rng.integers(0, 60)):02d}",
              fill=fg, font=font)
    # signal bars, wifi dot, battery
    x = int(w * 0.70)
    for i in range(4):
        bh = int(bar_h * (0.2 + 0.12 * i))
        draw.rectangle((x + i * 5, bar_h * 0.75 - bh, x + i * 5 + 3, bar_h * 0.75), fill=fg)
    bx = int(w * 0.84)
    draw.rectangle((bx, bar_h * 0.3, bx + int(w * 0.08), bar_h * 0.72), outline=fg, width=2)
    level = float(rng.uniform(0.2, 1.0))
    draw.rectangle((bx + 3, bar_h * 0.3 + 3, bx + 3 + int((w * 0.08 - 6) * level), bar_h * 0.72 - 3), fill=fg)


def t_screenshot(img: Image.Image, rng: np.random.Generator) -> tuple[bytes, str]:
    """The photo shown in a phone app and screenshotted: portrait phone canvas (360-430 x 780-930 px), status
    bar, app header or black viewer, the photo scaled to the screen width (minus margins) at a random height,
    a caption line and a navigation bar; saved as PNG (half) or JPEG 90 (half)."""
    sw = int(rng.integers(360, 431))
    sh = int(sw * rng.uniform(2.0, 2.17))
    dark = bool(rng.integers(0, 2))
    bg = (0, 0, 0) if dark else (int(rng.integers(235, 256)),) * 3
    canvas = Image.new("RGB", (sw, sh), bg)
    draw = ImageDraw.Draw(canvas)
    bar_h = int(sh * 0.035)
    _draw_status_bar(draw, sw, bar_h, dark, rng)
    y = bar_h
    if not dark:  # app header with a title and a back arrow
        head_h = int(sh * 0.07)
        draw.rectangle((0, y, sw, y + head_h), fill=(int(rng.integers(0, 60)), int(rng.integers(90, 160)), 230))
        draw.text((int(sw * 0.15), y + head_h * 0.25), "Claim photos 3/8", fill=(255, 255, 255),
                  font=_font(int(head_h * 0.4)))
        draw.line((12, y + head_h / 2, 26, y + head_h / 2 - 8), fill=(255, 255, 255), width=3)
        draw.line((12, y + head_h / 2, 26, y + head_h / 2 + 8), fill=(255, 255, 255), width=3)
        y += head_h
    margin = int(rng.integers(0, 17))
    pw = sw - 2 * margin
    ph = round(img.height * pw / img.width)
    max_ph = int(sh * 0.6)
    if ph > max_ph:
        ph = max_ph
        pw = round(img.width * ph / img.height)
    nav_h = int(sh * 0.06)
    free_top, free_bottom = y + 4, sh - nav_h - 40 - ph
    py = int(rng.integers(free_top, max(free_top + 1, free_bottom)))
    px = (sw - pw) // 2
    canvas.paste(img.resize((pw, ph), Image.Resampling.BICUBIC), (px, py))
    fg = (230, 230, 230) if dark else (40, 40, 40)
    draw.text((margin + 4, py + ph + 8), f"IMG_{int(rng.integers(1000, 9999))}.JPG  {int(rng.integers(1, 9))}.{int(rng.integers(0, 9))} MB",
              fill=fg, font=_font(int(sh * 0.02)))
    # navigation bar: back / home / recent
    ny = sh - nav_h
    draw.rectangle((0, ny, sw, sh), fill=(0, 0, 0) if dark else (245, 245, 245))
    c = (200, 200, 200) if dark else (90, 90, 90)
    cy = ny + nav_h // 2
    draw.polygon([(sw * 0.25 - 8, cy), (sw * 0.25 + 6, cy - 9), (sw * 0.25 + 6, cy + 9)], outline=c)
    draw.ellipse((sw * 0.5 - 9, cy - 9, sw * 0.5 + 9, cy + 9), outline=c, width=2)
    draw.rectangle((sw * 0.75 - 8, cy - 8, sw * 0.75 + 8, cy + 8), outline=c, width=2)
    if rng.integers(0, 2):
        return _png(canvas), "png"
    return _jpeg(canvas, 90), "jpg"


def t_recapture(img: Image.Image, rng: np.random.Generator) -> tuple[bytes, str]:
    """A photo of the photo shown on a screen.

    Steps: display the photo enlarged 2-3x (screen pixels per photo pixel), render every screen pixel as
    three R, G, B sub-pixel stripes with a dark gap (the LCD grid), apply display gamma, add a dark bezel,
    photograph it with a slight perspective (camera not square to the screen: 2-6 % corner jitter) at
    0.7-1.3 camera pixels per screen pixel (the sub-pixel grid aliases into moire), then defocus blur,
    sensor noise, a colour cast, a vignette and JPEG 80-90. The copy is larger than the original (about
    2-4x its pixels), as a camera photo of a screen is.
    """
    src = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    h, w = src.shape[:2]
    u = float(rng.uniform(2.0, 3.0))
    sw, sh = max(8, round(w * u)), max(8, round(h * u))
    screen = cv2.resize(src, (sw, sh), interpolation=cv2.INTER_LINEAR)
    k = 3
    up = cv2.resize(screen, (sw * k, sh * k), interpolation=cv2.INTER_NEAREST)
    mask = np.zeros((k, k, 3), np.float32)
    for c in range(3):
        mask[:, c, c] = 1.0
    mask[k - 1, :, :] *= 0.6  # dark row between pixel rows
    mask = 0.3 + 0.7 * mask
    up *= np.tile(mask, (sh, sw, 1))
    up = np.power(np.clip(up * 1.6, 0, 1), float(rng.uniform(0.8, 1.25)))
    pad = int(max(sh, sw) * k * rng.uniform(0.03, 0.10))
    framed = np.full((sh * k + 2 * pad, sw * k + 2 * pad, 3), float(rng.uniform(0.02, 0.12)), np.float32)
    framed[pad:pad + sh * k, pad:pad + sw * k] = up
    del up
    framed = cv2.GaussianBlur(framed, (0, 0), 0.8)  # lens point spread at screen scale
    fh, fw = framed.shape[:2]
    cam = float(rng.uniform(0.7, 1.3)) / k  # camera pixels per sub-pixel column
    ow, oh = max(16, round(fw * cam)), max(16, round(fh * cam))
    jitter = rng.uniform(0.02, 0.06, size=(4, 2)) * np.array([ow, oh]) * rng.choice([-1, 1], size=(4, 2))
    src_pts = np.float32([[0, 0], [fw, 0], [fw, fh], [0, fh]])
    dst = np.float32([[0, 0], [ow, 0], [ow, oh], [0, oh]]) + jitter.astype(np.float32)
    dst -= dst.min(axis=0)
    ow2, oh2 = math.ceil(dst[:, 0].max()), math.ceil(dst[:, 1].max())
    H = cv2.getPerspectiveTransform(src_pts, dst.astype(np.float32))
    warped = cv2.warpPerspective(framed, H, (ow2, oh2), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                 borderValue=(0.35, 0.33, 0.3))
    del framed
    warped = cv2.GaussianBlur(warped, (0, 0), float(rng.uniform(0.4, 1.0)))
    cast = rng.uniform(0.9, 1.1, size=3).astype(np.float32)
    yy, xx = np.mgrid[0:oh2, 0:ow2].astype(np.float32)
    r2 = ((xx - ow2 / 2) / ow2) ** 2 + ((yy - oh2 / 2) / oh2) ** 2
    vignette = (1.0 - float(rng.uniform(0.2, 0.5)) * r2)[..., None]
    warped = warped * cast * vignette
    warped = warped + rng.normal(0, float(rng.uniform(0.01, 0.03)), size=warped.shape).astype(np.float32)
    out = Image.fromarray((np.clip(warped, 0, 1) * 255 + 0.5).astype(np.uint8))
    return _jpeg(out, int(rng.integers(80, 91))), "jpg"


TRANSFORMS: dict[str, Callable[[Image.Image, np.random.Generator], tuple[bytes, str]]] = {
    "jpeg_q20": t_jpeg_q20,
    "resize_256": t_resize_256,
    "crop_50": t_crop_50,
    "rot90": t_rot90,
    "rot180": t_rot180,
    "rot270": t_rot270,
    "rot_small": t_rot_small,
    "mirror": t_mirror,
    "color": t_color,
    "overlay_text": t_overlay_text,
    "screenshot": t_screenshot,
    "recapture": t_recapture,
}


def apply_transform(name: str, img: Image.Image, rng: np.random.Generator) -> tuple[bytes, str]:
    """Apply one class to an RGB image; returns (encoded bytes, file extension)."""
    return TRANSFORMS[name](img.convert("RGB"), rng)


# ----------------------------------------------------------------------------------------------- suite


def generate_suite(src_dir: Path, out_dir: Path, *, n_originals: int = 150, seed: int = 0,
                   classes: Iterable[str] = TRANSFORM_CLASSES, distractors: bool = True) -> list[SuiteEntry]:
    """Write the transform suite of ``src_dir`` into ``out_dir`` and return the rows of ``groups.csv``.

    Args:
        src_dir: any folder of photos (walked recursively). A ``known_duplicates.csv`` (image_a,image_b)
            in it marks photos that are the same picture under two names: they are kept together (the
            twin of an original joins its group as transform ``known_duplicate``; twins among the
            distractors form their own group), so the bench never counts them as negatives.
        out_dir: created if missing; existing files of the same names are overwritten.
        n_originals: how many photos get copies (chosen at random with ``seed``); the rest are distractors.
        seed: makes the choice and every random edit reproducible.
        classes: subset of :data:`TRANSFORM_CLASSES`.
        distractors: copy the non-chosen photos into the gallery (``distractors/``).
    """
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    classes = tuple(classes)
    unknown = [c for c in classes if c not in TRANSFORMS]
    if unknown:
        raise ValueError(f"unknown transform classes: {unknown}")
    files = list_images(src_dir)
    if not files:
        raise ValueError(f"no images under {src_dir}")
    rel = [p.relative_to(src_dir).as_posix() for p in files]
    clusters = _clusters(rel, read_known_duplicates(src_dir))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(clusters))
    n_originals = min(n_originals, len(clusters))
    chosen = set(order[:n_originals].tolist())
    (out_dir / "originals").mkdir(parents=True, exist_ok=True)
    (out_dir / "copies").mkdir(parents=True, exist_ok=True)
    if distractors:
        (out_dir / "distractors").mkdir(parents=True, exist_ok=True)

    entries: list[SuiteEntry] = []
    used_names: set[str] = set()

    def unique(stem: str) -> str:
        name, i = stem, 1
        while name in used_names:
            i += 1
            name = f"{stem}_{i}"
        used_names.add(name)
        return name

    def open_rgb(relpath: str) -> Image.Image:
        with Image.open(src_dir / relpath) as im:
            return ImageOps.exif_transpose(im).convert("RGB")

    for ci, cluster in enumerate(clusters):
        stem = Path(cluster[0]).stem.split(".rf.")[0]
        if ci in chosen:
            gid = unique(f"g{ci:04d}_{stem}"[:60])
            img = open_rgb(cluster[0])
            (out_dir / "originals" / f"{gid}.jpg").write_bytes(_jpeg(img, 95))
            entries.append(SuiteEntry(gid, f"originals/{gid}.jpg", "original"))
            for twin_i, twin in enumerate(cluster[1:]):
                name = f"copies/{gid}__known_duplicate{twin_i}.jpg"
                (out_dir / name).write_bytes(_jpeg(open_rgb(twin), 95))
                entries.append(SuiteEntry(gid, name, "known_duplicate"))
            for k, cls in enumerate(classes):
                crng = np.random.default_rng([seed, ci, k])
                data, ext = apply_transform(cls, img, crng)
                name = f"copies/{gid}__{cls}.{ext}"
                (out_dir / name).write_bytes(data)
                entries.append(SuiteEntry(gid, name, cls))
        elif distractors:
            gid = unique(f"d{ci:04d}_{stem}"[:60]) if len(cluster) > 1 else ""
            for member in cluster:
                mname = unique(f"d{ci:04d}_" + Path(member).stem.split(".rf.")[0])
                name = f"distractors/{mname}.jpg"
                (out_dir / name).write_bytes(_jpeg(open_rgb(member), 95))
                entries.append(SuiteEntry(gid, name, "distractor" if not gid else "known_duplicate"))

    with (out_dir / "groups.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["group_id", "image", "transform"])
        for e in entries:
            writer.writerow([e.group_id, e.image, e.transform])
    return entries
