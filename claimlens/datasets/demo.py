"""Builds the ``make demo`` claim folders from real photos in ../shared/data (or synthetic pictures when
that folder is missing): three claims, one photo reused byte-for-byte from an earlier claim, one re-saved
copy (same picture, new container), and one photo whose EXIF capture time precedes the policy start.

Real photos (car_damage_roboflow, CC BY 4.0) carry no EXIF, so the demo writes capture times into copies
the way a phone camera would (DateTimeOriginal + OffsetTimeOriginal, Make/Model, GPS).
"""

from __future__ import annotations

import io
import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
from PIL import Image

from claimlens.vision.decode import decode_photo

SHARED_DAMAGE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "car_damage_roboflow"
CST = timezone(timedelta(hours=8))


def _source_images(n: int, shared: Path) -> list[Image.Image]:
    files = sorted((shared / "valid" / "images").glob("*.jpg"))[:n] if shared.is_dir() else []
    if len(files) >= n:
        return [Image.open(f).convert("RGB") for f in files]
    rng = np.random.default_rng(0)  # synthetic fallback: smooth random colour fields
    out = []
    for _ in range(n):
        small = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
        out.append(Image.fromarray(small).resize((640, 480), Image.Resampling.BICUBIC))
    return out


def with_exif(img: Image.Image, when: datetime, *, make: str = "HUAWEI", model: str = "P40",
               gps: tuple[float, float] | None = None, quality: int = 92, software: str | None = None) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = make
    exif[0x0110] = model
    if software:
        exif[0x0131] = software
    ifd = exif.get_ifd(0x8769)
    ifd[0x9003] = when.strftime("%Y:%m:%d %H:%M:%S")
    ifd[0x9011] = when.strftime("%z")[:3] + ":" + when.strftime("%z")[3:]
    if gps:
        gps_ifd = exif.get_ifd(0x8825)
        for ref_tag, val_tag, value, pos, neg in ((1, 2, gps[0], "N", "S"), (3, 4, gps[1], "E", "W")):
            v = abs(value)
            deg, minutes = int(v), int((v - int(v)) * 60)
            seconds = round(((v - deg) * 60 - minutes) * 60, 2)
            gps_ifd[ref_tag] = pos if value >= 0 else neg
            gps_ifd[val_tag] = (float(deg), float(minutes), float(seconds))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality, exif=exif)
    return buf.getvalue()


def build_demo(out: Path, shared: Path = SHARED_DAMAGE) -> Path:
    """Write the demo claim folders into ``out`` (replacing it) and return it."""
    if out.exists():
        shutil.rmtree(out)
    imgs = _source_images(9, shared)
    loss_a = datetime(2026, 3, 2, 9, 30, tzinfo=CST)
    loss_b = datetime(2026, 9, 14, 18, 5, tzinfo=CST)
    loss_c = datetime(2026, 10, 20, 8, 40, tzinfo=CST)
    shanghai = (31.2304, 121.4737)
    claims = {
        "CLM-2026-0001": {
            "fields": {"policy_id": "POL-7781", "plate": "沪A12345", "make": "Volkswagen", "model": "Lavida",
                       "policy_start": "2025-12-01T00:00:00+08:00", "policy_end": "2026-11-30T23:59:59+08:00",
                       "loss_time": loss_a.isoformat(), "report_time": (loss_a + timedelta(hours=2)).isoformat(),
                       "loss_lat": shanghai[0], "loss_lon": shanghai[1], "loss_type": "collision",
                       "description": "Rear-ended at a traffic light."},
            "photos": [(f"survey/a{i}.jpg", with_exif(imgs[i], loss_a + timedelta(hours=3, minutes=i),
                                                       gps=shanghai)) for i in range(3)],
        },
        "CLM-2026-0002": {  # reuses claim 1's photo a0 byte-for-byte, and a0's picture re-saved as PNG
            "fields": {"policy_id": "POL-9120", "plate": "沪B67890", "make": "Toyota", "model": "Corolla",
                       "policy_start": "2026-01-01T00:00:00+08:00", "policy_end": "2026-12-31T23:59:59+08:00",
                       "loss_time": loss_b.isoformat(), "report_time": (loss_b + timedelta(hours=1)).isoformat(),
                       "loss_lat": shanghai[0], "loss_lon": shanghai[1], "loss_type": "collision"},
            "photos": [(f"survey/b{i}.jpg", with_exif(imgs[3 + i], loss_b + timedelta(hours=2, minutes=i),
                                                       gps=shanghai)) for i in range(2)],
        },
        "CLM-2026-0003": {  # back-dated: policy bought after the damage was photographed
            "fields": {"policy_id": "POL-9555", "plate": "浙A55555", "make": "Honda", "model": "Civic",
                       "policy_start": "2026-10-15T00:00:00+08:00", "policy_end": "2027-10-14T23:59:59+08:00",
                       "loss_time": loss_c.isoformat(), "report_time": (loss_c + timedelta(hours=3)).isoformat(),
                       "loss_lat": 30.2741, "loss_lon": 120.1551, "loss_type": "scratch"},
            "photos": [("survey/c0.jpg", with_exif(imgs[6], datetime(2026, 10, 2, 16, 0, tzinfo=CST),
                                                     gps=(30.2741, 120.1551))),
                       ("survey/c1.jpg", with_exif(imgs[7], loss_c + timedelta(hours=4),
                                                     gps=(30.2741, 120.1551)))],
        },
    }
    reused = claims["CLM-2026-0001"]["photos"][0][1]
    claims["CLM-2026-0002"]["photos"].append(("survey/b_reused.jpg", reused))
    png = io.BytesIO()
    Image.fromarray(decode_photo(reused).rgb).save(png, format="PNG")  # same pixels, new container
    claims["CLM-2026-0002"]["photos"].append(("survey/b_resaved.png", png.getvalue()))
    # claim 1's photo a1, mirrored, cropped to 70 % and re-encoded: only the near-duplicate check sees it
    src = imgs[1]
    w, h = src.size
    edited = src.transpose(Image.Transpose.FLIP_LEFT_RIGHT).crop((int(w * .15), int(h * .15), int(w * .85), int(h * .85)))
    claims["CLM-2026-0002"]["photos"].append(
        ("survey/b_edited.jpg", with_exif(edited.resize((w, h)), loss_b + timedelta(hours=2, minutes=30),
                                          gps=shanghai, quality=70)))
    for claim_id, spec in claims.items():
        folder = out / claim_id
        for rel, data in spec["photos"]:
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(data)
        (folder / "claim.json").write_text(json.dumps({"claim_id": claim_id, **spec["fields"]},
                                                      ensure_ascii=False, indent=2), encoding="utf-8")
    return out


if __name__ == "__main__":
    import sys

    print(build_demo(Path(sys.argv[1] if len(sys.argv) > 1 else "var/demo/claims")))
