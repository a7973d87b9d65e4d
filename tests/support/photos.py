"""Test photos made on the fly: distinct pictures (seeded) with optional phone-like EXIF."""

from __future__ import annotations

import io
from datetime import datetime

import numpy as np
from PIL import Image

from claimlens.datasets.demo import with_exif


def picture(seed: int | str, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A smooth random colour field plus shapes: distinct per seed, photo-like enough for JPEG."""
    rng = np.random.default_rng(abs(hash(str(seed))) % (2**32))
    small = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
    img = np.asarray(Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)).copy()
    for _ in range(12):
        x, y = rng.integers(0, size[0] - 40), rng.integers(0, size[1] - 40)
        w, h = rng.integers(10, 120), rng.integers(10, 120)
        img[y:y + h, x:x + w] = rng.integers(0, 255, 3)
    return Image.fromarray(img)


def jpeg(seed: int | str, *, when: datetime | None = None, make: str = "HUAWEI", model: str = "P40",
         gps: tuple[float, float] | None = None, size: tuple[int, int] = (640, 480), quality: int = 90) -> bytes:
    img = picture(seed, size)
    if when is not None:
        return with_exif(img, when, make=make, model=model, gps=gps, quality=quality)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
