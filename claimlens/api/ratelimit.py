"""Rate limits per API key and per client address, counted in Redis with moving windows (``limits``).

Every request outside health and metrics belongs to a route group (uploads, reads, writes, admin), each
with limits per key and per address (``CLAIMLENS_RATE_LIMIT__<GROUP>__PER_KEY`` / ``__PER_ADDRESS``).
The key is counted by a hash of the presented ``X-API-Key`` (before authentication, so guessing keys is
limited too); the address is the connecting peer, or what uvicorn's ``--proxy-headers`` made of
``X-Forwarded-For`` behind a trusted proxy. Over a limit: 429 ``rate_limited`` with ``Retry-After``.

Redis down: by default the request is served and a warning logged (at most every 30 s): an outage of the
counter should not take the API down with it, and Redis down already means uploads cannot be queued.
``CLAIMLENS_RATE_LIMIT__FAIL_OPEN=false`` answers 503 instead.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string
from starlette.types import ASGIApp, Receive, Scope, Send

from claimlens.api.errors import error_response
from claimlens.config import RateLimitSettings, Settings
from claimlens.ops.metrics import RATE_LIMITED

log = logging.getLogger("claimlens.api.ratelimit")

GROUPS = ("uploads", "reads", "writes", "admin")
_UPLOAD_PATH = re.compile(r"^/v1/claims/[^/]+/(photos|uploads|photos/[^/]+/commit)/?$")


def route_group(method: str, path: str) -> str | None:
    """The group a request counts against; None for the routes that are never limited."""
    if path == "/metrics" or path == "/v1/health" or path.startswith("/v1/health/"):
        return None
    if path == "/v1/keys" or path.startswith("/v1/keys/"):
        return "admin"
    if method == "POST" and _UPLOAD_PATH.match(path):
        return "uploads"
    if method in ("GET", "HEAD", "OPTIONS"):
        return "reads"
    return "writes"


@dataclass(frozen=True)
class Rule:
    group: str
    scope: str  # "key" or "address"
    items: tuple[RateLimitItem, ...]


def _rules(cfg: RateLimitSettings) -> dict[str, tuple[Rule, Rule]]:
    out = {}
    for group in GROUPS:
        limits = getattr(cfg, group)
        out[group] = (Rule(group, "key", tuple(parse_many(limits.per_key))),
                      Rule(group, "address", tuple(parse_many(limits.per_address))))
    return out


class RateLimitMiddleware:
    """Pure ASGI middleware (no per-request task, no body buffering) in front of the routes."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.cfg = settings.rate_limit
        self.rules = _rules(self.cfg)  # a malformed limit string fails at start, not at the first request
        self.storage_url = self.cfg.storage_url or settings.broker_url
        self._limiter: MovingWindowRateLimiter | None = None
        self._last_warning = 0.0

    def limiter(self) -> MovingWindowRateLimiter:
        # created in the serving process and event loop (uvicorn workers import the app before their loop)
        if self._limiter is None:
            url = self.storage_url
            if url.startswith(("redis://", "rediss://")):
                url = "async+" + url
                storage = storage_from_string(url, implementation="redispy", socket_connect_timeout=0.5,
                                              socket_timeout=0.5)
            else:
                storage = storage_from_string(url)
            self._limiter = MovingWindowRateLimiter(storage)
        return self._limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.cfg.enabled:
            await self.app(scope, receive, send)
            return
        group = route_group(scope["method"], scope["path"])
        if group is None:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        key = headers.get(b"x-api-key")
        client = scope.get("client")
        identities = [(self.rules[group][1], client[0] if client else "unknown")]
        if key:
            identities.insert(0, (self.rules[group][0], hashlib.sha256(key).hexdigest()[:24]))
        try:
            refused = await self._refused(identities)
        except Exception as exc:  # noqa: BLE001 - Redis unreachable or answering errors
            if not self.cfg.fail_open:
                response = error_response(503, "unavailable", "rate limiting is unavailable; retry later",
                                          headers={"Retry-After": "5"})
                await response(scope, receive, send)
                return
            now = time.monotonic()
            if now - self._last_warning > 30:
                self._last_warning = now
                log.warning("rate limits not enforced: their Redis is unreachable (%s)", type(exc).__name__)
            refused = None
        if refused is not None:
            rule, item, retry_after = refused
            RATE_LIMITED.labels(rule.group, rule.scope).inc()
            response = error_response(
                429, "rate_limited", f"too many requests: over {item} per {rule.scope} for {rule.group}",
                {"group": rule.group, "scope": rule.scope, "limit": str(item), "retry_after": retry_after},
                headers={"Retry-After": str(retry_after)})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _refused(self, identities: list[tuple[Rule, str]]) -> tuple[Rule, RateLimitItem, int] | None:
        limiter = self.limiter()
        for rule, ident in identities:
            for item in rule.items:
                if not await limiter.hit(item, rule.group, rule.scope, ident):
                    stats = await limiter.get_window_stats(item, rule.group, rule.scope, ident)
                    return rule, item, max(1, math.ceil(stats.reset_time - time.time()))
        return None
