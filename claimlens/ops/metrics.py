"""Prometheus metrics, all named ``claimlens_*``, in prometheus-client's multiprocess mode.

Why multiprocess mode: the API runs as several uvicorn worker processes and the Celery worker as a prefork
pool; each process writes its samples to files in one directory and a scrape sums them, so a counter is
the same whichever process answers. Where the numbers are read:

* API processes: ``GET /metrics`` on the API (token or admin key, :mod:`claimlens.api.observability`).
* Celery workers: an exporter in the worker's main process (``CLAIMLENS_METRICS__WORKER_PORT``, loopback by
  default) that sums its pool children (:mod:`claimlens.workers.observability`).

The directory is ``PROMETHEUS_MULTIPROC_DIR`` when set (production: one empty directory per service
instance, emptied at its start). Otherwise each process family gets its own under the temp dir, keyed by
the process that owns the family: uvicorn's supervisor for ``--workers N`` (children are spawned through
multiprocessing), the Celery main process for its forked pool. This module must be imported before
anything else imports prometheus_client, because the library picks its mode at import.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path


def _multiprocess_dir() -> Path:
    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        return path
    spawned = multiprocessing.parent_process() is not None
    owner = os.getppid() if spawned else os.getpid()
    path = Path(tempfile.gettempdir()) / f"claimlens-prometheus-{owner}"
    if not spawned and path.exists():
        shutil.rmtree(path, ignore_errors=True)  # a reused pid: the old family's samples are not ours
    path.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)  # inherited by forked and spawned children
    return path


MULTIPROC_DIR = _multiprocess_dir()

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_TASK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900)

HTTP_REQUESTS = Counter("claimlens_http_requests_total", "API requests by route template and status",
                        ["method", "route", "status"])
HTTP_LATENCY = Histogram("claimlens_http_request_duration_seconds", "API request latency",
                         ["method", "route", "status"], buckets=_LATENCY_BUCKETS)
RATE_LIMITED = Counter("claimlens_rate_limited_total", "requests answered 429, by route group and scope",
                       ["group", "scope"])
TASKS = Counter("claimlens_tasks_total", "Celery tasks finished, by task and state (success, failure, retry)",
                ["task", "state"])
TASK_DURATION = Histogram("claimlens_task_duration_seconds", "Celery task run time (each attempt)", ["task"],
                          buckets=_TASK_BUCKETS)
TASK_RETRIES = Counter("claimlens_task_retries_total", "Celery task retries", ["task"])
TASK_FAILURES = Counter("claimlens_task_failures_total", "Celery tasks that failed for good", ["task"])
CHECK_DURATION = Histogram("claimlens_check_duration_seconds", "one check on one photo or one claim",
                           ["check", "phase"], buckets=_TASK_BUCKETS)
CHECK_ERRORS = Counter("claimlens_check_errors_total", "a check that raised (recorded as check.failed)",
                       ["check", "phase"])


def observe_check(check: str, phase: str, seconds: float, failed: bool) -> None:
    """The pipeline's per-check observer (registered by the worker, :data:`pipeline.check_observers`)."""
    CHECK_DURATION.labels(check, phase).observe(seconds)
    if failed:
        CHECK_ERRORS.labels(check, phase).inc()


class QueueDepthCollector(Collector):
    """Messages waiting in each Celery queue, read from the Redis broker at scrape time (LLEN over the
    queue's priority lists), and tasks taken by a worker but not acknowledged yet."""

    def __init__(self, broker_url: str, queues: Iterable[str]) -> None:
        self.broker_url, self.queues = broker_url, tuple(queues)
        self._client = None

    def collect(self):  # type: ignore[no-untyped-def]
        depth = GaugeMetricFamily("claimlens_queue_depth", "messages waiting in a Celery queue", labels=["queue"])
        unacked = GaugeMetricFamily("claimlens_tasks_unacked", "tasks delivered to a worker, not acknowledged")
        up = GaugeMetricFamily("claimlens_broker_up", "1 when the broker answered this scrape")
        try:
            client = self._redis()
            for queue in self.queues:
                keys = [queue] + [f"{queue}\x06\x16{p}" for p in range(1, 10)]
                depth.add_metric([queue], float(sum(client.llen(k) for k in keys)))
            unacked.add_metric([], float(client.hlen("unacked")))
            up.add_metric([], 1.0)
        except Exception:  # noqa: BLE001 - the scrape must answer while the broker is down
            up.add_metric([], 0.0)
            return [up]
        return [depth, unacked, up]

    def _redis(self):  # type: ignore[no-untyped-def]
        if self._client is None:
            import redis

            self._client = redis.Redis.from_url(self.broker_url, socket_timeout=1.0, socket_connect_timeout=1.0)
        return self._client


def scrape_registry(broker_url: str | None) -> CollectorRegistry:
    """All processes' samples of this family, plus the queue depths when the broker is Redis."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(MULTIPROC_DIR))
    if broker_url and broker_url.startswith(("redis://", "rediss://")):
        registry.register(QueueDepthCollector(broker_url, ("cpu", "io")))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
