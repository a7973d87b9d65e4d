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


def test_database_errors_do_not_carry_the_statements_values(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Celery logs a retried task's exception text; an IntegrityError must not bring a plate or VIN with it."""
    import pytest
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    from claimlens.core.db import get_engine

    engine = get_engine(f"sqlite:///{tmp_path / 'p.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE keys (value TEXT UNIQUE)"))
        conn.execute(text("INSERT INTO keys VALUES (:v)"), {"v": "LSVAU2180N2183297"})
    with pytest.raises(IntegrityError) as err, engine.begin() as conn:
        conn.execute(text("INSERT INTO keys VALUES (:v)"), {"v": "LSVAU2180N2183297"})
    assert "INSERT INTO keys" in str(err.value) and "LSVAU2180N2183297" not in str(err.value)
