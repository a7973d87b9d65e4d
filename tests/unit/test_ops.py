"""Pure logic of the operations plumbing: route groups, default rate limits, request ids, JSON log lines."""

from __future__ import annotations

import json
import logging

from limits import parse_many

from claimlens.api.ratelimit import GROUPS, route_group
from claimlens.config import Settings
from claimlens.ops.logs import REQUEST_ID, TASK, ContextFilter, JsonFormatter, clean_request_id


def test_route_groups_and_exempt_routes() -> None:
    assert route_group("GET", "/v1/health") is None
    assert route_group("GET", "/v1/health/ready") is None
    assert route_group("GET", "/metrics") is None
    assert route_group("POST", "/v1/claims/C-1/photos") == "uploads"
    assert route_group("POST", "/v1/claims/C-1/uploads") == "uploads"
    assert route_group("POST", "/v1/claims/C-1/photos/p1/commit") == "uploads"
    assert route_group("GET", "/v1/claims/C-1/photos") == "reads"
    assert route_group("GET", "/v1/claims/C-1/report") == "reads"
    assert route_group("PUT", "/v1/claims/C-1") == "writes"
    assert route_group("POST", "/v1/claims/C-1/submit") == "writes"
    assert route_group("GET", "/v1/keys") == "admin"
    assert route_group("DELETE", "/v1/keys/ops") == "admin"
    assert route_group("GET", "/v1/healthz") == "reads"  # only the health routes themselves are exempt


def test_default_limits_trip_a_burst_of_200_in_one_second_from_one_key() -> None:
    settings = Settings(_env_file=None)
    for group in GROUPS:
        limits = getattr(settings.rate_limit, group)
        per_second = [item for item in parse_many(limits.per_key) if item.get_expiry() <= 1]
        assert per_second and min(item.amount for item in per_second) < 200, group
        # an address carries several keys: never stricter than one key
        addr = {item.get_expiry(): item.amount for item in parse_many(limits.per_address)}
        for item in parse_many(limits.per_key):
            assert addr.get(item.get_expiry(), 10**9) >= item.amount, group


def test_request_ids_are_plain_tokens() -> None:
    assert clean_request_id("req-abc_12:3.4") == "req-abc_12:3.4"
    for bad in (None, "", "short", "has space in it", "x" * 65, "line\nbreak-12345", "ключ-12345678"):
        fresh = clean_request_id(bad)
        assert fresh != bad and len(fresh) == 32


def test_json_log_line_carries_request_and_task_context() -> None:
    record = logging.makeLogRecord({"name": "claimlens.worker", "levelno": logging.INFO, "levelname": "INFO",
                                    "msg": "photo %s: %s", "args": ("p1", "analysed")})
    token_r, token_t = REQUEST_ID.set("req-12345678"), TASK.set({"name": "claimlens.analyse_photo", "id": "t-1"})
    try:
        ContextFilter().filter(record)
    finally:
        REQUEST_ID.reset(token_r)
        TASK.reset(token_t)
    doc = json.loads(JsonFormatter().format(record))
    assert doc["message"] == "photo p1: analysed" and doc["level"] == "info"
    assert doc["request_id"] == "req-12345678"
    assert doc["task"] == "claimlens.analyse_photo" and doc["task_id"] == "t-1"
    extra = logging.makeLogRecord({"msg": "GET x 200", "route": "/v1/claims/{claim_id}", "status": 200})
    doc = json.loads(JsonFormatter().format(extra))
    assert doc["route"] == "/v1/claims/{claim_id}" and doc["status"] == 200 and "request_id" not in doc
