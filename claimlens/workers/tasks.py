"""Celery tasks: thin wrappers that load by id, call the pipeline, and let Celery retry transient failures.

The logic lives in :mod:`claimlens.core.pipeline`; these functions only handle queueing, retries and the
webhook. The runtime (object-store client, DB engine) is created lazily in each worker process, i.e. after
the prefork pool has forked.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from functools import lru_cache

import httpx
from celery import Task, chord, group
from celery.exceptions import SoftTimeLimitExceeded
from celery.utils.log import get_task_logger
from sqlalchemy.exc import IntegrityError

from claimlens.checks.registry import all_checks
from claimlens.config import get_settings
from claimlens.core.claims import sweep_erased_claim
from claimlens.core.db import session_scope
from claimlens.core.models import Claim
from claimlens.core.pipeline import (
    SERVICE_OUTAGES,
    PhotosPending,
    Runtime,
    analyse_photo,
    assess_claim,
    record_photo_failure,
)
from claimlens.core.storage import make_store
from claimlens.core.webhooks import WebhookNotAllowed, post_webhook
from claimlens.workers.celery_app import app
from claimlens.workers.observability import timed_checks

logger = get_task_logger(__name__)

# Retried with backoff: the service outages the pipeline lets through (database, store, Milvus index:
# pipeline.SERVICE_OUTAGES, one list for both), a lost race on a unique row, and a task stuck on I/O.
TRANSIENT = (*SERVICE_OUTAGES, IntegrityError, SoftTimeLimitExceeded)


@lru_cache
def runtime() -> Runtime:
    settings = get_settings()
    return Runtime(settings=settings, store=make_store(settings), checks=timed_checks(all_checks()))


class ClaimlensTask(Task):
    """Shared retry policy: exponential backoff (capped at 60 s, jittered) for outages of the object
    store, the database or the Milvus index; about 20 minutes of outage are ridden out before a task gives up."""

    autoretry_for = TRANSIENT
    retry_backoff = 2
    retry_backoff_max = 60
    retry_jitter = True
    max_retries = 25
    acks_late = True
    reject_on_worker_lost = True


SLOW_RETRIES = 3
"""Soft-time-limit retries of one photo before its failure is recorded (so the claim's chord completes)."""


@app.task(base=ClaimlensTask, bind=True, name="claimlens.analyse_photo")
def analyse_photo_task(self: Task, photo_id: str) -> str:
    try:
        status = analyse_photo(runtime(), photo_id)
    except SoftTimeLimitExceeded as exc:
        # stuck on I/O (an object store or database that stopped answering mid-request) or an unusually
        # slow photo: retry a few times, then record the failure so the claim phase still runs
        if self.request.retries < SLOW_RETRIES:
            logger.warning("photo %s: soft time limit, retrying", photo_id)
            raise self.retry(exc=exc, countdown=5) from None
        logger.error("photo %s: soft time limit %d times, recording the failure", photo_id, SLOW_RETRIES + 1)
        status = record_photo_failure(runtime(), photo_id, exc)
    except TRANSIENT:
        raise  # autoretry with backoff
    except Exception as exc:
        # a bug or an unexpected input must not block the claim's chord forever: record it on the photo
        # (the report shows it) and let the claim phase run
        logger.exception("photo %s: analysis failed", photo_id)
        status = record_photo_failure(runtime(), photo_id, exc)
    logger.info("photo %s: %s", photo_id, status)
    return status


@app.task(base=ClaimlensTask, bind=True, name="claimlens.assess_claim")
def assess_claim_task(self: Task, _header_results: object, claim_id: str, revision: int) -> str:
    try:
        status = assess_claim(runtime(), claim_id, revision)
    except PhotosPending as exc:
        # a photo task was lost or is still retrying: queue it again (idempotent) and come back later
        for photo_id in exc.photo_ids:
            analyse_photo_task.apply_async(args=[photo_id])
        raise self.retry(exc=exc, countdown=5, max_retries=120) from None
    logger.info("claim %s revision %s: %s", claim_id, revision, status)
    if status == "final":
        with session_scope(runtime().db_url) as s:
            claim = s.get(Claim, claim_id)
            if claim is not None and claim.webhook_url:
                deliver_webhook.apply_async(args=[claim_id, revision])
    return status


@app.task(base=ClaimlensTask, bind=True, name="claimlens.sweep_erased_claim")
def sweep_erased_claim_task(self: Task, claim_id: str) -> int:
    """Objects that landed under an erased claim after its erasure (queued by DELETE /v1/claims/{id})."""
    removed = sweep_erased_claim(runtime(), claim_id)
    if removed:
        logger.info("erased claim %s: %d late objects removed", claim_id, removed)
    return removed


def dispatch_photo(photo_id: str) -> None:
    analyse_photo_task.apply_async(args=[photo_id])


def dispatch_claim(claim_id: str, revision: int, photo_ids: list[str]) -> None:
    """Per-photo tasks in a group, chorded into the claim assessment."""
    header = group(analyse_photo_task.si(pid) for pid in photo_ids)
    chord(header)(assess_claim_task.s(claim_id, revision))


def webhook_body(claim: Claim, revision: int) -> dict[str, object]:
    base = get_settings().public_base_url.rstrip("/")
    return {"event": "claim.report.final", "claim_id": claim.id, "revision": revision, "score": claim.score,
            "report_url": f"{base}/v1/claims/{claim.id}/report",
            "report_html_url": f"{base}/v1/claims/{claim.id}/report.html"}


@app.task(bind=True, name="claimlens.deliver_webhook", acks_late=True, max_retries=10,
          autoretry_for=(httpx.HTTPError,), retry_backoff=5, retry_backoff_max=600, retry_jitter=True)
def deliver_webhook(self: Task, claim_id: str, revision: int) -> int:
    """POST the final-report notice to the claim's webhook URL; 2xx ends it, anything else retries."""
    settings = get_settings()
    with session_scope(runtime().db_url) as s:
        claim = s.get(Claim, claim_id)
        if claim is None or not claim.webhook_url or claim.report_revision != revision:
            return 0
        url, body = claim.webhook_url, json.dumps(webhook_body(claim, revision)).encode()
    headers = {"Content-Type": "application/json"}
    if settings.webhook_secret:
        mac = hmac.new(settings.webhook_secret.get_secret_value().encode(), body, hashlib.sha256).hexdigest()
        headers["X-Claimlens-Signature"] = f"sha256={mac}"
    try:
        resp = post_webhook(url, body, headers, settings)
    except WebhookNotAllowed as exc:
        # checked at the API too; this catches a DNS answer that changed since, or a URL stored before the
        # check existed. Not retried: the address will not become safe by waiting.
        logger.warning("webhook of claim %s revision %s refused: %s", claim_id, revision, exc)
        return 0
    if resp.is_redirect:
        logger.warning("webhook of claim %s revision %s answered %s; redirects are not followed",
                       claim_id, revision, resp.status_code)
        return resp.status_code
    resp.raise_for_status()
    return resp.status_code
