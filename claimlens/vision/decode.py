"""Decode a photo once, safely, into the forms every check shares.

Why one place: decoding a 12 MP JPEG costs ~100 ms and 36 MB; doing it per check would multiply both.
The decoded photo keeps exactly one full-resolution RGB array; smaller derived forms (grey thumbnails for
hashing) are cached on first use and are tiny next to it.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from claimlens.vision.errors import ImageTooLargeError, UnreadableImageError
from claimlens.vision.integrity.jpeg_forensics import SourceInfo, read_source_info
from claimlens.vision.metadata import PhotoMetadata, extract_metadata

try:  # HEIC/HEIF from iPhones
    import pillow_heif

    pillow_heif.register_heif_opener()
    HEIF_SUPPORTED = True
except ImportError:  # pragma: no cover - pillow-heif is a declared dependency
    HEIF_SUPPORTED = False

ALLOWED_FORMATS = {"JPEG", "PNG", "WEBP", "HEIF", "TIFF", "BMP", "MPO", "AVIF"}
DEFAULT_MAX_PIXELS = 80_000_000
T = TypeVar("T")


@dataclass
class DecodedPhoto:
    """A photo decoded once: RGB pixels (EXIF orientation applied), its metadata and content identities.

    Attributes:
        rgb: H x W x 3 uint8 array, upright.
        format: container format as Pillow names it (JPEG, PNG, WEBP, HEIF, ...).
        metadata: EXIF fields (see :class:`PhotoMetadata`).
        pixel_sha256: sha256 over the upright pixels and their shape: equal for the same image saved in
            another lossless container or with different metadata.
        orientation: the EXIF orientation tag that was applied (1 = none).
        mode: the source's Pillow mode before conversion (e.g. CMYK, I;16, RGBA).
        source_info: what the file header says beyond pixels and EXIF fields (JPEG quantisation tables,
            sampling, APP/COM segments, the EXIF thumbnail of at most 64 KB); read at decode time so the
            original bytes need not be kept (see :mod:`claimlens.vision.integrity.jpeg_forensics`).
    """

    rgb: np.ndarray
    format: str
    metadata: PhotoMetadata
    orientation: int = 1
    mode: str = "RGB"
    source_info: SourceInfo | None = field(default=None, repr=False)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @cached_property
    def pixel_sha256(self) -> str:
        h = hashlib.sha256(f"{self.height}x{self.width}x3:".encode())
        h.update(np.ascontiguousarray(self.rgb).data)
        return h.hexdigest()

    def gray(self, max_side: int) -> np.ndarray:
        """Grey-level copy whose longer side is at most ``max_side`` (area-averaged), cached per size."""
        key = f"gray{max_side}"
        if key not in self._cache:
            import cv2

            self._cache[key] = cv2.cvtColor(self.rgb_at(max_side), cv2.COLOR_RGB2GRAY)
        return self._cache[key]

    def rgb_at(self, max_side: int) -> np.ndarray:
        """RGB copy whose longer side is at most ``max_side`` (area-averaged), cached per size; the photo
        itself when it is already that small. Checks that work at a reduced scale share one copy."""
        key = f"rgb{max_side}"
        if key not in self._cache:
            import cv2

            scale = min(1.0, max_side / max(self.height, self.width))
            small = self.rgb
            if scale < 1.0:
                size = (max(1, round(self.width * scale)), max(1, round(self.height * scale)))
                small = cv2.resize(self.rgb, size, interpolation=cv2.INTER_AREA)
            self._cache[key] = small
        return self._cache[key]

    def memo(self, key: str, compute: Callable[[], T]) -> T:
        """A value derived from the pixels, computed once per photo and shared by every check that asks for it
        (e.g. the damage detector's boxes, wanted by two checks)."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def thumbnail_jpeg(self, max_side: int = 640, quality: int = 80) -> bytes:
        """A small JPEG for reports and evidence images (area-averaged: fast and alias-free)."""
        import cv2

        scale = min(1.0, max_side / max(self.height, self.width))
        small = self.rgb
        if scale < 1.0:
            size = (max(1, round(self.width * scale)), max(1, round(self.height * scale)))
            small = cv2.resize(self.rgb, size, interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise RuntimeError("thumbnail encoding failed")
        return buf.tobytes()


def _to_rgb8(img: Image.Image) -> Image.Image:
    """Normalise any Pillow mode (CMYK, 16-bit grey, palette, alpha) to 8-bit RGB."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.uint32 if img.mode == "I" else np.uint16)
        peak = 65535 if img.mode != "I" else max(int(arr.max()), 1)
        arr8 = (arr.astype(np.float32) * (255.0 / peak)).round().clip(0, 255).astype(np.uint8)
        return Image.fromarray(arr8, mode="L").convert("RGB")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode != "RGB":
        return img.convert("RGB")  # CMYK (Pillow applies the inversion Adobe JPEGs need), L, P, YCbCr, F
    return img


def _jpeg_is_complete(data: bytes) -> bool:
    """True when an EOI marker follows the last start-of-scan. Entropy-coded data byte-stuffs 0xFF, so a
    truncated file has no FFD9 after its last SOS; trailers some phones append after EOI are fine."""
    last_sos = data.rfind(b"\xff\xda")
    return last_sos >= 0 and data.find(b"\xff\xd9", last_sos) > 0


# EXIF orientation -> operations on the stored pixels to make them upright
_ORIENT_OPS = {2: ("flip",), 3: ("rot180",), 4: ("flipud",), 5: ("transpose",), 6: ("rot270",),
               7: ("transverse",), 8: ("rot90",)}


def _decode_jpeg_fast(data: bytes, orientation: int) -> np.ndarray:
    """libjpeg-turbo through OpenCV straight into one numpy array (Pillow's array export copies through
    an encoder and costs ~2x the decode itself on 12 MP photos)."""
    import cv2

    if not _jpeg_is_complete(data):
        raise UnreadableImageError("corrupt", "the JPEG data is truncated (no end-of-image after the last scan)")
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if bgr is None:
        raise UnreadableImageError("corrupt", "the JPEG data is damaged")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB, dst=bgr)
    op = _ORIENT_OPS.get(orientation, ())
    if op:
        kind = op[0]
        if kind == "flip":
            rgb = rgb[:, ::-1]
        elif kind == "flipud":
            rgb = rgb[::-1]
        elif kind == "rot180":
            rgb = rgb[::-1, ::-1]
        elif kind == "rot90":  # EXIF 8: rotate 90 degrees clockwise to view -> counter-clockwise pixels
            rgb = np.rot90(rgb, 1)
        elif kind == "rot270":  # EXIF 6
            rgb = np.rot90(rgb, -1)
        elif kind == "transpose":
            rgb = rgb.transpose(1, 0, 2)
        elif kind == "transverse":
            rgb = np.rot90(rgb, 2).transpose(1, 0, 2)
        rgb = np.ascontiguousarray(rgb)
    return rgb


def decode_photo(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedPhoto:
    """Decode photo bytes into a :class:`DecodedPhoto`.

    Args:
        data: the original file bytes (never modified).
        max_pixels: refuse images whose declared width x height exceeds this (checked from the header,
            before any pixel is decoded, so a decompression bomb costs nothing).

    Raises:
        UnreadableImageError: empty, truncated, non-image or unsupported input.
        ImageTooLargeError: dimensions over ``max_pixels``.
    """
    if not data:
        raise UnreadableImageError("empty", "the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:
        raise UnreadableImageError("not_an_image", "the bytes are not a supported image format") from exc
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError("too_many_pixels", str(exc)) from exc
    except Image.DecompressionBombWarning as exc:
        raise ImageTooLargeError("too_many_pixels", str(exc)) from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise UnreadableImageError("corrupt", f"cannot read the image header: {exc}") from exc

    fmt = (img.format or "").upper()
    if fmt not in ALLOWED_FORMATS:
        raise UnreadableImageError("unsupported_format", f"format {fmt or 'unknown'} is not accepted")
    width, height = img.size
    if width <= 0 or height <= 0:
        raise UnreadableImageError("corrupt", "the image has no pixels")
    if width * height > max_pixels:
        raise ImageTooLargeError(
            "too_many_pixels", f"{width}x{height} = {width * height} pixels exceeds the limit {max_pixels}"
        )

    metadata = extract_metadata(img)
    source_info = read_source_info(data, fmt, img.info.get("exif"))  # header only, never raises
    source_mode = img.mode
    try:
        orientation = int(img.getexif().get(0x0112, 1) or 1)
    except Exception:  # noqa: BLE001 - malformed EXIF raises anything: orientation unknown, keep pixels as stored
        orientation = 1
        metadata.problems.append("orientation tag unreadable")
    if fmt == "JPEG" and source_mode in ("RGB", "L"):
        img.close()
        rgb = _decode_jpeg_fast(data, orientation)
        return DecodedPhoto(rgb=rgb, format=fmt, metadata=metadata, orientation=orientation, mode=source_mode,
                            source_info=source_info)
    try:
        img.load()  # raises on truncated data (Pillow's LOAD_TRUNCATED_IMAGES stays False)
        if orientation != 1:
            try:
                img = ImageOps.exif_transpose(img)
            except Exception:  # noqa: BLE001 - as above: keep the pixels, record the problem
                metadata.problems.append("orientation tag could not be applied")
        img = _to_rgb8(img)
        rgb = np.asarray(img, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError) as exc:
        raise UnreadableImageError("corrupt", f"the image data is damaged or truncated: {exc}") from exc
    finally:
        img.close()
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise UnreadableImageError("corrupt", f"unexpected pixel layout {rgb.shape}")
    return DecodedPhoto(rgb=rgb, format=fmt, metadata=metadata, orientation=orientation, mode=source_mode,
                        source_info=source_info)


def sniff_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[str, int, int]:
    """Cheap header check at upload time (no pixel decoding): format and dimensions.

    Raises the same errors as :func:`decode_photo` for empty, non-image, unsupported or oversized input.
    Truncated pixel data is only found by the full decode in the worker.
    """
    if not data:
        raise UnreadableImageError("empty", "the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                fmt = (img.format or "").upper()
                width, height = img.size
    except UnidentifiedImageError as exc:
        raise UnreadableImageError("not_an_image", "the bytes are not a supported image format") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError("too_many_pixels", str(exc)) from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise UnreadableImageError("corrupt", f"cannot read the image header: {exc}") from exc
    if fmt not in ALLOWED_FORMATS:
        raise UnreadableImageError("unsupported_format", f"format {fmt or 'unknown'} is not accepted")
    if width * height > max_pixels:
        raise ImageTooLargeError(
            "too_many_pixels", f"{width}x{height} = {width * height} pixels exceeds the limit {max_pixels}")
    return fmt, width, height
