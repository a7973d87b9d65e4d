"""Generated suites for the photo-integrity benches (recapture and tamper), from real photos.

Why generated: there is no offline set of re-photographed screens, printouts or forged claim photos with
ground truth; the operations fraudsters use (photographing a screen or a print, screenshotting an app,
copy-moving or splicing damage, in-painting it away) are simple to simulate from real photos, and the
labels and masks are then exact. These numbers are optimistic (the detector and the simulator were written
by the same people); ``docs/integrity.md`` keeps them apart from the numbers on real photos.

Sources are the real photos in ``../shared/data`` (``car_damage_roboflow`` and ``vin_plates``, CC BY 4.0,
256 px). They are small, so every variant is **upscaled** (bicubic, 2-5x) and then passed through a
simulated phone camera (optics blur, RGGB Bayer sampling with signal-dependent noise, demosaicing,
sharpening, JPEG 85-97, phone-like EXIF on some). The *real* class goes through the same camera, so a
detector cannot separate the classes by "was upscaled" or "has sensor noise".

Photos are split by a hash of their relative path into ``calib`` (used to choose thresholds and fit the
score weights) and ``test`` (what ``claimlens bench ... --suite`` reports by default).

Recapture suite (``labels.csv``: image,label,kind,source; label ``real`` | ``recaptured``):

* ``real``: the photo through the simulated camera.
* ``screen``: the photo shown on an LCD/OLED (RGB-stripe, BGR or PenTile sub-pixels, pixel gaps, display
  gamma, sometimes inside app chrome), with bezel and room around it, photographed at 0.7-3.5 camera pixels
  per screen pixel (the grid aliases into moire), perspective, lens blur, glare, then the camera.
* ``print``: the photo printed with a clustered-dot halftone (laser/offset, CMYK screens at 15/75/0/45
  degrees) or with stochastic dither (inkjet), on textured paper with a margin, lit unevenly, photographed.
* ``screenshot``: the photo inside phone/desktop UI (status bar, navigation bar, gallery viewer, chat
  bubble, claims web page, desktop window) at an exact device resolution, PNG or JPEG; a third of them
  re-shared through a messenger (downscaled, JPEG 70-85), which loses the exact resolution.

Tamper suite (``labels.csv``: image,label,mask,kind,source; label ``authentic`` | ``tampered``; masks are
PNGs, 255 = tampered pixels):

* ``authentic``: the photo through the camera (JPEG q1 88-97), then re-saved (JPEG q2 80-95) as claim apps
  do.
* ``copy_move``: a region (2-10 % of the image, preferably inside the labelled damaged part) copied to
  another place of the same photo, feathered edge; ``copy_move_affine`` adds rotation 4-30 degrees and
  scale 0.85-1.15. Mask: the copied and the pasted region (the usual copy-move convention).
* ``splice``: a region from another photo, through another camera and JPEG 60-85, pasted. Mask: pasted.
* ``inpaint``: a region (damage box when labelled) removed with ``cv2.inpaint`` (Telea or Navier-Stokes).
* ``inpaint_patch``: a hole filled with a patch copied from next to it (the simplest content-aware fill).
  Tampered variants are saved at q2 too, from the same q1 image, so JPEG history alone does not separate
  the classes.

Everything is deterministic for (sources, seed, split, n): one ``numpy`` generator per photo and variant.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
from collections.abc import Callable, Iterable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

# one list of exact device screen sizes for the generator and the screenshot detector
from claimlens.vision.integrity.recapture import DESKTOP_RESOLUTIONS, PHONE_RESOLUTIONS, TABLET_RESOLUTIONS

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
DEFAULT_SOURCES = (SHARED_DATA / "car_damage_roboflow", SHARED_DATA / "vin_plates")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")

RECAPTURE_KINDS = ("screen", "print", "screenshot")
TAMPER_KINDS = ("copy_move", "copy_move_affine", "splice", "inpaint", "inpaint_patch")

PHONES = (("Apple", "iPhone 13"), ("Apple", "iPhone 15 Pro"), ("HUAWEI", "P40"), ("Xiaomi", "M2102J2SC"),
          ("samsung", "SM-S9180"), ("OPPO", "PGKM10"), ("vivo", "V2309A"), ("HONOR", "ANY-AN00"))


# ------------------------------------------------------------------------------------------------ sources


def split_of(rel_path: str) -> str:
    """``calib`` or ``test``: a stable half split by a hash of the photo's relative path."""
    return "calib" if int(hashlib.sha1(rel_path.encode()).hexdigest()[:8], 16) % 2 == 0 else "test"


def list_sources(dirs: Iterable[Path], split: str = "test") -> list[tuple[str, Path]]:
    """(name, path) of the photos under ``dirs`` (recursive, sorted) in ``split`` (``all`` for every one).
    The name is ``<dir name>/<relative path>``."""
    out: list[tuple[str, Path]] = []
    for d in dirs:
        d = Path(d)
        if not d.is_dir():
            continue
        for p in sorted(d.rglob("*")):
            if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file():
                name = f"{d.name}/{p.relative_to(d).as_posix()}"
                if split == "all" or split_of(name) == split:
                    out.append((name, p))
    return out


def _pick(sources: list[tuple[str, Path]], n: int, seed: int) -> list[tuple[str, Path]]:
    if n >= len(sources):
        return sources
    rng = np.random.default_rng([seed, 7])
    idx = np.sort(rng.choice(len(sources), size=n, replace=False))
    return [sources[i] for i in idx]


def _load(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.uint8)


def _damage_box(path: Path, shape: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """The first YOLO box next to the photo (../labels/<stem>.txt) in pixels (x1, y1, x2, y2), if any."""
    lab = path.parent.parent / "labels" / (path.stem + ".txt")
    if not lab.is_file():
        return None
    h, w = shape
    for line in lab.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 5:
            try:
                cx, cy, bw, bh = (float(v) for v in parts[1:5])
            except ValueError:
                continue
            x1, y1 = int((cx - bw / 2) * w), int((cy - bh / 2) * h)
            x2, y2 = int((cx + bw / 2) * w), int((cy + bh / 2) * h)
            if x2 - x1 > 8 and y2 - y1 > 8:
                return max(0, x1), max(0, y1), min(w, x2), min(h, y2)
    return None


# ------------------------------------------------------------------------------------------- encoding


def exif_bytes(make: str, model: str, *, thumbnail: bytes | None = None, when: str = "2026:05:01 10:00:00",
               width: int | None = None, height: int | None = None, lens: str | None = None,
               software: str | None = None) -> bytes:
    """A minimal phone-like EXIF block (``Exif\\0\\0`` + little-endian TIFF) with IFD0 Make/Model/Software,
    an Exif IFD (DateTimeOriginal, PixelX/YDimension, LensModel) and, optionally, IFD1 with a JPEG
    thumbnail. Pillow cannot write EXIF thumbnails, hence this writer (used by the suite and the tests)."""

    def ascii_value(text: str) -> bytes:
        return text.encode() + b"\x00"

    ifd0 = [(0x010F, 2, ascii_value(make)), (0x0110, 2, ascii_value(model))]
    if software:
        ifd0.append((0x0131, 2, ascii_value(software)))
    exif_ifd = [(0x9003, 2, ascii_value(when))]
    if width and height:
        exif_ifd += [(0xA002, 4, struct_u32(width)), (0xA003, 4, struct_u32(height))]
    if lens:
        exif_ifd.append((0xA434, 2, ascii_value(lens)))
    exif_ifd.sort()

    # layout: header(8) | IFD0 | IFD0 data | ExifIFD | ExifIFD data | IFD1 | thumbnail
    def ifd_size(entries: list) -> int:
        return 2 + 12 * len(entries) + 4

    def data_size(entries: list) -> int:
        return sum(len(v) + (len(v) & 1) for _, _, v in entries if len(v) > 4)

    off_ifd0 = 8
    n0 = len(ifd0) + 1  # + ExifIFD pointer
    off_ifd0_data = off_ifd0 + 2 + 12 * n0 + 4
    off_exif = off_ifd0_data + data_size(ifd0)
    off_exif_data = off_exif + ifd_size(exif_ifd)
    off_ifd1 = off_exif_data + data_size(exif_ifd)
    ifd1_entries = 3 if thumbnail else 0
    off_thumb = off_ifd1 + 2 + 12 * ifd1_entries + 4

    def write_ifd(entries: list, data_at: int, extra: list, next_ifd: int) -> tuple[bytes, bytes]:
        body, data = bytearray(), bytearray()
        all_entries = sorted(entries + extra, key=lambda e: e[0])
        body += len(all_entries).to_bytes(2, "little")
        for tag, typ, value in all_entries:
            count = len(value) if typ == 2 else 1
            body += tag.to_bytes(2, "little") + typ.to_bytes(2, "little") + count.to_bytes(4, "little")
            if len(value) > 4:
                body += (data_at + len(data)).to_bytes(4, "little")
                data += value + (b"\x00" if len(value) & 1 else b"")
            else:
                body += value.ljust(4, b"\x00")
        body += next_ifd.to_bytes(4, "little")
        return bytes(body), bytes(data)

    b0, d0 = write_ifd(ifd0, off_ifd0_data, [(0x8769, 4, struct_u32(off_exif))], off_ifd1 if thumbnail else 0)
    be, de = write_ifd(exif_ifd, off_exif_data, [], 0)
    out = bytearray(b"II*\x00" + (8).to_bytes(4, "little")) + b0 + d0 + be + de
    if thumbnail:
        b1, _ = write_ifd([(0x0103, 3, (6).to_bytes(2, "little")), (0x0201, 4, struct_u32(off_thumb)),
                           (0x0202, 4, struct_u32(len(thumbnail)))], 0, [], 0)
        out += b1 + thumbnail
    return b"Exif\x00\x00" + bytes(out)


def struct_u32(v: int) -> bytes:
    return int(v).to_bytes(4, "little")


def encode_jpeg(rgb: np.ndarray, quality: int, *, exif: bytes | None = None, subsampling: int = 2) -> bytes:
    buf = io.BytesIO()
    kw: dict = {"quality": int(quality), "subsampling": subsampling}
    if exif:
        kw["exif"] = exif
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format="JPEG", **kw)
    return buf.getvalue()


def encode_png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", compress_level=3)
    return buf.getvalue()


def decode_rgb(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.uint8)


def camera_exif(rng: np.random.Generator, w: int, h: int, thumb_of: np.ndarray | None = None) -> bytes:
    make, model = PHONES[int(rng.integers(len(PHONES)))]
    thumb = None
    if thumb_of is not None:
        th = cv2.resize(thumb_of, (160, max(1, round(160 * thumb_of.shape[0] / thumb_of.shape[1]))),
                        interpolation=cv2.INTER_AREA)
        thumb = encode_jpeg(th, 80)
    day = int(rng.integers(1, 28))
    return exif_bytes(make, model, thumbnail=thumb, when=f"2026:04:{day:02d} 1{int(rng.integers(0, 10))}:12:00",
                      width=w, height=h)


# ------------------------------------------------------------------------------------------ the camera


def _upscale(rgb: np.ndarray, long_side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    s = long_side / max(h, w)
    return cv2.resize(rgb, (max(8, round(w * s)), max(8, round(h * s))), interpolation=cv2.INTER_CUBIC)


def camera(scene: np.ndarray, rng: np.random.Generator, *, noise: float | None = None) -> np.ndarray:
    """A phone camera looking at ``scene`` (float32 RGB 0..1 radiance at the sensor's sampling): optical
    blur, RGGB Bayer sampling with shot + read noise, demosaicing, tone curve, unsharp mask. uint8 RGB out."""
    img = cv2.GaussianBlur(scene, (0, 0), float(rng.uniform(0.45, 0.8)))
    h, w = img.shape[:2]
    h, w = h - h % 2, w - w % 2
    img = img[:h, :w]
    bayer = np.empty((h, w), np.float32)
    bayer[0::2, 0::2] = img[0::2, 0::2, 0]
    bayer[0::2, 1::2] = img[0::2, 1::2, 1]
    bayer[1::2, 0::2] = img[1::2, 0::2, 1]
    bayer[1::2, 1::2] = img[1::2, 1::2, 2]
    sigma_read = float(rng.uniform(0.002, 0.008)) if noise is None else noise
    gain = float(rng.uniform(0.0005, 0.003))
    bayer = bayer + rng.standard_normal(bayer.shape, dtype=np.float32) * np.sqrt(
        sigma_read ** 2 + gain * np.clip(bayer, 0, 1)).astype(np.float32)
    raw = (np.clip(bayer, 0, 1) * 65535).astype(np.uint16)
    rgb = cv2.cvtColor(raw, cv2.COLOR_BayerRGGB2RGB).astype(np.float32) / 65535.0
    blur = cv2.GaussianBlur(rgb, (0, 0), 1.2)
    rgb = rgb + float(rng.uniform(0.2, 0.7)) * (rgb - blur)  # phone sharpening
    return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)


def _to_linear(rgb: np.ndarray) -> np.ndarray:
    return (rgb.astype(np.float32) / 255.0) ** 2.2


def _to_display(lin: np.ndarray) -> np.ndarray:
    return np.clip(lin, 0, 1) ** (1 / 2.2)


def real_capture(src: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The real class: the photo upscaled to a phone-photo-like size and passed through the camera."""
    up = _upscale(src, int(rng.integers(900, 1500)))
    return camera(up.astype(np.float32) / 255.0, rng)


def _perspective(img: np.ndarray, rng: np.random.Generator, out_scale: float, strength: float,
                 border: tuple[float, float, float]) -> np.ndarray:
    h, w = img.shape[:2]
    ow, oh = max(16, round(w * out_scale)), max(16, round(h * out_scale))
    jitter = rng.uniform(-strength, strength, size=(4, 2)) * np.array([ow, oh])
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = np.float32([[0, 0], [ow, 0], [ow, oh], [0, oh]]) + jitter.astype(np.float32)
    dst -= dst.min(axis=0)
    W, H = math.ceil(dst[:, 0].max()), math.ceil(dst[:, 1].max())
    M = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    return cv2.warpPerspective(img, M, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                               borderValue=border)


def _room(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth, slightly textured background (desk, wall) in linear light."""
    base = rng.uniform(0.05, 0.5, size=3).astype(np.float32)
    low = cv2.resize(rng.uniform(0.8, 1.2, size=(4, 4)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    tex = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 2.0) * 0.04
    return (base[None, None, :] * (low + tex)[..., None]).astype(np.float32)


def _subpixel_mask(kind: str, k: int) -> np.ndarray:
    """One screen pixel as a k x k (x 3) sub-pixel emission mask."""
    m = np.zeros((k, k, 3), np.float32)
    if kind in ("rgb", "bgr"):
        order = (0, 1, 2) if kind == "rgb" else (2, 1, 0)
        for i, c in enumerate(order):
            m[: k - 1, i * k // 3:(i + 1) * k // 3, c] = 1.0
    else:  # pentile-like: green everywhere (small), red / blue on alternating halves
        m[: k // 2, : k // 2, 0] = 1.0
        m[k // 2:, k // 2:, 2] = 1.0
        m[: k // 2, k // 2:, 1] = 1.0
        m[k // 2:, : k // 2, 1] = 1.0
    return m


def screen_capture(src: np.ndarray, rng: np.random.Generator, *, content: np.ndarray | None = None) -> np.ndarray:
    """Photograph of ``src`` (or of ``content``, e.g. an app screen holding it) shown on a display."""
    screen_img = content if content is not None else src
    sh, sw = screen_img.shape[:2]
    zoom = float(rng.uniform(1.3, 3.5)) if content is None else 1.0
    if content is not None and max(sh, sw) > 900:  # keep the sub-pixel canvas bounded
        zoom = 900 / max(sh, sw)
    Ws, Hs = max(16, round(sw * zoom)), max(16, round(sh * zoom))
    shown = cv2.resize(screen_img, (Ws, Hs), interpolation=cv2.INTER_CUBIC if zoom > 1 else cv2.INTER_AREA)
    lin = _to_linear(shown) ** float(rng.uniform(0.85, 1.2))  # display gamma differs from sRGB
    k = 3
    kind = ("rgb", "rgb", "bgr", "pentile")[int(rng.integers(4))]
    sub = np.repeat(np.repeat(lin, k, axis=0), k, axis=1) * np.tile(_subpixel_mask(kind, k), (Hs, Ws, 1))
    sub *= 3.0 * float(rng.uniform(0.7, 1.0))  # sub-pixels are brighter than their share of the area
    bezel = int(max(Hs, Ws) * k * rng.uniform(0.02, 0.07))
    room = int(max(Hs, Ws) * k * rng.uniform(0.0, 0.12))
    H, W = Hs * k + 2 * (bezel + room), Ws * k + 2 * (bezel + room)
    canvas = _room(H, W, rng) if room > 0 else np.zeros((H, W, 3), np.float32)
    bz = float(rng.uniform(0.005, 0.04))
    canvas[room:H - room, room:W - room] = bz
    canvas[room + bezel:room + bezel + Hs * k, room + bezel:room + bezel + Ws * k] = sub
    if rng.random() < 0.4:  # glare: a soft reflection of a window or lamp
        yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
        cy, cx = rng.uniform(0.2, 0.8) * H, rng.uniform(0.2, 0.8) * W
        r = rng.uniform(0.1, 0.3) * max(H, W)
        canvas += (float(rng.uniform(0.05, 0.25)) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r)))[..., None]
    # camera pixels per screen pixel, and the lens blur in sub-pixel units before sampling
    p = float(rng.uniform(0.7, 3.5))
    target_long = max(Hs, Ws) * p
    if target_long > 1800:
        p *= 1800 / target_long
    sigma_cam = float(rng.uniform(0.35, 0.8))
    canvas = cv2.GaussianBlur(canvas, (0, 0), max(0.3, sigma_cam * k / p))
    warped = _perspective(canvas, rng, p / k, float(rng.uniform(0.0, 0.06)), (0.1, 0.1, 0.1))
    exposure = float(rng.uniform(0.7, 1.1)) / max(1e-3, float(np.percentile(warped, 99)))
    out = camera(_to_display(warped * exposure), rng)
    if room == 0 and rng.random() < 0.5:  # cropped to the picture by the sender
        h, w = out.shape[:2]
        c = rng.uniform(0.06, 0.15, size=4)
        out = out[int(h * c[0]):h - int(h * c[1]), int(w * c[2]):w - int(w * c[3])]
    return out


def _halftone(channel: np.ndarray, period: float, angle_deg: float) -> np.ndarray:
    """Clustered-dot halftone of ink coverage 0..1 (1 = full ink) on a rotated square screen."""
    h, w = channel.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = math.radians(angle_deg)
    u = (xx * math.cos(a) + yy * math.sin(a)) * (2 * math.pi / period)
    v = (-xx * math.sin(a) + yy * math.cos(a)) * (2 * math.pi / period)
    spot = (np.cos(u) + np.cos(v)) * 0.25 + 0.5  # 0..1, cluster centres at 1
    return (spot > 1.0 - channel).astype(np.float32)


def print_capture(src: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Photograph of the photo printed on paper (clustered-dot laser/offset or stochastic inkjet dither)."""
    up = _upscale(src, int(max(src.shape[:2]) * rng.uniform(4.0, 6.0)))  # print pixels
    rgb = up.astype(np.float32) / 255.0
    k = 1.0 - rgb.max(axis=2)
    denom = np.maximum(1.0 - k, 1e-3)
    cmy = [(1.0 - rgb[..., i] - k) / denom for i in range(3)]
    inks = cmy + [k * float(rng.uniform(0.7, 1.0))]
    clustered = rng.random() < 0.6
    if clustered:
        period = float(rng.uniform(4.0, 8.0))
        angles = (15.0, 75.0, 0.0, 45.0)
        cov = [_halftone(c, period, a) for c, a in zip(inks, angles)]
    else:
        cov = [(c > rng.random(c.shape, dtype=np.float32)).astype(np.float32) for c in inks]
        cov = [cv2.GaussianBlur(c, (0, 0), 0.7) for c in cov]  # ink spread of an inkjet
    # ink absorbs: cyan removes red, magenta green, yellow blue, black all
    paper = np.array(rng.uniform([0.9, 0.88, 0.82], [0.98, 0.97, 0.95]), np.float32)
    refl = np.ones_like(rgb) * paper
    absorb = ((0.85, 0.2, 0.05), (0.1, 0.85, 0.2), (0.02, 0.1, 0.9), (0.9, 0.9, 0.9))
    for c, ab in zip(cov, absorb):
        refl *= 1.0 - c[..., None] * np.array(ab, np.float32)
    h, w = refl.shape[:2]
    fibre = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 1.5) * 0.03
    refl *= (1.0 + fibre)[..., None]
    margin = int(max(h, w) * rng.uniform(0.02, 0.08))
    sheet = np.ones((h + 2 * margin, w + 2 * margin, 3), np.float32) * paper * (1 + fibre.mean())
    sheet[margin:margin + h, margin:margin + w] = refl
    room = int(max(h, w) * rng.uniform(0.0, 0.12))
    H, W = sheet.shape[0] + 2 * room, sheet.shape[1] + 2 * room
    canvas = _room(H, W, rng)
    canvas[room:room + sheet.shape[0], room:room + sheet.shape[1]] = _to_linear((sheet * 255).clip(0, 255))
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    light = 1.0 + float(rng.uniform(-0.3, 0.3)) * (xx / W - 0.5) + float(rng.uniform(-0.3, 0.3)) * (yy / H - 0.5)
    canvas *= light[..., None]
    p = float(rng.uniform(0.3, 0.9))  # camera pixels per print pixel
    if max(H, W) * p > 1800:
        p = 1800 / max(H, W)
    canvas = cv2.GaussianBlur(canvas, (0, 0), max(0.3, float(rng.uniform(0.4, 0.9)) / p))
    warped = _perspective(canvas, rng, p, float(rng.uniform(0.0, 0.06)), (0.05, 0.05, 0.05))
    exposure = float(rng.uniform(0.75, 1.05)) / max(1e-3, float(np.percentile(warped, 99)))
    return camera(_to_display(warped * exposure), rng)


# ------------------------------------------------------------------------------------------ screenshots


def _font(size: float) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=max(8, int(size)))


def _status_bar(draw: ImageDraw.ImageDraw, w: int, h: int, fg: tuple[int, int, int], rng: np.random.Generator,
                y0: int = 0) -> None:
    font = _font(h * 0.55)
    draw.text((int(w * 0.05), y0 + int(h * 0.2)), f"{int(rng.integers(0, 24)):02d}:{int(rng.integers(0, 60)):02d}",
              fill=fg, font=font)
    x = int(w * 0.72)
    unit = max(2, h // 12)
    for i in range(4):
        bh = int(h * (0.2 + 0.1 * i))
        draw.rectangle((x + i * 2 * unit, y0 + int(h * 0.7) - bh, x + i * 2 * unit + unit, y0 + int(h * 0.7)), fill=fg)
    bx = int(w * 0.86)
    draw.rounded_rectangle((bx, y0 + int(h * 0.3), bx + int(w * 0.07), y0 + int(h * 0.7)), radius=unit,
                           outline=fg, width=max(1, unit // 2))
    level = float(rng.uniform(0.15, 1.0))
    draw.rectangle((bx + 2 * unit // 2 + 1, y0 + int(h * 0.3) + unit, bx + int(w * 0.07 * level), y0 + int(h * 0.7) - unit),
                   fill=fg)


def _paste(canvas: Image.Image, photo: np.ndarray, box: tuple[int, int, int, int]) -> None:
    x1, y1, x2, y2 = box
    pw, ph = max(1, x2 - x1), max(1, y2 - y1)
    scaled = cv2.resize(photo, (pw, ph), interpolation=cv2.INTER_CUBIC if pw > photo.shape[1] else cv2.INTER_AREA)
    canvas.paste(Image.fromarray(scaled), (x1, y1))


def _fit(photo: np.ndarray, max_w: int, max_h: int) -> tuple[int, int]:
    s = min(max_w / photo.shape[1], max_h / photo.shape[0])
    return max(1, round(photo.shape[1] * s)), max(1, round(photo.shape[0] * s))


def screenshot(photo: np.ndarray, rng: np.random.Generator, layout: str | None = None) -> tuple[np.ndarray, str]:
    """The photo inside UI chrome at an exact device resolution. Returns (rgb, layout)."""
    layouts = ("gallery", "chat", "webpage", "desktop", "tablet")
    layout = layout or layouts[int(rng.choice(len(layouts), p=[0.35, 0.25, 0.2, 0.12, 0.08]))]
    if layout == "desktop":
        w, h = DESKTOP_RESOLUTIONS[int(rng.integers(len(DESKTOP_RESOLUTIONS)))]
    elif layout == "tablet":
        w, h = TABLET_RESOLUTIONS[int(rng.integers(len(TABLET_RESOLUTIONS)))]
    else:
        w, h = PHONE_RESOLUTIONS[int(rng.integers(len(PHONE_RESOLUTIONS)))]
    dark = layout == "gallery" or rng.random() < 0.25
    bg = (0, 0, 0) if layout == "gallery" else ((28, 28, 30) if dark else
                                                tuple(int(v) for v in rng.integers(232, 256, size=3)))
    if layout == "chat" and not dark:
        bg = (237, 237, 237)
    canvas = Image.new("RGB", (w, h), bg)
    draw = ImageDraw.Draw(canvas)
    fg = (240, 240, 240) if dark else (25, 25, 25)
    sb = int(h * rng.uniform(0.025, 0.045)) if layout not in ("desktop",) else 0
    if sb:
        _status_bar(draw, w, sb, fg, rng)
    nav = int(h * rng.uniform(0.03, 0.06)) if layout not in ("desktop",) else 0
    if nav:
        ny = h - nav
        if rng.random() < 0.5:  # gesture pill
            draw.rounded_rectangle((w * 0.35, ny + nav * 0.45, w * 0.65, ny + nav * 0.6), radius=nav // 6, fill=fg)
        else:  # three buttons
            cy = ny + nav // 2
            r = nav // 4
            draw.polygon([(w * 0.25 - r, cy), (w * 0.25 + r, cy - r), (w * 0.25 + r, cy + r)], outline=fg)
            draw.ellipse((w * 0.5 - r, cy - r, w * 0.5 + r, cy + r), outline=fg, width=2)
            draw.rectangle((w * 0.75 - r, cy - r, w * 0.75 + r, cy + r), outline=fg, width=2)
    text_font = _font(h * 0.018 if h > w else h * 0.022)
    if layout == "gallery":
        pw, ph = _fit(photo, w, int(h * 0.75))
        y = (h - ph) // 2 + int(rng.integers(-h // 20, h // 20))
        _paste(canvas, photo, ((w - pw) // 2, y, (w - pw) // 2 + pw, y + ph))
        iy = h - nav - int(h * 0.06)
        for i, label in enumerate(("Share", "Edit", "Favorite", "Delete")):
            draw.text((int(w * (0.08 + 0.24 * i)), iy), label, fill=fg, font=text_font)
    elif layout in ("chat", "webpage", "tablet"):
        head = int(h * rng.uniform(0.05, 0.08))
        hc = (int(rng.integers(0, 80)), int(rng.integers(80, 170)), int(rng.integers(150, 255))) \
            if layout == "webpage" else bg
        draw.rectangle((0, sb, w, sb + head), fill=hc)
        draw.text((int(w * 0.12), sb + head // 3), ("Claim photos", "Zhang Wei", "Survey 3/8")[int(rng.integers(3))],
                  fill=fg if hc == bg else (255, 255, 255), font=_font(head * 0.4))
        y = sb + head + int(h * 0.03)
        if layout == "chat":
            for _ in range(int(rng.integers(1, 3))):
                bw = int(w * rng.uniform(0.3, 0.6))
                draw.rounded_rectangle((w * 0.05, y, w * 0.05 + bw, y + h * 0.05), radius=12, fill=(255, 255, 255))
                draw.text((w * 0.08, y + h * 0.012), "see the photo", fill=(20, 20, 20), font=text_font)
                y += int(h * 0.07)
            pw, ph = _fit(photo, int(w * rng.uniform(0.45, 0.65)), int(h * 0.35))
            x = int(w * 0.95) - pw if rng.random() < 0.5 else int(w * 0.05)
            _paste(canvas, photo, (x, y, x + pw, y + ph))
            y += ph + int(h * 0.03)
            draw.rectangle((0, h - nav - int(h * 0.07), w, h - nav), fill=(247, 247, 247) if not dark else (40, 40, 40))
            draw.rounded_rectangle((w * 0.12, h - nav - h * 0.06, w * 0.8, h - nav - h * 0.015), radius=10,
                                   fill=(255, 255, 255) if not dark else (60, 60, 60))
        else:
            margin = int(w * rng.uniform(0.0, 0.06))
            pw, ph = _fit(photo, w - 2 * margin, int(h * 0.45))
            _paste(canvas, photo, ((w - pw) // 2, y, (w - pw) // 2 + pw, y + ph))
            y += ph + int(h * 0.03)
            for i in range(int(rng.integers(3, 8))):
                if y > h - nav - h * 0.1:
                    break
                draw.text((margin + 8, y), ("Damage: rear bumper", "Photo taken 2026-04-03", "Claim CLM-0042",
                                            "Status: under review", "Adjuster notes")[i % 5], fill=fg, font=text_font)
                y += int(h * 0.035)
            bt = int(h * 0.06)
            draw.rounded_rectangle((w * 0.1, h - nav - bt - h * 0.02, w * 0.9, h - nav - h * 0.02), radius=bt // 3,
                                   fill=(0, 122, 255))
    else:  # desktop: a window with a title bar and a taskbar
        tb = int(h * 0.04)
        draw.rectangle((0, h - tb, w, h), fill=(32, 32, 40) if rng.random() < 0.7 else (230, 230, 235))
        for i in range(6):
            draw.rectangle((w * 0.3 + i * tb * 1.2, h - tb * 0.8, w * 0.3 + i * tb * 1.2 + tb * 0.6, h - tb * 0.2),
                           fill=(90, 140, 200))
        wx1, wy1 = int(w * rng.uniform(0.0, 0.15)), int(h * rng.uniform(0.0, 0.1))
        wx2, wy2 = int(w * rng.uniform(0.85, 1.0)), h - tb - int(h * rng.uniform(0.0, 0.05))
        draw.rectangle((wx1, wy1, wx2, wy2), fill=(245, 245, 245))
        draw.rectangle((wx1, wy1, wx2, wy1 + tb), fill=(225, 225, 230))
        draw.text((wx1 + 10, wy1 + tb // 4), "IMG_2041.jpg - Photos", fill=(20, 20, 20), font=_font(tb * 0.45))
        pw, ph = _fit(photo, wx2 - wx1 - 20, wy2 - wy1 - tb - 20)
        px, py = wx1 + (wx2 - wx1 - pw) // 2, wy1 + tb + (wy2 - wy1 - tb - ph) // 2
        draw.rectangle((wx1, wy1 + tb, wx2, wy2), fill=(30, 30, 30) if rng.random() < 0.5 else (250, 250, 250))
        _paste(canvas, photo, (px, py, px + pw, py + ph))
    return np.asarray(canvas, dtype=np.uint8), layout


# ---------------------------------------------------------------------------------------- the suites


def _write(out_dir: Path, rel: str, data: bytes) -> str:
    path = out_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return rel


def _stem(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()[:10]


def _camera_file(rgb: np.ndarray, rng: np.random.Generator, p_exif: float = 0.6) -> bytes:
    exif = camera_exif(rng, rgb.shape[1], rgb.shape[0], thumb_of=rgb if rng.random() < 0.5 else None) \
        if rng.random() < p_exif else None
    return encode_jpeg(rgb, int(rng.integers(85, 98)), exif=exif)


def generate_recapture_suite(out_dir: Path, sources: Iterable[Path] = DEFAULT_SOURCES, *, n: int = 200,
                             seed: int = 0, split: str = "test",
                             kinds: Iterable[str] = RECAPTURE_KINDS) -> list[dict[str, str]]:
    """Write ``n`` real + ``n`` recaptured images (kinds in rotation) and ``labels.csv``; return the rows."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    kinds = tuple(kinds)
    picked = _pick(list_sources(sources, split), n, seed)
    if not picked:
        raise ValueError(f"no source photos in split {split!r} under {list(map(str, sources))}")
    rows: list[dict[str, str]] = []
    for i, (name, path) in enumerate(picked):
        src = _load(path)
        stem = _stem(name)
        rng = np.random.default_rng([seed, i, 0])
        rows.append({"image": _write(out_dir, f"real/{stem}.jpg", _camera_file(real_capture(src, rng), rng)),
                     "label": "real", "kind": "real", "source": name})
        kind = kinds[i % len(kinds)]
        rng = np.random.default_rng([seed, i, 1 + RECAPTURE_KINDS.index(kind)])
        if kind == "screen":
            content = None
            if rng.random() < 0.3:  # the photo inside an app on a phone screen
                content, _ = screenshot(src if rng.random() < 0.5 else _upscale(src, 640), rng,
                                        layout=("gallery", "chat", "webpage")[int(rng.integers(3))])
                content = cv2.resize(content, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
            data, ext = _camera_file(screen_capture(src, rng, content=content), rng), "jpg"
        elif kind == "print":
            data, ext = _camera_file(print_capture(src, rng), rng), "jpg"
        else:
            shot, layout = screenshot(_upscale(src, int(rng.integers(640, 1100))), rng)
            r = rng.random()
            if r < 0.33:  # re-shared through a messenger: downscaled, JPEG, no metadata
                s = float(rng.uniform(0.4, 0.8))
                shot = cv2.resize(shot, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
                data, ext = encode_jpeg(shot, int(rng.integers(70, 86))), "jpg"
            elif r < 0.66:
                data, ext = encode_jpeg(shot, int(rng.integers(88, 96))), "jpg"
            else:
                data, ext = encode_png(shot), "png"
            rows.append({"image": _write(out_dir, f"screenshot/{stem}_{layout}.{ext}", data),
                         "label": "recaptured", "kind": "screenshot", "source": name})
            continue
        rows.append({"image": _write(out_dir, f"{kind}/{stem}.{ext}", data), "label": "recaptured", "kind": kind,
                     "source": name})
    _write_csv(out_dir / "labels.csv", rows, ("image", "label", "kind", "source"))
    return rows


def _blob_mask(h: int, w: int, cx: float, cy: float, rx: float, ry: float, rng: np.random.Generator) -> np.ndarray:
    """An irregular filled polygon around (cx, cy) with radii about (rx, ry)."""
    n = int(rng.integers(6, 12))
    ang = np.sort(rng.uniform(0, 2 * np.pi, n))
    rad = rng.uniform(0.65, 1.0, n)
    pts = np.stack([cx + rx * rad * np.cos(ang), cy + ry * rad * np.sin(ang)], 1).round().astype(np.int32)
    m = np.zeros((h, w), np.uint8)
    cv2.fillPoly(m, [pts], 1)
    return m


def _rect_mask(h: int, w: int, cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    cv2.rectangle(m, (int(cx - rx), int(cy - ry)), (int(cx + rx), int(cy + ry)), 1, -1)
    return m


def _region(h: int, w: int, rng: np.random.Generator, area_frac: tuple[float, float],
            box: tuple[int, int, int, int] | None) -> tuple[np.ndarray, float, float, float, float]:
    area = float(rng.uniform(*area_frac)) * h * w
    aspect = float(rng.uniform(0.6, 1.6))
    rx, ry = math.sqrt(area / math.pi * aspect), math.sqrt(area / math.pi / aspect)
    rx, ry = min(rx, w * 0.3), min(ry, h * 0.3)
    if box is not None and rng.random() < 0.7:
        x1, y1, x2, y2 = box
        cx = float(np.clip(rng.uniform(x1, x2), rx + 2, w - rx - 2))
        cy = float(np.clip(rng.uniform(y1, y2), ry + 2, h - ry - 2))
    else:
        cx, cy = float(rng.uniform(rx + 2, w - rx - 2)), float(rng.uniform(ry + 2, h - ry - 2))
    m = _blob_mask(h, w, cx, cy, rx, ry, rng) if rng.random() < 0.7 else _rect_mask(h, w, cx, cy, rx, ry)
    return m, cx, cy, rx, ry


def _feather(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    s = float(rng.uniform(0.0, 1.5))
    a = mask.astype(np.float32)
    return cv2.GaussianBlur(a, (0, 0), s) if s > 0.3 else a


def _blend(dst: np.ndarray, src: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = alpha[..., None]
    return (dst.astype(np.float32) * (1 - a) + src.astype(np.float32) * a).round().clip(0, 255).astype(np.uint8)


def _tamper_base(src: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The 'camera original' of the tamper suite: 2x upscale, camera, JPEG q1 88-97, decoded."""
    up = _upscale(src, int(max(src.shape[:2]) * rng.uniform(1.8, 2.4)))
    return decode_rgb(encode_jpeg(camera(up.astype(np.float32) / 255.0, rng), int(rng.integers(88, 98))))


def _copy_move(img: np.ndarray, rng: np.random.Generator, box: tuple[int, int, int, int] | None,
               affine: bool) -> tuple[np.ndarray, np.ndarray]:
    h, w = img.shape[:2]
    for _ in range(50):
        m_src, cx, cy, rx, ry = _region(h, w, rng, (0.02, 0.10), box)
        ang = float(rng.uniform(4, 30) * rng.choice([-1, 1])) if affine else 0.0
        scale = float(rng.uniform(0.85, 1.15)) if affine else 1.0
        tx, ty = float(rng.uniform(rx * scale + 2, w - rx * scale - 2)), float(rng.uniform(ry * scale + 2, h - ry * scale - 2))
        if math.hypot(tx - cx, ty - cy) < 1.6 * max(rx, ry) * max(1.0, scale):
            continue
        M = cv2.getRotationMatrix2D((cx, cy), ang, scale)
        M[:, 2] += (tx - cx, ty - cy)
        moved = cv2.warpAffine(img, M, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        m_dst = cv2.warpAffine(m_src, M, (w, h), flags=cv2.INTER_NEAREST)
        if (m_dst & m_src).any():
            continue
        out = _blend(img, moved, _feather(m_dst, rng))
        return out, ((m_src | m_dst) > 0).astype(np.uint8)
    raise RuntimeError("no room for a copy-move region")


def _splice(img: np.ndarray, donor_src: np.ndarray, rng: np.random.Generator,
            box: tuple[int, int, int, int] | None) -> tuple[np.ndarray, np.ndarray]:
    h, w = img.shape[:2]
    donor = _upscale(donor_src, int(max(donor_src.shape[:2]) * rng.uniform(1.5, 3.0)))
    donor = decode_rgb(encode_jpeg(camera(donor.astype(np.float32) / 255.0, rng,
                                          noise=float(rng.uniform(0.0, 0.015))), int(rng.integers(60, 86))))
    m, cx, cy, rx, ry = _region(h, w, rng, (0.02, 0.10), box)
    dh, dw = donor.shape[:2]
    sx = float(rng.uniform(rx, max(rx + 1, dw - rx))) if dw > 2 * rx else dw / 2
    sy = float(rng.uniform(ry, max(ry + 1, dh - ry))) if dh > 2 * ry else dh / 2
    M = np.float32([[1, 0, sx - cx], [0, 1, sy - cy]])
    patch = cv2.warpAffine(donor, M, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_REFLECT)
    # match the mean colour a little, as a forger would
    sel = m > 0
    shift = (img[sel].mean(axis=0) - patch[sel].mean(axis=0)) * float(rng.uniform(0.3, 0.8))
    patch = (patch.astype(np.float32) + shift).clip(0, 255).astype(np.uint8)
    return _blend(img, patch, _feather(m, rng)), m


def _inpaint(img: np.ndarray, rng: np.random.Generator, box: tuple[int, int, int, int] | None,
             patch_based: bool) -> tuple[np.ndarray, np.ndarray]:
    h, w = img.shape[:2]
    m, cx, cy, rx, ry = _region(h, w, rng, (0.01, 0.05), box)
    if not patch_based:
        flag = cv2.INPAINT_TELEA if rng.random() < 0.5 else cv2.INPAINT_NS
        bgr = cv2.inpaint(cv2.cvtColor(img, cv2.COLOR_RGB2BGR), m, float(rng.uniform(3, 7)), flag)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), m
    for _ in range(30):  # the hole is filled from an adjacent patch (1.1-2 region sizes away)
        ang = rng.uniform(0, 2 * np.pi)
        d = float(rng.uniform(2.2, 3.5)) * max(rx, ry)
        dx, dy = d * math.cos(ang), d * math.sin(ang)
        if rx + 2 < cx + dx < w - rx - 2 and ry + 2 < cy + dy < h - ry - 2:
            M = np.float32([[1, 0, dx], [0, 1, dy]])
            patch = cv2.warpAffine(img, M, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                   borderMode=cv2.BORDER_REFLECT)
            return _blend(img, patch, _feather(m, rng)), m
    bgr = cv2.inpaint(cv2.cvtColor(img, cv2.COLOR_RGB2BGR), m, 5.0, cv2.INPAINT_TELEA)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), m


def generate_tamper_suite(out_dir: Path, sources: Iterable[Path] = DEFAULT_SOURCES, *, n: int = 200,
                          seed: int = 0, split: str = "test",
                          kinds: Iterable[str] = TAMPER_KINDS) -> list[dict[str, str]]:
    """Write ``n`` authentic + ``n`` tampered images (kinds in rotation), masks and ``labels.csv``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    kinds = tuple(kinds)
    all_sources = list_sources(sources, split)
    picked = _pick(all_sources, n, seed)
    if not picked:
        raise ValueError(f"no source photos in split {split!r} under {list(map(str, sources))}")
    rows: list[dict[str, str]] = []
    for i, (name, path) in enumerate(picked):
        src = _load(path)
        stem = _stem(name)
        rng = np.random.default_rng([seed, i, 10])
        base = _tamper_base(src, rng)
        scale = base.shape[1] / src.shape[1]
        box = _damage_box(path, src.shape[:2])
        if box is not None:
            box = tuple(int(v * scale) for v in box)  # type: ignore[assignment]
        q2 = int(rng.integers(80, 96))
        rows.append({"image": _write(out_dir, f"authentic/{stem}.jpg", encode_jpeg(base, q2)), "label": "authentic",
                     "mask": "", "kind": "authentic", "source": name})
        kind = kinds[i % len(kinds)]
        rng = np.random.default_rng([seed, i, 11 + TAMPER_KINDS.index(kind)])
        if kind in ("copy_move", "copy_move_affine"):
            forged, mask = _copy_move(base, rng, box, affine=kind == "copy_move_affine")
        elif kind == "splice":
            donor_name, donor_path = all_sources[int(rng.integers(len(all_sources)))]
            if donor_name == name:
                donor_name, donor_path = all_sources[(all_sources.index((name, path)) + 1) % len(all_sources)]
            forged, mask = _splice(base, _load(donor_path), rng, box)
        else:
            forged, mask = _inpaint(base, rng, box, patch_based=kind == "inpaint_patch")
        img_rel = _write(out_dir, f"tampered/{stem}_{kind}.jpg", encode_jpeg(forged, int(rng.integers(80, 96))))
        mask_rel = _write(out_dir, f"masks/{stem}_{kind}.png", encode_png_gray(mask * 255))
        rows.append({"image": img_rel, "label": "tampered", "mask": mask_rel, "kind": kind, "source": name})
    _write_csv(out_dir / "labels.csv", rows, ("image", "label", "mask", "kind", "source"))
    return rows


def encode_png_gray(mask: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8), mode="L").save(buf, format="PNG")
    return buf.getvalue()


def _write_csv(path: Path, rows: list[dict[str, str]], fields: tuple[str, ...]) -> None:
    with path.open("w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=list(fields), extrasaction="ignore")
        wr.writeheader()
        wr.writerows(rows)


GENERATORS: dict[str, Callable[..., list[dict[str, str]]]] = {
    "recapture": generate_recapture_suite,
    "tamper": generate_tamper_suite,
}
