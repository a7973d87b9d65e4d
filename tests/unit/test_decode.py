"""The safe decoder (claimlens.vision.decode.decode_photo): formats, orientation, modes, hostile input."""

from __future__ import annotations

import io
import struct
import time
import tracemalloc
import zlib

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from claimlens.vision.decode import decode_photo
from claimlens.vision.errors import ImageTooLargeError, UnreadableImageError

RED, BLUE = (255, 0, 0), (0, 0, 255)


def save(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def marked(width: int = 40, height: int = 20) -> Image.Image:
    """Blue image with a red 8x8 block in the stored top-left corner."""
    img = Image.new("RGB", (width, height), BLUE)
    img.paste(RED, (0, 0, 8, 8))
    return img


def is_red(px: np.ndarray) -> bool:
    return bool(px[0] > 200 and px[1] < 60 and px[2] < 60)


def exif_with_orientation(value: int) -> Image.Exif:
    ex = Image.Exif()
    ex[0x0112] = value
    ex[0x010F] = "Apple"
    ex.get_ifd(0x8769)[0x9003] = "2024:05:01 10:00:00"
    return ex


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


# ------------------------------------------------------------------------------------------- orientation


@pytest.mark.parametrize("orientation, corner", [(6, (0, -1)), (8, (-1, 0)), (3, (-1, -1)), (1, (0, 0))])
def test_jpeg_exif_orientation_is_applied(orientation: int, corner: tuple[int, int]) -> None:
    data = save(marked(), "JPEG", quality=95, exif=exif_with_orientation(orientation))
    photo = decode_photo(data)
    rotated = orientation in (6, 8)
    assert photo.rgb.shape == ((40, 20, 3) if rotated else (20, 40, 3))
    assert (photo.width, photo.height) == ((20, 40) if rotated else (40, 20))
    assert photo.orientation == orientation
    # the red block was stored top-left: 6 (rotate 90 CW) puts it top-right, 8 (90 CCW) bottom-left,
    # 3 (180) bottom-right; the other three corners stay blue
    for r, c in ((0, 0), (0, -1), (-1, 0), (-1, -1)):
        assert is_red(photo.rgb[r, c]) is ((r, c) == corner), ((r, c), photo.rgb[r, c])
    assert photo.metadata.make == "Apple"


# --------------------------------------------------------------------------------------------- modes


def test_png_rgba_is_composited_on_white() -> None:
    img = Image.new("RGBA", (10, 6), (255, 0, 0, 255))
    img.paste((0, 0, 0, 0), (5, 0, 10, 6))
    photo = decode_photo(save(img, "PNG"))
    assert photo.mode == "RGBA" and photo.format == "PNG"
    assert photo.rgb.shape == (6, 10, 3) and photo.rgb.dtype == np.uint8
    assert tuple(photo.rgb[0, 0]) == RED
    assert tuple(photo.rgb[0, 9]) == (255, 255, 255)


def test_png_16_bit_grey() -> None:
    arr = np.zeros((4, 8), np.uint16)
    arr[:, 4:] = 65535
    arr[:, 2] = 32768
    img = Image.fromarray(arr)
    assert img.mode.startswith("I;16")
    photo = decode_photo(save(img, "PNG"))
    assert photo.mode.startswith("I;16")
    assert photo.rgb.shape == (4, 8, 3)
    assert tuple(photo.rgb[0, 0]) == (0, 0, 0)
    assert tuple(photo.rgb[0, 7]) == (255, 255, 255)
    assert photo.rgb[0, 2, 0] == 128


def test_cmyk_jpeg() -> None:
    img = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # pure red in CMYK
    photo = decode_photo(save(img, "JPEG", quality=95))
    assert photo.mode == "CMYK"
    assert photo.rgb.shape == (16, 16, 3)
    assert is_red(photo.rgb[8, 8]), photo.rgb[8, 8]


def test_webp_lossless_keeps_pixels() -> None:
    img = marked()
    photo = decode_photo(save(img, "WEBP", lossless=True))
    assert photo.format == "WEBP"
    assert np.array_equal(photo.rgb, np.asarray(img))


def test_heic() -> None:
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    try:
        data = save(Image.new("RGB", (64, 32), RED), "HEIF", quality=90, exif=exif_with_orientation(1))
    except (KeyError, OSError, ValueError) as exc:  # pragma: no cover - depends on the libheif build
        pytest.skip(f"HEIF encoding unavailable: {exc}")
    photo = decode_photo(data)
    assert photo.format == "HEIF"
    assert photo.rgb.shape == (32, 64, 3)
    assert is_red(photo.rgb[16, 32]), photo.rgb[16, 32]
    assert photo.metadata.has_exif and photo.metadata.make == "Apple"


# ------------------------------------------------------------------------------------------ rejections


def test_gif_is_unsupported() -> None:
    with pytest.raises(UnreadableImageError) as err:
        decode_photo(save(Image.new("P", (4, 4)), "GIF"))
    assert err.value.reason == "unsupported_format"
    assert not isinstance(err.value, ImageTooLargeError)


def test_empty_bytes() -> None:
    with pytest.raises(UnreadableImageError) as err:
        decode_photo(b"")
    assert err.value.reason == "empty"


def test_truncated_jpeg() -> None:
    rng = np.random.default_rng(7)
    noisy = Image.fromarray(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8))
    data = save(noisy, "JPEG", quality=90)
    with pytest.raises(UnreadableImageError) as err:
        decode_photo(data[: len(data) // 2])
    assert err.value.reason == "corrupt"


def test_random_bytes_named_jpg() -> None:
    data = b"\xff\xd8" + bytes(np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8))
    with pytest.raises(UnreadableImageError) as err:
        decode_photo(data)
    assert err.value.reason in ("not_an_image", "corrupt")
    with pytest.raises(UnreadableImageError) as err:
        decode_photo(bytes(np.random.default_rng(4).integers(0, 256, 4096, dtype=np.uint8)))
    assert err.value.reason == "not_an_image"


def bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height RGB pixels (a handful of real rows)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (1 + 3 * min(width, 1024)) * 4, 9)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", rows) + png_chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_quickly_and_cheaply() -> None:
    data = bomb_png(100_000, 100_000)
    assert len(data) < 1000
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(ImageTooLargeError) as err:
            decode_photo(data)
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert time.perf_counter() - started < 1.0
    assert peak < 5_000_000
    assert err.value.reason == "too_many_pixels"


def test_own_pixel_limit() -> None:
    data = bomb_png(2000, 1000)  # 2 MP: under Pillow's own bomb limit, over ours
    with pytest.raises(ImageTooLargeError) as err:
        decode_photo(data, max_pixels=1_000_000)
    assert "2000x1000" in str(err.value)


# ----------------------------------------------------------------------------------------- metadata


def test_malformed_exif_still_decodes_with_problems() -> None:
    clean = save(marked(), "JPEG", quality=95)
    payload = b"Exif\x00\x00" + b"MM\x00\x2a\x00\x00\x00\x08\xff\xff" + b"\x9c" * 64
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    with pytest.warns(UserWarning):  # Pillow warns about the corrupt block while opening
        photo = decode_photo(clean[:2] + app1 + clean[2:])
    assert photo.rgb.shape == (20, 40, 3)
    assert photo.orientation == 1
    assert photo.metadata.problems
    assert photo.metadata.capture_time is None
    assert photo.pixel_sha256 == decode_photo(clean).pixel_sha256


def test_pixel_sha256_ignores_container_and_metadata() -> None:
    img = marked()
    plain = save(img, "PNG")
    text = PngImagePlugin.PngInfo()
    text.add_text("Comment", "re-saved by another tool")
    tagged = save(img, "PNG", pnginfo=text, exif=exif_with_orientation(1), compress_level=1)
    assert plain != tagged
    a, b = decode_photo(plain), decode_photo(tagged)
    assert a.pixel_sha256 == b.pixel_sha256
    assert b.metadata.make == "Apple" and not a.metadata.has_exif
    assert decode_photo(save(img, "WEBP", lossless=True)).pixel_sha256 == a.pixel_sha256
    assert decode_photo(save(img, "BMP")).pixel_sha256 == a.pixel_sha256
    # and different pixels give a different hash
    other = img.copy()
    other.putpixel((39, 19), (0, 0, 254))
    assert decode_photo(save(other, "PNG")).pixel_sha256 != a.pixel_sha256
