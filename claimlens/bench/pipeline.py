"""``claimlens bench pipeline [DIR]``: per-photo pipeline overhead on 12 MP JPEGs (decode + store + checks).

Builds ``--opt n=8`` distinct 12 MP (4000x3000) JPEGs with phone-like EXIF from photos in DIR (default:
../shared/data/car_damage_roboflow, upscaled) and runs them through the embedded runtime (SQLite + local
store in a temporary folder): the same ``store_photo`` + ``analyse_photo`` the workers run. Reports the
median time of each stage and the peak RSS of the process.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from PIL import Image

from claimlens.bench.common import peak_rss_mb
from claimlens.core.claims import store_photo, submit_claim, upsert_claim
from claimlens.core.db import session_scope
from claimlens.core.pipeline import analyse_photo, assess_claim
from claimlens.core.schemas import ClaimFields, PhotoUploadMeta, Stage
from claimlens.datasets.demo import SHARED_DAMAGE, with_exif
from claimlens.vision.decode import decode_photo


def _photos(src: Path, n: int) -> list[bytes]:
    files = sorted(src.rglob("*.jpg"))[:n]
    if len(files) < n:
        raise SystemExit(f"need {n} JPEGs under {src}")
    when = datetime(2026, 5, 1, 10, 0, tzinfo=timezone(timedelta(hours=8)))
    return [with_exif(Image.open(f).convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC),
                      when + timedelta(minutes=i), quality=90) for i, f in enumerate(files)]


def run(dataset_dir: Path | None, *, suite: bool, options: dict[str, str]) -> dict[str, Any]:
    from claimlens.core.scan import embedded_runtime

    n = int(options.get("n", 8))
    src = dataset_dir or SHARED_DAMAGE
    t_start = time.perf_counter()
    photos = _photos(src, n)
    with tempfile.TemporaryDirectory() as tmp:
        rt = embedded_runtime(Path(tmp))
        with session_scope(rt.db_url) as s:
            upsert_claim(s, ClaimFields(claim_id="BENCH"), owner="bench")
        t_decode, t_store, t_analyse, per_check = [], [], [], {c.name: [] for c in rt.checks}
        ids = []
        for data in photos:
            t0 = time.perf_counter()
            decoded = decode_photo(data)
            t_decode.append(time.perf_counter() - t0)
            for check in rt.checks:  # each check alone on the decoded photo
                t0 = time.perf_counter()
                check.analyse_photo(decoded, _info())
                per_check[check.name].append(time.perf_counter() - t0)
            del decoded
            t0 = time.perf_counter()
            ids.append(store_photo(rt, "BENCH", data, filename="p.jpg", content_type="image/jpeg",
                                   meta=PhotoUploadMeta(stage=Stage.SURVEY)).photo_id)
            t_store.append(time.perf_counter() - t0)
        revision, _ = submit_claim(rt, "BENCH")
        for pid in ids:  # the full per-photo task: fetch, decode once, all checks, thumbnail, writes
            t0 = time.perf_counter()
            analyse_photo(rt, pid)
            t_analyse.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        assess_claim(rt, "BENCH", revision)
        t_assess = time.perf_counter() - t0

    def ms(xs: list[float]) -> float:
        return round(1000 * statistics.median(xs), 1)

    return {"bench": "pipeline", "dataset": str(src), "n_images": n,
            "seconds": round(time.perf_counter() - t_start, 1),
            "metrics": {"photo_megapixels": 12.0, "jpeg_bytes_median": int(statistics.median(map(len, photos))),
                        "decode_ms": ms(t_decode), "store_upload_ms": ms(t_store),
                        "analyse_photo_task_ms": ms(t_analyse),
                        "check_ms": {k: ms(v) for k, v in per_check.items()},
                        "assess_claim_ms": round(1000 * t_assess, 1),
                        "peak_rss_mb": peak_rss_mb()},
            "peers": {}}


def _info():  # type: ignore[no-untyped-def]
    from claimlens.checks.base import PhotoInfo

    return PhotoInfo(photo_id="bench", claim_id="BENCH", stage="survey", role=None, sha256="0" * 64,
                     size_bytes=0, filename=None, uploaded_at=None)
