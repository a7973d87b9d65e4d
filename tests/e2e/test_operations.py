"""Operations against the running stack: rate limits (Redis), metrics, request ids in the logs, liveness
and readiness. Real API processes, a real worker, real Redis, PostgreSQL and S3."""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.e2e.conftest import ADMIN_KEY, METRICS_TOKEN, Stack
from tests.support.photos import jpeg

pytestmark = pytest.mark.e2e


def default_limits_env(stack: Stack, **overrides: str) -> dict[str, str]:
    """The stack's environment without its raised test limits: the shipped defaults, plus overrides."""
    env = {k: v for k, v in stack.env.items() if not k.startswith("CLAIMLENS_RATE_LIMIT__")}
    return {**env, **overrides}


def new_key(stack: Stack, name: str, role: str = "adjuster") -> str:
    with stack.client() as c:
        r = c.post("/v1/keys", json={"name": name, "role": role})
        assert r.status_code == 201, r.text
        return r.json()["key"]


def assert_error_shape(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"], body
    return body["error"]


def test_rate_limit_per_key_and_address_with_retry_after(stack: Stack, run_id: str) -> None:
    env = default_limits_env(stack, CLAIMLENS_RATE_LIMIT__READS__PER_KEY="5/minute",
                             CLAIMLENS_RATE_LIMIT__READS__PER_ADDRESS="9/minute")
    api, base = stack.start_api(f"api-ratelimit-{run_id}", env, workers=2)
    key_a, key_b = new_key(stack, f"rl-a-{run_id}"), new_key(stack, f"rl-b-{run_id}")
    try:
        with httpx.Client(base_url=base, timeout=30) as c:
            codes_a = [c.get("/v1/claims/RL-NONE/status", headers={"X-API-Key": key_a}).status_code
                       for _ in range(7)]
            assert codes_a == [404] * 5 + [429] * 2  # counted across both API processes (Redis)
            r = c.get("/v1/claims/RL-NONE/status", headers={"X-API-Key": key_a})
            err = assert_error_shape(r, 429, "rate_limited")
            assert err["details"]["group"] == "reads" and err["details"]["scope"] == "key"
            assert 1 <= int(r.headers["Retry-After"]) <= 60
            # another key passes until the address limit trips (9 per minute; refused requests do not count)
            resp_b = [c.get("/v1/claims/RL-NONE/status", headers={"X-API-Key": key_b}) for _ in range(5)]
            assert [r.status_code for r in resp_b[:4]] == [404] * 4
            assert assert_error_shape(resp_b[4], 429, "rate_limited")["details"]["scope"] == "address"
            # other groups, health and metrics are not touched by the reads limits
            assert c.put(f"/v1/claims/RL-{run_id}", json={}, headers={"X-API-Key": key_b}).status_code == 201
            for path in ("/v1/health", "/v1/health/live", "/v1/health/ready"):
                assert c.get(path).status_code == 200
            assert c.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).status_code == 200
            metrics = c.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
            assert re.search(r'claimlens_rate_limited_total\{group="reads",scope="key"\} [3-9]', metrics)
    finally:
        stack.stop(api)


def test_default_limits_trip_on_a_burst_from_one_key(stack: Stack, run_id: str) -> None:
    """The shipped defaults (no overrides): 200 admin requests from one key, 16 at a time, against the admin
    group's 10 per second (tests/unit/test_ops.py checks that every group's defaults trip a 200/s burst)."""
    api, base = stack.start_api(f"api-defaults-{run_id}", default_limits_env(stack), workers=2)
    key = new_key(stack, f"rl-burst-{run_id}", role="admin")
    try:
        started = time.monotonic()
        with httpx.Client(base_url=base, timeout=30, headers={"X-API-Key": key}) as c, \
                ThreadPoolExecutor(16) as pool:
            responses = list(pool.map(lambda i: c.delete(f"/v1/keys/no-such-key-{i}"), range(200)))
        elapsed = time.monotonic() - started
        codes = [r.status_code for r in responses]
        assert set(codes) <= {404, 429} and codes.count(429) >= 1, codes
        # a moving window of 10 per second lets at most 10 through in any second, however slow the run
        assert codes.count(404) <= 10 * (int(elapsed) + 1), (elapsed, codes.count(404))
        limited = next(r for r in responses if r.status_code == 429)
        assert assert_error_shape(limited, 429, "rate_limited")["details"]["group"] == "admin"
        assert int(limited.headers["Retry-After"]) >= 1
    finally:
        stack.stop(api)


def test_rate_limits_fail_open_or_closed_when_their_redis_is_down(stack: Stack, run_id: str) -> None:
    """A Redis nobody listens on (the shared one keeps running): served with a warning by default, 503
    with CLAIMLENS_RATE_LIMIT__FAIL_OPEN=false."""
    down = "redis://127.0.0.1:1/0"
    api, base = stack.start_api(f"api-rl-open-{run_id}", default_limits_env(
        stack, CLAIMLENS_RATE_LIMIT__STORAGE_URL=down), workers=1)
    try:
        with httpx.Client(base_url=base, timeout=30, headers={"X-API-Key": ADMIN_KEY}) as c:
            assert [c.get("/v1/claims/RL-NONE").status_code for _ in range(3)] == [404] * 3
        log = (stack.log_dir / f"api-rl-open-{run_id}.log").read_text()
        assert "rate limits not enforced" in log
    finally:
        stack.stop(api)
    api, base = stack.start_api(f"api-rl-closed-{run_id}", default_limits_env(
        stack, CLAIMLENS_RATE_LIMIT__STORAGE_URL=down, CLAIMLENS_RATE_LIMIT__FAIL_OPEN="false"), workers=1)
    try:
        with httpx.Client(base_url=base, timeout=30, headers={"X-API-Key": ADMIN_KEY}) as c:
            assert_error_shape(c.get("/v1/claims/RL-NONE"), 503, "unavailable")
            assert c.get("/v1/health/live").status_code == 200
    finally:
        stack.stop(api)


def test_liveness_and_readiness(stack: Stack, run_id: str) -> None:
    with httpx.Client(base_url=stack.base_url, timeout=30) as c:
        assert c.get("/v1/health/live").json()["status"] == "ok"
        ready = c.get("/v1/health/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok", "object_store": "ok", "broker": "ok"}
        assert c.get("/v1/health").status_code == 200
    # an API whose broker and object store are unreachable: alive, not ready, and it says which
    env = {**stack.env, "CLAIMLENS_BROKER_URL": "redis://127.0.0.1:1/0", "CLAIMLENS_S3_ENDPOINT": "127.0.0.1:1"}
    api, base = stack.start_api(f"api-unready-{run_id}", env, workers=1)
    try:
        with httpx.Client(base_url=base, timeout=30) as c:
            assert c.get("/v1/health/live").status_code == 200
            r = c.get("/v1/health/ready")
            err = assert_error_shape(r, 503, "not_ready")
            checks = err["details"]["checks"]
            assert checks["database"] == "ok"
            assert checks["broker"] != "ok" and checks["object_store"] != "ok"
    finally:
        stack.stop(api)


def test_metrics_need_a_token_or_an_admin_key(stack: Stack, run_id: str) -> None:
    adjuster = new_key(stack, f"metrics-adj-{run_id}")
    with httpx.Client(base_url=stack.base_url, timeout=30) as c:
        assert_error_shape(c.get("/metrics"), 401, "unauthorized")
        assert_error_shape(c.get("/metrics", headers={"Authorization": "Bearer wrong"}), 401, "unauthorized")
        assert_error_shape(c.get("/metrics", headers={"X-API-Key": adjuster}), 401, "unauthorized")
        assert c.get("/metrics", headers={"X-API-Key": ADMIN_KEY}).status_code == 200
        r = c.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")


def _worker_metrics(stack: Stack) -> str:
    texts = []
    for proc in stack.workers:
        if proc.poll() is None:
            texts.append(httpx.get(f"http://127.0.0.1:{stack.worker_metrics_ports[proc.pid]}/metrics",
                                   timeout=10).text)
    return "\n".join(texts)


def _sample(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        m = re.match(rf"^{re.escape(name)}\{{(.*)\}} (\S+)$", line)
        if m and all(f'{k}="{v}"' in m.group(1) for k, v in labels.items()):
            total += float(m.group(2))
    return total


def test_request_id_metrics_and_json_logs_from_api_to_tasks(stack: Stack, run_id: str) -> None:
    claim_id = f"OPS-{run_id}"
    upload_id, submit_id = f"req-up-{run_id}", f"req-sub-{run_id}"
    with stack.client() as c:
        assert c.put(f"/v1/claims/{claim_id}", json={"loss_type": "collision"}).status_code == 201
        r = c.post(f"/v1/claims/{claim_id}/photos", files={"file": ("a.jpg", jpeg(f"ops-{run_id}"), "image/jpeg")},
                   data={"stage": "survey"}, headers={"X-Request-ID": upload_id})
        assert r.status_code == 201 and r.headers["X-Request-ID"] == upload_id
        photo_id = r.json()["photo_id"]
        r = c.post(f"/v1/claims/{claim_id}/submit", headers={"X-Request-ID": submit_id})
        assert r.status_code == 202 and r.headers["X-Request-ID"] == submit_id
        # no id sent, or one that is not a plain token: a fresh one comes back
        fresh = c.get(f"/v1/claims/{claim_id}", headers={"X-Request-ID": "bad id\twith spaces"})
        assert re.fullmatch(r"[0-9a-f]{32}", fresh.headers["X-Request-ID"])
    stack.wait_final(claim_id)

    # the worker's JSON lines carry the API's request id into the tasks: the photo task queued by the upload
    # and the submit's photo tasks and claim report (its chord callback is queued from inside a photo task)
    deadline = time.monotonic() + 30
    while True:
        lines = [json.loads(line) for path in stack.log_dir.glob("worker-*.log")
                 for line in path.read_text(errors="replace").splitlines() if line.startswith("{")]
        tasks_up = {d.get("task") for d in lines if d.get("request_id") == upload_id}
        tasks_sub = {d.get("task") for d in lines if d.get("request_id") == submit_id}
        if "claimlens.assess_claim" in tasks_sub or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert "claimlens.analyse_photo" in tasks_up, tasks_up
    assert "claimlens.assess_claim" in tasks_sub, tasks_sub
    assert any(photo_id in d["message"] and d.get("request_id") == upload_id for d in lines)
    api_lines = [json.loads(line) for line in (stack.log_dir / "api.log").read_text().splitlines()
                 if line.startswith("{")]
    access = [d for d in api_lines if d.get("request_id") == upload_id and d["logger"] == "claimlens.access"]
    assert access and access[0]["route"] == "/v1/claims/{claim_id}/photos" and access[0]["status"] == 201
    assert not any(ADMIN_KEY in line for line in (stack.log_dir / "api.log").read_text().splitlines())

    # metrics: the API by route template and status (both uvicorn processes summed), the worker by task,
    # check and state, plus the queue depth
    with stack.client() as c:
        api_text = c.get("/metrics").text
    assert _sample(api_text, "claimlens_http_requests_total", method="POST",
                   route="/v1/claims/{claim_id}/photos", status="201") >= 1
    assert _sample(api_text, "claimlens_http_request_duration_seconds_count", method="POST",
                   route="/v1/claims/{claim_id}/submit", status="202") >= 1
    assert claim_id not in api_text  # route templates, never raw paths
    assert re.search(r'^claimlens_queue_depth\{queue="cpu"\} \d', api_text, re.MULTILINE)
    worker_text = _worker_metrics(stack)
    assert _sample(worker_text, "claimlens_tasks_total", task="claimlens.analyse_photo", state="success") >= 1
    assert _sample(worker_text, "claimlens_tasks_total", task="claimlens.assess_claim", state="success") >= 1
    assert _sample(worker_text, "claimlens_task_duration_seconds_count", task="claimlens.assess_claim") >= 1
    assert _sample(worker_text, "claimlens_check_duration_seconds_count", check="exact_duplicate",
                   phase="photo") >= 1
