"""Key management over HTTP: listing without secrets, expiry, rotation with grace, last use, and a changed
bootstrap key taking effect when the API restarts (two uvicorn workers starting together)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import REPO
from tests.e2e.conftest import ADMIN_KEY, Stack, free_port

pytestmark = pytest.mark.e2e


def test_keys_list_create_expiring_rotate_revoke(stack: Stack, run_id: str) -> None:
    name = f"ops-{run_id}"
    with stack.client() as admin:
        r = admin.post("/v1/keys", json={"name": name, "role": "adjuster", "expires_in_seconds": 3600})
        assert r.status_code == 201, r.text
        first = r.json()
        assert first["expires_at"] is not None
        with stack.client(first["key"]) as c:
            assert c.get("/v1/keys").status_code == 403  # adjusters do not see keys
            assert c.put(f"/v1/claims/KEY-{run_id}", json={}).status_code == 201
        r = admin.post(f"/v1/keys/{name}/rotate", json={"grace_seconds": 600})
        assert r.status_code == 200, r.text
        second = r.json()
        assert second["key"] != first["key"] and second["previous_key_expires_at"] is not None
        for key in (first["key"], second["key"]):  # both work during the grace period, same owner
            with stack.client(key) as c:
                assert c.get(f"/v1/claims/KEY-{run_id}").status_code == 200
        listed = admin.get("/v1/keys")
        assert listed.status_code == 200
        row = {k["name"]: k for k in listed.json()}[name]
        assert row["state"] == "rotating" and row["last_used_at"] is not None and row["role"] == "adjuster"
        assert first["key"] not in listed.text and second["key"] not in listed.text and "hash" not in listed.text
        r = admin.post(f"/v1/keys/{name}/rotate", json={"grace_seconds": 0})
        third = r.json()["key"]
        with stack.client(second["key"]) as c:
            assert c.get(f"/v1/claims/KEY-{run_id}").status_code == 401
        assert admin.delete(f"/v1/keys/{name}").status_code == 204
        with stack.client(third) as c:
            assert c.get(f"/v1/claims/KEY-{run_id}").status_code == 401
        assert admin.post(f"/v1/keys/nobody-{run_id}/rotate", json={}).status_code == 404
        assert admin.post("/v1/keys", json={"name": f"bad-{run_id}", "role": "adjuster",
                                            "expires_in_seconds": 0}).status_code == 422


def _start_api(stack: Stack, key: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = open(stack.log_dir / f"api-bootstrap-{port}.log", "wb")  # noqa: SIM115 - the process's lifetime
    env = {**stack.env, "CLAIMLENS_BOOTSTRAP_ADMIN_KEY": key}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "claimlens.api.main:app", "--host", "127.0.0.1",
                             "--port", str(port), "--workers", "2"],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{base}/v1/health", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"API did not start; log in {stack.log_dir}")


def _stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


def test_changed_bootstrap_key_takes_effect_and_the_old_one_stops(stack: Stack, run_id: str) -> None:
    new_key = f"clk_new_bootstrap_{run_id}{os.urandom(8).hex()}"
    proc, base = _start_api(stack, new_key)
    try:
        # every worker process of the restarted API answers the new key (several requests spread over both)
        for _ in range(6):
            assert httpx.get(f"{base}/v1/keys", headers={"X-API-Key": new_key}).status_code == 200
        assert httpx.get(f"{base}/v1/keys", headers={"X-API-Key": ADMIN_KEY}).status_code == 401
    finally:
        _stop(proc)
        proc, base = _start_api(stack, ADMIN_KEY)  # put the stack's key back for the other tests
        _stop(proc)
    assert httpx.get(f"{stack.base_url}/v1/keys", headers={"X-API-Key": ADMIN_KEY}).status_code == 200
    assert httpx.get(f"{stack.base_url}/v1/keys", headers={"X-API-Key": new_key}).status_code == 401
