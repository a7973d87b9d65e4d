"""uvicorn's access line loses its query string (a search may carry a plate or VIN)."""

from __future__ import annotations

import logging

from claimlens.api.log_privacy import DropQueryString


def access_record(target: str) -> logging.LogRecord:
    return logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                             ("127.0.0.1:5000", "GET", target, "1.1", 200), None)


def test_query_string_is_dropped_and_the_path_kept() -> None:
    record = access_record("/v1/claims?q=%E6%B2%AAA12345&limit=5")
    assert DropQueryString().filter(record)
    line = record.getMessage()
    assert "/v1/claims?[query omitted]" in line and "A12345" not in line and "200" in line


def test_lines_without_a_query_are_untouched() -> None:
    record = access_record("/v1/claims/C-1")
    DropQueryString().filter(record)
    assert record.getMessage() == '127.0.0.1:5000 - "GET /v1/claims/C-1 HTTP/1.1" 200'
