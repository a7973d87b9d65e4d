"""Celery task wrappers: what a stuck photo task does (pure logic, eager execution, no broker)."""

from __future__ import annotations

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from claimlens.workers import tasks
from claimlens.workers.celery_app import app, soft_time_limit


def test_soft_limit_comes_before_the_hard_kill() -> None:
    hard = app.conf.task_time_limit
    assert 0 < app.conf.task_soft_time_limit <= hard - 5
    assert soft_time_limit(30) == 24 and soft_time_limit(900) == 720


def test_stuck_photo_task_retries_then_records_the_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[str] = []
    recorded: list[str] = []

    def stuck(_rt: object, photo_id: str) -> str:
        attempts.append(photo_id)
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(tasks, "runtime", lambda: None)
    monkeypatch.setattr(tasks, "analyse_photo", stuck)
    monkeypatch.setattr(tasks, "record_photo_failure", lambda _rt, pid, _exc: recorded.append(pid) or "failed")
    result = tasks.analyse_photo_task.apply(args=["p1"])  # eager: retries run in place
    assert result.get() == "failed"
    assert attempts == ["p1"] * (tasks.SLOW_RETRIES + 1) and recorded == ["p1"]


def test_a_photo_that_recovers_after_a_stall_is_analysed(monkeypatch: pytest.MonkeyPatch) -> None:
    outcomes = iter([SoftTimeLimitExceeded(), "analysed"])

    def flaky(_rt: object, _photo_id: str) -> str:
        out = next(outcomes)
        if isinstance(out, Exception):
            raise out
        return out

    monkeypatch.setattr(tasks, "runtime", lambda: None)
    monkeypatch.setattr(tasks, "analyse_photo", flaky)
    monkeypatch.setattr(tasks, "record_photo_failure", lambda *_a: pytest.fail("must not record a failure"))
    assert tasks.analyse_photo_task.apply(args=["p2"]).get() == "analysed"
