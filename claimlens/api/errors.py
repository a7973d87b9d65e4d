"""One JSON error shape for every failure: ``{"error": {"code": ..., "message": ..., "details": ...}}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.exc import OperationalError as DatabaseError
from starlette.exceptions import HTTPException as StarletteHTTPException

from claimlens.core.claims import ClaimError
from claimlens.core.milvus_index import IndexUnavailable
from claimlens.core.storage import StorageUnavailable

log = logging.getLogger("claimlens.api")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(status, code, message)
        self.status, self.code, self.message, self.details = status, code, message, details


def error_response(status: int, code: str, message: str, details: Any = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.details)

    @app.exception_handler(ClaimError)
    async def _claim(_: Request, exc: ClaimError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in exc.errors()]
        return error_response(422, "invalid_request", "the request is not valid", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # a bug: the server logs its traceback (with the request id) when the exception leaves the app;
        # the caller gets the stable shape and the id to quote
        request_id = getattr(request.state, "request_id", None)
        return error_response(500, "internal_error", "an unexpected error occurred; it was logged",
                              {"request_id": request_id} if request_id else None)

    async def _unavailable(_: Request, exc: Exception) -> JSONResponse:
        log.warning("dependency unavailable: %s", type(exc).__name__)
        return error_response(503, "unavailable", "a backing service is unavailable; nothing was stored, retry later",
                              headers={"Retry-After": "5"})

    for exc_type in (StorageUnavailable, DatabaseError, BrokerError, IndexUnavailable):
        app.add_exception_handler(exc_type, _unavailable)
