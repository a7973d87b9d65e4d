"""Shared fixtures.

Unit tests need nothing. Integration and e2e tests use the real services that ``scripts/services start``
runs (``make test`` starts them; the ``services`` fixture starts them too when run by hand), a fresh
PostgreSQL database schema per test session and a fresh bucket per test session.
"""

from __future__ import annotations

import os
import secrets
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
# CLAIMLENS_TEST_LANE=N (N > 0) gives a test run a database and broker databases of its own, so that two
# runs on one machine (two developers' sessions, a helper beside the main run) do not reset each other's state.
TEST_LANE = int(os.environ.get("CLAIMLENS_TEST_LANE", "0"))
TEST_DB = "claimlens_test" if TEST_LANE == 0 else f"claimlens_test_lane{TEST_LANE}"


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, skipping the test with a clear message when it is missing."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the shared data folder beside the repo)")
    return path


def _services_env() -> dict[str, str]:
    out = subprocess.run([str(REPO / "scripts" / "services"), "env"], check=True, capture_output=True, text=True,
                         env={**os.environ, "CLAIMLENS_SERVICES_DB": TEST_DB}).stdout
    env: dict[str, str] = {}
    for line in out.splitlines():
        if line.startswith("export "):
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = shlex.split(value)[0] if value else ""
    return env


@pytest.fixture(scope="session")
def services() -> Iterator[dict[str, str]]:
    """Start (idempotently) Redis, PostgreSQL and SeaweedFS; return the CLAIMLENS_* environment for them,
    pointed at a clean test database and a bucket of its own (emptied and removed at the end: every bucket is a
    SeaweedFS collection holding volumes, so a developer's runs must not pile them up)."""
    subprocess.run([str(REPO / "scripts" / "services"), "start"], check=True,
                   env={**os.environ, "CLAIMLENS_SERVICES_DB": TEST_DB}, stdout=subprocess.DEVNULL)
    env = _services_env()
    # CLAIMLENS_TEST_BUCKET: reuse an existing bucket (a dev S3 that cannot create more: SeaweedFS answers
    # "no free volumes left" once every volume slot holds some bucket's collection)
    env["CLAIMLENS_BUCKET"] = os.environ.get("CLAIMLENS_TEST_BUCKET") or f"test-{secrets.token_hex(4)}"
    env["CLAIMLENS_ENVIRONMENT"] = "development"
    env["CLAIMLENS_MILVUS_PREFIX"] = f"test_lane{TEST_LANE}"  # Milvus collections of this lane only
    _reset_database(env["CLAIMLENS_DATABASE_URL"])
    _reset_milvus(env["CLAIMLENS_MILVUS_URI"], env["CLAIMLENS_MILVUS_PREFIX"])
    yield env
    if not os.environ.get("CLAIMLENS_TEST_BUCKET"):
        _remove_bucket(env)


def _remove_bucket(env: dict[str, str]) -> None:
    from minio import Minio
    from minio.deleteobjects import DeleteObject

    client = Minio(env["CLAIMLENS_S3_ENDPOINT"], access_key=env["CLAIMLENS_S3_ACCESS_KEY"],
                   secret_key=env["CLAIMLENS_S3_SECRET_KEY"], secure=False)
    bucket = env["CLAIMLENS_BUCKET"]
    try:
        if not client.bucket_exists(bucket_name=bucket):
            return
        names = [DeleteObject(o.object_name) for o in client.list_objects(bucket_name=bucket, recursive=True)]
        for error in client.remove_objects(bucket_name=bucket, delete_object_list=names):
            print(f"test bucket {bucket}: could not remove {error.name}: {error.message}")
        client.remove_bucket(bucket_name=bucket)
    except Exception as e:  # noqa: BLE001 - a cleanup failure must not fail the test run; say it and go on
        print(f"test bucket {bucket} left behind: {e}")


def _reset_milvus(uri: str, prefix: str) -> None:
    """Drop this lane's Milvus collections: their photo ids belong to the database just reset. A Milvus that
    does not answer is left alone here (only the Milvus tests need it, and they fail on their own)."""
    from claimlens.core.milvus_index import IndexUnavailable, MilvusCodeIndex

    try:
        MilvusCodeIndex(uri, prefix=prefix, timeout=10).drop()
    except IndexUnavailable as exc:
        import warnings

        warnings.warn(f"Milvus lane collections not reset: {exc}", stacklevel=1)


def _reset_database(url: str) -> None:
    from sqlalchemy import create_engine, text

    from claimlens.core.migrate import upgrade

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    upgrade(url)


@pytest.fixture
def settings_env(services: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Point this process's settings at the test services for one test."""
    from claimlens.config import get_settings

    for key, value in services.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield services
    get_settings.cache_clear()


@pytest.fixture
def run_id() -> str:
    """A short unique token so tests never collide on claim ids or sha256s across runs."""
    return secrets.token_hex(3)
