"""Celery side of the operations plumbing: the request id across task messages, JSON logs, task metrics,
and the worker's metrics exporter.

* Publishing (in the API and inside tasks, e.g. the chord callback and retries): the current request id
  goes into the message headers as ``claimlens_request_id``.
* Running: the id and the task's name and id are set in the logging context for the task's lifetime.
* Metrics: counts by task and state, durations, retries, failures (prefork children write them to the
  multiprocess directory); the worker's main process serves them on ``CLAIMLENS_METRICS__WORKER_PORT``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import signals

from claimlens.checks.base import Check
from claimlens.ops import metrics
from claimlens.ops.logs import REQUEST_ID, TASK, configure_logging

log = logging.getLogger("claimlens.worker")

HEADER = "claimlens_request_id"
_started: dict[str, float] = {}


@signals.setup_logging.connect
def _setup_logging(loglevel: Any = None, **_: Any) -> None:
    """Replaces Celery's logging setup (it would otherwise install its own text handlers)."""
    from claimlens.config import get_settings

    settings = get_settings()
    configure_logging(settings.log_format, loglevel or settings.log_level)


@signals.before_task_publish.connect
def _add_request_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    request_id = REQUEST_ID.get()
    if headers is not None and request_id and HEADER not in headers:
        headers[HEADER] = request_id


@signals.task_prerun.connect
def _task_started(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    request_id = getattr(task.request, HEADER, None) if task is not None else None
    REQUEST_ID.set(request_id)
    TASK.set({"name": getattr(task, "name", "?"), "id": task_id or "?"})
    if task_id:
        _started[task_id] = time.perf_counter()


@signals.task_postrun.connect
def _task_finished(task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any) -> None:
    name = getattr(task, "name", "?")
    begun = _started.pop(task_id or "", None)
    if begun is not None:
        metrics.TASK_DURATION.labels(name).observe(time.perf_counter() - begun)
    metrics.TASKS.labels(name, (state or "unknown").lower()).inc()
    REQUEST_ID.set(None)
    TASK.set(None)


@signals.task_retry.connect
def _task_retry(sender: Any = None, **_: Any) -> None:
    metrics.TASK_RETRIES.labels(getattr(sender, "name", "?")).inc()


@signals.task_failure.connect
def _task_failure(sender: Any = None, **_: Any) -> None:
    metrics.TASK_FAILURES.labels(getattr(sender, "name", "?")).inc()


class TimedCheck(Check):
    """A check with its run time and exceptions measured per phase (claimlens_check_duration_seconds,
    claimlens_check_errors_total); same name and version, so the pipeline signature does not change."""

    def __init__(self, inner: Check) -> None:
        self.inner = inner
        self.name = inner.name  # type: ignore[misc]
        self.version = inner.version  # type: ignore[misc]

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.inner, attr)

    def _timed(self, phase: str, fn: Any, *args: Any) -> Any:
        begun, failed = time.perf_counter(), True
        try:
            result = fn(*args)
            failed = False
            return result
        finally:
            metrics.observe_check(self.name, phase, time.perf_counter() - begun, failed)

    def analyse_photo(self, photo: Any, info: Any) -> Any:
        return self._timed("photo", self.inner.analyse_photo, photo, info)

    def assess_claim(self, ctx: Any) -> Any:
        return self._timed("claim", self.inner.assess_claim, ctx)


def timed_checks(checks: tuple[Check, ...]) -> tuple[Check, ...]:
    return tuple(TimedCheck(c) for c in checks)


@signals.worker_ready.connect
def _start_exporter(**_: Any) -> None:
    """The worker's metrics on its own listener (loopback by default): all pool children summed, plus the
    queue depths. Not part of the API, so it needs no key; bind it to a private interface only."""
    from prometheus_client.exposition import start_http_server

    from claimlens.config import get_settings

    settings = get_settings()
    if not settings.metrics.worker_port:
        return
    try:
        start_http_server(settings.metrics.worker_port, addr=settings.metrics.worker_host,
                          registry=metrics.scrape_registry(settings.broker_url))
    except OSError as exc:  # a second worker on this host: it still works, without its own exporter
        log.warning("metrics exporter not started on %s:%s: %s", settings.metrics.worker_host,
                    settings.metrics.worker_port, exc)
        return
    log.info("metrics exporter on http://%s:%s/metrics", settings.metrics.worker_host,
             settings.metrics.worker_port)
