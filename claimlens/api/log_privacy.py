"""Keep personal data out of the API's logs where a library, not our code, writes the line.

uvicorn's access line carries the full request target, and a query string can hold what a user searched for
(``GET /v1/claims?q=<plate or VIN>``); the filter keeps the path and drops the query. Our own log calls name
claims and photos by id only and never log keys, plates, VINs or GPS (tests/e2e/test_data_protection.py).
"""

from __future__ import annotations

import logging

ACCESS_LOGGER = "uvicorn.access"


class DropQueryString(logging.Filter):
    """uvicorn logs ``'%s - "%s %s HTTP/%s" %d'`` with (client, method, path?query, version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (args[0], args[1], args[2].split("?", 1)[0] + "?[query omitted]", args[3], args[4])
        return True


def install() -> None:
    """Idempotent: one filter on uvicorn's access logger."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, DropQueryString) for f in logger.filters):
        logger.addFilter(DropQueryString())
