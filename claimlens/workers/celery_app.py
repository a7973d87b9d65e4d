"""The Celery application: Redis broker and result backend, late acks, two queues.

* ``cpu``: per-photo analysis and the per-claim assessment (run with a prefork pool, one process per core).
* ``io``: webhooks and other network-bound work (run with many threads or a separate small pool).

Reliability: ``acks_late`` + ``task_reject_on_worker_lost`` mean a task whose worker dies is delivered
again; with Redis that happens after ``visibility_timeout``, which must exceed the longest task (the hard
time limit is kept below it). Tasks are idempotent, so running twice is harmless.
"""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from claimlens.config import get_settings


def soft_time_limit(hard_limit: float) -> float:
    """The soft limit: 80 % of the hard one (at least 5 s before it), so the task can still retry."""
    return max(1.0, min(0.8 * hard_limit, hard_limit - 5.0))


def make_celery() -> Celery:
    s = get_settings()
    hard_limit = min(s.task_time_limit_seconds, max(30, s.visibility_timeout_seconds - 30))
    app = Celery("claimlens", include=["claimlens.workers.tasks"])
    transport = {"visibility_timeout": s.visibility_timeout_seconds}
    app.conf.update(
        broker_url=s.broker_url,
        result_backend=s.result_backend,
        broker_transport_options=transport,
        result_backend_transport_options={"retry_policy": {"timeout": 5.0}},
        broker_connection_retry_on_startup=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_time_limit=hard_limit,
        # a task stuck on I/O (an object store or database that stopped answering mid-request) gets
        # SoftTimeLimitExceeded first and retries; a hard kill would fail the claim's chord for good
        task_soft_time_limit=soft_time_limit(hard_limit),
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_expires=24 * 3600,
        task_queues=(Queue("cpu"), Queue("io")),
        task_default_queue="io",
        task_routes={
            "claimlens.analyse_photo": {"queue": "cpu"},
            "claimlens.assess_claim": {"queue": "cpu"},
            "claimlens.deliver_webhook": {"queue": "io"},
        },
        # fail fast when Redis is down so the API can answer 503 instead of hanging
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5,
                                   "interval_max": 1.0},
        worker_hijack_root_logger=False,
    )
    return app


app = make_celery()

# request ids on task messages, JSON logs and task metrics (signal handlers; the API publishes tasks too)
from claimlens.workers import observability  # noqa: F401
