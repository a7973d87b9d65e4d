"""The running stack for end-to-end tests: the API over HTTP (uvicorn) and Celery worker processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, TEST_LANE

ADMIN_KEY = "clk_test_admin_" + os.urandom(8).hex()
WEBHOOK_SECRET = "whsec_" + os.urandom(8).hex()
METRICS_TOKEN = "mtok_" + os.urandom(8).hex()
BROKER_DB = 2 + 2 * TEST_LANE  # Redis has 16 databases: lanes 0-6


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stack:
    env: dict[str, str]
    base_url: str
    log_dir: Path
    workers: list[subprocess.Popen] = field(default_factory=list)
    api: subprocess.Popen | None = None
    # worker pid -> the port of its metrics exporter
    worker_metrics_ports: dict[int, int] = field(default_factory=dict)

    def client(self, key: str = ADMIN_KEY) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers={"X-API-Key": key}, timeout=30)

    def start_worker(self, name: str) -> subprocess.Popen:
        log = open(self.log_dir / f"worker-{name}-{len(self.workers)}.log", "wb")  # noqa: SIM115 - the worker's lifetime
        metrics_port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "claimlens.workers.celery_app", "worker", "-Q", "cpu,io",
             "--concurrency", "2", "--pool", "prefork", "-n", f"{name}@%h", "--loglevel", "INFO",
             "--without-gossip", "--without-mingle"],
            cwd=REPO, env={**self.env, "CLAIMLENS_METRICS__WORKER_PORT": str(metrics_port)},
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.workers.append(proc)
        self.worker_metrics_ports[proc.pid] = metrics_port
        return proc

    def start_api(self, name: str, env: dict[str, str] | None = None, workers: int = 2) -> tuple[subprocess.Popen, str]:
        """Another API process on a free port (the stack's own is ``self.api``); waits until it answers."""
        port = free_port()
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115 - open for the API process's lifetime
        proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "claimlens.api.main:app", "--host", "127.0.0.1",
                                 "--port", str(port), "--workers", str(workers)],
                                cwd=REPO, env=env or self.env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base_url}/v1/health/live", timeout=2).status_code == 200:
                    return proc, base_url
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"API {name} did not start: {(self.log_dir / f'{name}.log').read_text()[-3000:]}")
            time.sleep(0.3)

    def stop(self, proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(proc.pid, signal.SIGKILL)

    def kill_worker(self, proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
        """Kill the worker's whole process group (main process and pool children) at once."""
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)

    def wait_log(self, text: str, timeout: float = 60) -> str:
        """The first worker log line containing ``text`` (waits for it; the workers log what they refuse)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for path in sorted(self.log_dir.glob("worker-*.log")):
                for line in path.read_text(errors="replace").splitlines():
                    if text in line:
                        return line
            time.sleep(0.3)
        raise AssertionError(f"no worker log line with {text!r} after {timeout}s; logs in {self.log_dir}")

    def wait_final(self, claim_id: str, key: str = ADMIN_KEY, timeout: float = 180) -> dict:
        deadline = time.monotonic() + timeout
        with self.client(key) as c:
            while time.monotonic() < deadline:
                r = c.get(f"/v1/claims/{claim_id}/status")
                if r.status_code == 200 and r.json()["final"]:
                    return r.json()
                time.sleep(0.5)
        raise AssertionError(f"claim {claim_id} not final after {timeout}s; logs in {self.log_dir}")


@pytest.fixture(scope="session")
def stack(services: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    import redis

    env = {**os.environ, **services,
           "CLAIMLENS_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
           "CLAIMLENS_WEBHOOK_SECRET": WEBHOOK_SECRET,
           "CLAIMLENS_METRICS__TOKEN": METRICS_TOKEN,
           # the test receivers listen on loopback: allowed by name, everything else internal stays refused
           "CLAIMLENS_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
           # test broker DBs are flushed per session; a short visibility timeout so the kill -9 test sees
           # redelivery in seconds (production keeps it above the longest task: see docs)
           "CLAIMLENS_BROKER_URL": f"redis://127.0.0.1:6390/{BROKER_DB}",
           "CLAIMLENS_RESULT_BACKEND": f"redis://127.0.0.1:6390/{BROKER_DB + 1}",
           "CLAIMLENS_VISIBILITY_TIMEOUT_SECONDS": "15",
           "CLAIMLENS_TASK_TIME_LIMIT_SECONDS": "120",
           "CLAIMLENS_MAX_UPLOAD_BYTES": str(4 * 1024 * 1024),
           "CLAIMLENS_MAX_PIXELS": "40000000",
           # the suite polls and fuzzes faster than any real client: its limits are far above the defaults
           # (the rate-limit tests start an API of their own with the defaults)
           **{f"CLAIMLENS_RATE_LIMIT__{group}__{scope}": "100000/second"
              for group in ("UPLOADS", "READS", "WRITES", "ADMIN") for scope in ("PER_KEY", "PER_ADDRESS")},
           "PYTHONPATH": str(REPO)}
    for db in (BROKER_DB, BROKER_DB + 1):
        redis.Redis(host="127.0.0.1", port=6390, db=db).flushdb()
    log_dir = tmp_path_factory.mktemp("stack-logs")
    port = free_port()
    st = Stack(env=env, base_url=f"http://127.0.0.1:{port}", log_dir=log_dir)
    api_log = open(log_dir / "api.log", "wb")  # noqa: SIM115 - open for the API process's lifetime
    st.api = subprocess.Popen([sys.executable, "-m", "uvicorn", "claimlens.api.main:app", "--host", "127.0.0.1",
                               "--port", str(port), "--workers", "2"],
                              cwd=REPO, env=env, stdout=api_log, stderr=subprocess.STDOUT, start_new_session=True)
    st.start_worker("w1")
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{st.base_url}/v1/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or st.api.poll() is not None:
            raise RuntimeError(f"API did not start: {(log_dir / 'api.log').read_text()[-3000:]}")
        time.sleep(0.3)
    yield st
    for proc in [*st.workers, st.api]:
        if proc and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(proc.pid, signal.SIGKILL)
