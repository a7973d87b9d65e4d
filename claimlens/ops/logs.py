"""Structured logs: one JSON object per line, carrying the request id from the API into the Celery tasks.

The API takes ``X-Request-ID`` from the caller (or makes one), answers with it, and puts it on every task it
queues (a Celery message header, :mod:`claimlens.workers.observability`); the worker sets it again around
each task, so one id ties an upload's API line to its analysis lines and to the claim's report task.
Secrets never go through here: the formatter writes the message and the context fields, nothing else from
the request.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

REQUEST_ID: ContextVar[str | None] = ContextVar("claimlens_request_id", default=None)
TASK: ContextVar[dict[str, str] | None] = ContextVar("claimlens_task", default=None)

# what a caller may send as X-Request-ID; anything else is replaced (it is echoed and logged)
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")


def clean_request_id(value: str | None) -> str:
    """The caller's id when it is a plain token, else a fresh one (never log or echo arbitrary text)."""
    if value and _REQUEST_ID_RE.match(value):
        return value
    return uuid.uuid4().hex


class ContextFilter(logging.Filter):
    """Adds request_id / task_name / task_id from the context to every record (for any formatter)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = REQUEST_ID.get()
        task = TASK.get()
        if task and getattr(record, "task_id", None) is None:
            record.task_name, record.task_id = task.get("name"), task.get("id")
        return True


_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id", "task_name", "task_id"}


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", "request_id", "task", "task_id", ...extra}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, name in (("request_id", "request_id"), ("task_name", "task"), ("task_id", "task_id")):
            value = getattr(record, key, None)
            if value:
                doc[name] = value
        # fields passed with extra={...} (e.g. the access log's method, route, status, duration_ms)
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_") and key not in doc:
                doc[key] = value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def configure_logging(fmt: str = "json", level: str | int = "INFO") -> None:
    """Route every logger of the process (ours, uvicorn's, Celery's) through one handler on the root
    logger, in JSON or plain text. Idempotent: a second call replaces the handler."""
    handler = logging.StreamHandler()
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler._claimlens = True  # type: ignore[attr-defined]
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_claimlens", False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level if isinstance(level, int) else level.upper())
    # uvicorn installs its own text handlers; send its records to ours instead
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True
    # the API's own access line (claimlens.access: route template, status, duration, request id) replaces it
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
