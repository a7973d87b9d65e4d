"""``claimlens bench upload [DIR]``: API upload throughput and end-to-end analysis throughput on the real
stack. Needs the services running (``make services``); starts the API (uvicorn, ``--opt api_workers=2``)
and one Celery worker (``--opt worker_concurrency=2``) itself, in a bucket of its own.

Uploads ``--opt n=40`` distinct 12 MP JPEGs (real photos from DIR upscaled, with EXIF) with
``--opt concurrency=8`` client threads through multipart ``POST /v1/claims/{id}/photos``, then submits the
claim and waits for the final report.
"""

from __future__ import annotations

import os
import resource
import secrets
import shlex
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from claimlens.bench.pipeline import _photos
from claimlens.datasets.demo import SHARED_DAMAGE

REPO = Path(__file__).resolve().parents[2]


def _services_env() -> dict[str, str]:
    out = subprocess.run([str(REPO / "scripts" / "services"), "env"], check=True, capture_output=True,
                         text=True).stdout
    return {k: shlex.split(v)[0] for k, _, v in (line.removeprefix("export ").partition("=")
                                                for line in out.splitlines() if line.startswith("export "))}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(dataset_dir: Path | None, *, suite: bool, options: dict[str, str]) -> dict[str, Any]:
    from claimlens.core.migrate import upgrade

    n, conc = int(options.get("n", 40)), int(options.get("concurrency", 8))
    api_workers, worker_conc = options.get("api_workers", "2"), options.get("worker_concurrency", "2")
    photos = _photos(dataset_dir or SHARED_DAMAGE, n)
    key = "clk_bench_" + secrets.token_hex(8)
    env = {**os.environ, **_services_env(), "CLAIMLENS_BUCKET": f"bench-{secrets.token_hex(3)}",
           "CLAIMLENS_BOOTSTRAP_ADMIN_KEY": key}
    upgrade(env["CLAIMLENS_DATABASE_URL"])
    port = _port()
    procs = [
        subprocess.Popen([sys.executable, "-m", "uvicorn", "claimlens.api.main:app", "--port", str(port),
                          "--host", "127.0.0.1", "--workers", api_workers, "--log-level", "warning"],
                         env=env, cwd=REPO, start_new_session=True),
        subprocess.Popen([sys.executable, "-m", "celery", "-A", "claimlens.workers.celery_app", "worker", "-Q",
                          "cpu,io", "-c", worker_conc, "--loglevel", "WARNING", "--without-gossip",
                          "--without-mingle"], env=env, cwd=REPO, start_new_session=True),
    ]
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        claim_id = f"BENCH-{secrets.token_hex(3)}"
        headers = {"X-API-Key": key}
        httpx.put(f"{base}/v1/claims/{claim_id}", json={}, headers=headers).raise_for_status()
        latencies: list[float] = []

        def send(i_data: tuple[int, bytes]) -> None:
            i, data = i_data
            t0 = time.perf_counter()
            with httpx.Client(timeout=120) as c:
                r = c.post(f"{base}/v1/claims/{claim_id}/photos", headers=headers, data={"stage": "survey"},
                           files={"file": (f"{i}.jpg", data, "image/jpeg")})
            r.raise_for_status()
            latencies.append(time.perf_counter() - t0)

        t_up = time.perf_counter()
        with ThreadPoolExecutor(conc) as pool:
            list(pool.map(send, enumerate(photos)))
        upload_s = time.perf_counter() - t_up
        httpx.post(f"{base}/v1/claims/{claim_id}/submit", headers=headers).raise_for_status()
        while True:
            st = httpx.get(f"{base}/v1/claims/{claim_id}/status", headers=headers).json()
            if st["final"]:
                break
            time.sleep(0.2)
        total_s = time.perf_counter() - t_up
    finally:
        for p in procs:
            os.killpg(p.pid, 15)
            p.wait(timeout=30)
    latencies.sort()
    mb = sum(map(len, photos)) / 1e6
    return {"bench": "upload", "dataset": str(dataset_dir or SHARED_DAMAGE), "n_images": n,
            "seconds": round(total_s, 1),
            "metrics": {"api_workers": int(api_workers), "worker_concurrency": int(worker_conc),
                        "client_concurrency": conc, "photo_megapixels": 12.0, "upload_mb": round(mb, 1),
                        "upload_photos_per_s": round(n / upload_s, 2), "upload_mb_per_s": round(mb / upload_s, 2),
                        "upload_latency_p50_ms": round(1000 * latencies[len(latencies) // 2]),
                        "upload_latency_p95_ms": round(1000 * latencies[int(0.95 * (len(latencies) - 1))]),
                        "upload_to_final_report_s": round(total_s, 1),
                        "analysed_photos_per_s": round(n / total_s, 2),
                        "bench_client_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)},
            "peers": {}}
