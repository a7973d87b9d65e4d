"""The soak bench, small: photos over claims, multipart and presigned, concurrent clients, while one of its
workers is killed with SIGKILL (no service restarts here: other test runs share the services). Its own
API and workers beside the stack's worker, the stack's services and bucket; every invariant must hold."""

from __future__ import annotations

import pytest

from claimlens.bench.soak import soak
from tests.conftest import SHARED_DATA
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e


def test_soak_small_with_a_worker_killed(stack: Stack) -> None:
    services = {k: v for k, v in stack.env.items() if k.startswith("CLAIMLENS_")}
    dataset = SHARED_DATA / "car_damage_roboflow"  # real photos when present, generated ones otherwise
    result = soak(dataset if dataset.is_dir() else None,
                  {"photos": "24", "claims": "4", "concurrency": "4", "faults": "worker", "workers": "2",
                   "worker_concurrency": "1", "api_workers": "1", "down_s": "1", "visibility_timeout": "15",
                   "max_seconds": "300",
                   # the stack's worker listens on the same broker databases: the soak shares its bucket
                   "shared_broker": "1", "bucket": services["CLAIMLENS_BUCKET"]}, env=services)
    m = result["metrics"]
    assert m["ok"], m["problems"]
    assert result["n_images"] == 24 and m["photos"] == 24
    (fault,) = m["faults"]
    assert fault["fault"] == "worker" and fault["first_analysis_after_s"] is not None
    assert m["upload_latency_p95_ms"] >= m["upload_latency_p50_ms"] > 0
    assert set(m["upload_latency_p95_ms_by_kind"]) == {"multipart", "presigned"}
    assert m["orphan_reservations"] == 0
