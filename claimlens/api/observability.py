"""Request ids, access log, request metrics, /metrics, liveness and readiness.

``X-Request-ID``: taken from the caller when it is a plain token (else a fresh one), set on the response,
kept in a context variable for the logs, and put on every task the request queues.
"""

from __future__ import annotations

import hmac
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from functools import lru_cache
from typing import Annotated, Any

from fastapi import APIRouter, Response, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import text
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from claimlens import __version__
from claimlens.api.deps import API_KEY_HEADER, get_runtime
from claimlens.api.errors import ApiError, error_response
from claimlens.config import get_settings
from claimlens.core.auth import authenticate
from claimlens.core.db import session_scope
from claimlens.ops import metrics
from claimlens.ops.logs import REQUEST_ID, clean_request_id

access_log = logging.getLogger("claimlens.access")


class RequestContextMiddleware:
    """Outermost of our middlewares: request id in and out, one access-log line and the request metrics
    per request, labelled with the route template (``/v1/claims/{claim_id}``), never the raw path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = dict(scope.get("headers") or ()).get(b"x-request-id")
        # kept in the scope's state too: audit events record it (claimlens.core.audit)
        request_id = clean_request_id(raw.decode("latin-1") if raw else None)
        scope.setdefault("state", {})["request_id"] = request_id
        REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                if not any(k.lower() == b"x-request-id" for k, _ in headers):
                    headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"]
            metrics.HTTP_REQUESTS.labels(method, route, str(status)).inc()
            metrics.HTTP_LATENCY.labels(method, route, str(status)).observe(elapsed)
            access_log.info("%s %s %s", method, route, status,
                            extra={"method": method, "route": route, "status": status,
                                   "duration_ms": round(elapsed * 1000, 2)})


@lru_cache
def _scrape_registry():  # type: ignore[no-untyped-def]
    return metrics.scrape_registry(get_settings().broker_url)


router = APIRouter()
METRICS_BEARER = HTTPBearer(auto_error=False, scheme_name="MetricsToken",
                            description="CLAIMLENS_METRICS__TOKEN (for Prometheus)")
health = APIRouter(prefix="/v1/health", tags=["health"])


@router.get("/metrics", tags=["operations"], response_class=Response,
            responses={200: {"content": {metrics.CONTENT_TYPE: {}}, "description": "Prometheus text format"},
                       401: {"description": "no metrics token or admin key"}})
def read_metrics(bearer: Annotated[HTTPAuthorizationCredentials | None, Security(METRICS_BEARER)] = None,
                 x_api_key: Annotated[str | None, Security(API_KEY_HEADER)] = None) -> Response:
    """Prometheus metrics of every API process of this instance (request counts and latency by route and
    status, rate-limit refusals, queue depth). Needs ``Authorization: Bearer <CLAIMLENS_METRICS__TOKEN>`` or
    an admin ``X-API-Key``."""
    if not _metrics_allowed(bearer.credentials if bearer else None, x_api_key):
        raise ApiError(401, "unauthorized", "metrics need the metrics token (Authorization: Bearer) or an "
                                            "admin X-API-Key")
    return Response(metrics.render(_scrape_registry()), media_type=metrics.CONTENT_TYPE)


def _metrics_allowed(bearer_token: str | None, api_key: str | None) -> bool:
    token = get_settings().metrics.token
    if token and bearer_token and hmac.compare_digest(bearer_token.encode(), token.get_secret_value().encode()):
        return True
    if api_key:
        with session_scope(get_runtime().db_url) as s:
            principal = authenticate(s, api_key)
        return principal is not None and principal.role == "admin"
    return False


@health.get("")
def health_compat() -> dict[str, str]:
    """Liveness plus a database round trip (kept for existing probes; prefer /live and /ready)."""
    with session_scope(get_runtime().db_url) as s:
        s.execute(text("SELECT 1"))
    return {"status": "ok", "version": __version__}


@health.get("/live")
def live() -> dict[str, str]:
    """The process answers: nothing else is checked (a restart would not fix a database outage)."""
    return {"status": "ok", "version": __version__}


READY_TIMEOUT_SECONDS = 3.0
_ready_pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="ready")


def _check_database() -> None:
    with session_scope(get_runtime().db_url) as s:
        s.execute(text("SELECT 1"))


def _check_object_store() -> None:
    get_runtime().store.list("_ready/")  # lists nothing, but needs the server, the bucket and the credentials


def _check_broker() -> None:
    url = get_settings().broker_url
    if url.startswith(("redis://", "rediss://")):
        import redis

        with redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0) as client:
            client.ping()
        return
    from kombu import Connection

    with Connection(url, connect_timeout=1.0) as conn:
        conn.ensure_connection(max_retries=1)


@health.get("/ready", responses={503: {"description": "a dependency is down (details say which)"}})
def ready() -> Any:
    """Ready to take traffic: the database, the object store and the broker each answer within 3 s.
    503 ``not_ready`` with each dependency's state otherwise."""
    checks = {"database": _check_database, "object_store": _check_object_store, "broker": _check_broker}
    futures = {name: _ready_pool.submit(fn) for name, fn in checks.items()}
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    states: dict[str, str] = {}
    for name, fut in futures.items():
        try:
            fut.result(timeout=max(0.0, deadline - time.monotonic()))
            states[name] = "ok"
        except FutureTimeout:
            states[name] = "timeout"
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            states[name] = f"down: {type(exc).__name__}"
    if all(v == "ok" for v in states.values()):
        return {"status": "ok", "version": __version__, "checks": states}
    down = sorted(k for k, v in states.items() if v != "ok")
    return error_response(503, "not_ready", f"not ready: {', '.join(down)} unavailable", {"checks": states},
                          headers={"Retry-After": "5"})

