"""Webhooks on the real service: a job's end POSTed to a receiver on 127.0.0.1, signed
(verified by the Standard Webhooks reference library), the job as GET shows it, retried
after a 500 with each attempt in the job's events; and a delivery still pending when the
coordinator is SIGKILLed, sent by its successor under the same webhook-id.

WEBHOOK_BACKOFF_BASE_S is 3 s: quick, yet long enough that the coordinator is killed
before the retry is due."""

from __future__ import annotations

import json
import time
from typing import Any

import psutil
import pytest
import ray
from standardwebhooks import Webhook

from actors.job_coordinator import coordinator_name
from tests.integration.conftest import NAMESPACE, VpaApp
from tests.integration.faults import actor_pid, sigkill, wait_new_pid
from tests.unit.test_webhooks import SECRET
from tests.webhook_receiver import Received, receiver


@pytest.fixture(scope="module")
def app(deploy_vpa: Any) -> VpaApp:
    return deploy_vpa(webhook_secret=SECRET, webhook_backoff_base_s=3.0, webhook_max_attempts=5)


def webhook_events(app: VpaApp, job_id: str) -> list[dict[str, Any]]:
    return [e for e in app.events(job_id) if e["type"].startswith("webhook_")]


def wait_events(app: VpaApp, job_id: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 60
    while len(found := webhook_events(app, job_id)) < count:
        assert time.monotonic() < deadline, f"webhook events: {found}"
        time.sleep(0.1)
    return found


def verified(got: Received) -> dict[str, Any]:
    """The body, once the reference library has verified signature and timestamp."""
    body: dict[str, Any] = Webhook(SECRET).verify(got.body, got.headers)
    return body


def test_a_webhook_is_retried_then_delivered_signed(app: VpaApp, sample_media: Any) -> None:
    with receiver([500, 204]) as hook:
        job_id = app.submit(sample_media.clip, webhook_url=hook.url)["id"]
        first, second = hook.wait_for(2, timeout_s=120)
        events = wait_events(app, job_id, 2)
    job = app.job(job_id)
    body = verified(second)
    assert body == verified(first) and second.body == first.body
    assert body["type"] == "job.completed"
    # The job exactly as GET shows it, but for updated_at: the attempts' events came after.
    assert body["data"] == {**job, "updated_at": body["data"]["updated_at"]}
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert [(e["type"], e["data"]["attempt"], e["data"]["status_code"]) for e in events] == [
        ("webhook_failed", 1, 500),
        ("webhook_delivered", 2, 204),
    ]
    assert events[0]["data"]["next_attempt_in_s"] == 3.0


def _coordinator_pid(app: VpaApp) -> int:
    return actor_pid(ray.get_actor(coordinator_name(app.settings), namespace=NAMESPACE))


def test_a_pending_delivery_survives_a_coordinator_kill(app: VpaApp, sample_media: Any) -> None:
    with receiver([503, 200]) as hook:
        job_id = app.submit(sample_media.clip, webhook_url=hook.url)["id"]
        [failed] = wait_events(app, job_id, 1)  # the retry is due 3 s later
        old = _coordinator_pid(app)
        sigkill(psutil.Process(old))
        killed_at = time.monotonic()
        assert len(hook.got) == 1
        wait_new_pid(lambda: _coordinator_pid(app), old)
        first, second = hook.wait_for(2, timeout_s=120)
        events = wait_events(app, job_id, 2)
    assert second.at > killed_at  # sent by the new coordinator, from the database
    assert failed["type"] == "webhook_failed" and failed["data"]["status_code"] == 503
    assert second.headers["webhook-id"] == first.headers["webhook-id"]
    assert json.loads(second.body)["type"] == "job.completed"
    verified(second)
    assert [e["type"] for e in events] == ["webhook_failed", "webhook_delivered"]
    assert events[1]["data"]["attempt"] == 2
