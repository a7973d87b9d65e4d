"""API keys against real PostgreSQL (and SQLite for the embedded mode): expiry, rotation with a grace period,
last use written at most once a minute, the bootstrap key (changed, concurrent starts), the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from claimlens.core.auth import (
    BOOTSTRAP_NAME,
    KeyOperationError,
    authenticate,
    create_key,
    ensure_bootstrap_admin,
    key_state,
    revoke_key,
    rotate_key,
)
from claimlens.core.db import session_scope
from claimlens.core.models import ApiKey, utcnow
from tests.conftest import REPO

pytestmark = pytest.mark.integration


@pytest.fixture
def db(services: dict[str, str]) -> str:
    return services["CLAIMLENS_DATABASE_URL"]


def auth(db: str, key: str) -> str | None:
    with session_scope(db) as s:
        p = authenticate(s, key)
    return p.name if p else None


def set_times(db: str, name: str, **values: object) -> None:
    with session_scope(db) as s:
        s.execute(update(ApiKey).where(ApiKey.name == name).values(**values))


def test_expiry(db: str, run_id: str) -> None:
    name = f"exp-{run_id}"
    with session_scope(db) as s:
        key = create_key(s, name=name, role="adjuster", expires_in=timedelta(days=30))
    assert auth(db, key) == name
    set_times(db, name, expires_at=utcnow() - timedelta(seconds=1))
    assert auth(db, key) is None
    with session_scope(db) as s:
        assert key_state(s.scalars(select(ApiKey).where(ApiKey.name == name)).one()) == "expired"


def test_rotation_grace_then_old_key_stops(db: str, run_id: str) -> None:
    name = f"rot-{run_id}"
    with session_scope(db) as s:
        old = create_key(s, name=name, role="investigator")
    with session_scope(db) as s:
        new, row = rotate_key(s, name, grace=timedelta(hours=1))
        assert key_state(row) == "rotating"
    assert auth(db, old) == name and auth(db, new) == name  # both work in the grace period
    set_times(db, name, previous_expires_at=utcnow() - timedelta(seconds=1))  # the grace period is over
    assert auth(db, old) is None and auth(db, new) == name
    with session_scope(db) as s:  # grace 0: the current key stops at once
        newer, _ = rotate_key(s, name, grace=timedelta(0))
    assert auth(db, new) is None and auth(db, newer) == name
    with session_scope(db) as s:
        revoke_key(s, name)
    assert auth(db, newer) is None
    with session_scope(db) as s, pytest.raises(KeyOperationError):
        rotate_key(s, name)  # a revoked key cannot be rotated back to life


def test_a_second_rotation_ends_the_first_grace(db: str, run_id: str) -> None:
    name = f"rot2-{run_id}"
    with session_scope(db) as s:
        k1 = create_key(s, name=name, role="adjuster")
    with session_scope(db) as s:
        k2, _ = rotate_key(s, name, grace=timedelta(hours=1))
    with session_scope(db) as s:
        k3, _ = rotate_key(s, name, grace=timedelta(hours=1))
    assert auth(db, k1) is None and auth(db, k2) == name and auth(db, k3) == name


def test_last_used_written_at_most_once_a_minute(db: str, run_id: str) -> None:
    name = f"used-{run_id}"
    with session_scope(db) as s:
        key = create_key(s, name=name, role="adjuster")

    def last_used():  # type: ignore[no-untyped-def]
        with session_scope(db) as s:
            return s.scalars(select(ApiKey.last_used_at).where(ApiKey.name == name)).one()

    assert last_used() is None
    auth(db, key)
    first = last_used()
    assert first is not None
    auth(db, key)
    assert last_used() == first  # within the minute: no write
    set_times(db, name, last_used_at=first - timedelta(minutes=2))
    auth(db, key)
    assert last_used() > first - timedelta(minutes=2)


def _bootstrap_row(db: str) -> ApiKey | None:
    with session_scope(db) as s:
        return s.scalars(select(ApiKey).where(ApiKey.name == BOOTSTRAP_NAME)).first()


def test_bootstrap_key_change_takes_effect_and_concurrent_starts_are_safe(db: str, run_id: str) -> None:
    from tests.e2e.conftest import ADMIN_KEY  # the e2e stack's key: put back at the end

    first, second = f"clk_boot1_{run_id}", f"clk_boot2_{run_id}"
    try:
        with session_scope(db) as s:
            outcome = ensure_bootstrap_admin(s, first)
        assert outcome in ("created", "replaced") and auth(db, first) == BOOTSTRAP_NAME
        with session_scope(db) as s:
            assert ensure_bootstrap_admin(s, first) == "unchanged"
        # eight API workers start at the same moment with a changed key
        barrier, results, errors = threading.Barrier(8), [], []

        def start() -> None:
            try:
                barrier.wait()
                with session_scope(db) as s:
                    results.append(ensure_bootstrap_admin(s, second))
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=start) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == [] and "replaced" in results and set(results) <= {"replaced", "unchanged"}
        assert auth(db, second) == BOOTSTRAP_NAME and auth(db, first) is None  # the old key is revoked
        with session_scope(db) as s:
            assert s.scalar(select(func.count()).select_from(ApiKey).where(ApiKey.name == BOOTSTRAP_NAME)) == 1
        # a key already registered under another name fails loudly instead of being ignored
        with session_scope(db) as s:
            other = create_key(s, name=f"other-{run_id}", role="adjuster")
        with session_scope(db) as s, pytest.raises(ValueError, match="already the key named"):
            ensure_bootstrap_admin(s, other)
    finally:
        with session_scope(db) as s:
            ensure_bootstrap_admin(s, ADMIN_KEY)


def test_bootstrap_on_sqlite(tmp_path: Path) -> None:
    from claimlens.core.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'k.db'}"
    upgrade(url)
    with session_scope(url) as s:
        assert ensure_bootstrap_admin(s, "clk_a") == "created"
    with session_scope(url) as s:
        assert ensure_bootstrap_admin(s, "clk_b") == "replaced"
    assert auth(url, "clk_a") is None and auth(url, "clk_b") == BOOTSTRAP_NAME
    with session_scope(url) as s:
        key = create_key(s, name="x", role="adjuster", expires_in=timedelta(hours=1))
    assert auth(url, key) == "x"  # naive SQLite datetimes compare as UTC


def _cli(db: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CLAIMLENS_DATABASE_URL": db, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "claimlens.cli", "keys", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_cli_create_list_rotate_revoke(db: str, run_id: str) -> None:
    name = f"cli-{run_id}"
    created = _cli(db, "create", "--name", name, "--role", "adjuster", "--expires-in", "90d")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("clk_") and auth(db, key) == name
    rotated = _cli(db, "rotate", "--name", name, "--grace", "1h")
    assert rotated.returncode == 0, rotated.stderr
    new = rotated.stdout.strip()
    assert auth(db, key) == name and auth(db, new) == name
    listed = _cli(db, "list")
    assert listed.returncode == 0, listed.stderr
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert rows[name]["state"] == "rotating" and rows[name]["expires_at"] is not None  # kept
    assert rows[name]["previous_key_expires_at"] is not None and rows[name]["last_used_at"] is not None
    assert "clk_" not in listed.stdout and "hash" not in listed.stdout
    assert _cli(db, "revoke", "--name", name).returncode == 0
    assert auth(db, key) is None and auth(db, new) is None
    assert _cli(db, "rotate", "--name", f"nobody-{run_id}").returncode == 1
    assert _cli(db, "create", "--name", "x", "--role", "adjuster", "--expires-in", "soon").returncode == 2
