"""Webhooks (actors/webhooks.py, storage/webhooks.py) in a coordinator on the fake clock, a
real SQLite database and a real receiver on 127.0.0.1: signed as Standard Webhooks says
(checked by its reference library), the job as the API shows it, retried with the backoff,
given up, recovered from the database after a restart."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy.exc import OperationalError
from standardwebhooks import Webhook

from actors.coordinator_config import WebhookConfig, webhook_schedule_s
from actors.job_coordinator import config_from_settings
from actors.webhooks import WebhookSender, sign, signed_headers
from config.settings import Settings
from pipeline.errors import MediaError, PolicyError
from storage.links import public_job
from storage.models import JobStatus, JobType, WebhookDelivery
from storage.schemas import JobCreate
from tests.unit.coordinator_fakes import Harness, MakeHarness
from tests.unit.test_coordinator_outage import REFUSED, wait_for
from tests.webhook_receiver import Received, receiver

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
CONFIG = WebhookConfig(secret=SECRET, allow_private_urls=True, timeout_s=5.0)


def harness(make: MakeHarness, **webhooks: Any) -> Harness:
    h = make(webhooks=WebhookConfig(**{**CONFIG.__dict__, **webhooks}), job_timeout_s=1e6)
    h.core.webhooks.start()
    return h


async def submit(h: Harness, url: str, job_type: JobType = JobType.audio_extraction) -> str:
    data = JobCreate(youtube_url="https://media.example/v.mp4", job_type=job_type, webhook_url=url)
    job, _ = await h.core.submit(data)
    return str(job.id)


def deliveries(h: Harness, job_id: str) -> list[WebhookDelivery]:
    return h.repo.webhook_deliveries(UUID(job_id))


def webhook_events(h: Harness, job_id: str) -> list[dict[str, Any]]:
    return [
        {"type": str(e.type), **(e.data or {})}
        for e in h.events(job_id)
        if str(e.type).startswith("webhook_")
    ]


async def events_reach(h: Harness, job_id: str, count: int) -> list[dict[str, Any]]:
    await wait_for(lambda: len(webhook_events(h, job_id)) >= count)
    await wait_for(lambda: not h.core.webhooks.sending)  # the row is updated too
    return webhook_events(h, job_id)


def verified(got: Received) -> dict[str, Any]:
    """The body, after the reference library found the signature right (its own check of
    the timestamp is against the real clock; the fake one starts in 2026-01-01)."""
    reference = Webhook(SECRET)
    stamp = datetime.fromtimestamp(int(got.headers["webhook-timestamp"]), UTC)
    expected = reference.sign(got.headers["webhook-id"], stamp, got.body.decode())
    assert got.headers["webhook-signature"] == expected
    assert got.headers["content-type"] == "application/json"
    body: dict[str, Any] = json.loads(got.body)
    return body


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------- signing, settings
def test_the_signature_is_the_reference_librarys() -> None:
    body = '{"type":"job.completed","data":{"x":"é"}}'
    now = int(datetime.now(UTC).timestamp())
    headers = signed_headers(SECRET, "msg_abc", now, body)
    # The reference library verifies it, timestamp against the real clock included.
    assert Webhook(SECRET).verify(body.encode(), headers) == json.loads(body)
    assert headers["webhook-signature"] == Webhook(SECRET).sign(
        "msg_abc", datetime.fromtimestamp(now, UTC), body
    )
    # A secret given without its base64 padding signs the same.
    assert headers == signed_headers(SECRET.rstrip("="), "msg_abc", now, body)
    other = "whsec_" + base64.b64encode(bytes(32)).decode()
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(other).verify(body.encode(), headers)
    assert sign(b"k" * 24, "msg_abc", now, body) != sign(b"k" * 24, "msg_abd", now, body)


@pytest.mark.parametrize(
    "secret",
    ["abc", "whsec_!!!not-base64", "whsec_" + base64.b64encode(b"short").decode()],
)
def test_malformed_secrets_are_refused(secret: str) -> None:
    with pytest.raises(ValueError, match="webhook_secret"):
        Settings(webhook_secret=secret)


def test_the_default_settings_retry_for_over_ten_minutes() -> None:
    settings = Settings(webhook_secret=f" {SECRET} ")
    config = config_from_settings(settings).webhooks
    assert config.secret == SECRET
    schedule = webhook_schedule_s(config)
    assert len(schedule) >= 5 and schedule[-1] >= 600
    assert schedule == [0, 30, 90, 210, 450, 930]
    assert Settings(webhook_secret="").webhook_secret is None
    with pytest.raises(ValueError):
        Settings(webhook_max_attempts=0)


# ---------------------------------------------------------------------- delivery
async def test_a_completed_job_is_posted_signed_as_the_api_shows_it(
    make_harness: MakeHarness,
) -> None:
    h = harness(make_harness)
    with receiver([204]) as hook:
        job_id = await submit(h, hook.url)
        await h.run_to_completion(job_id)
        [got] = await hook.arrivals(1)
        events = await events_reach(h, job_id, 1)
    body = verified(got)
    assert body["type"] == "job.completed"
    assert body["timestamp"] == public_job(h.job(job_id)).model_dump(mode="json")["completed_at"]
    now = public_job(h.job(job_id)).model_dump(mode="json")
    # The job as GET showed it when it completed: only the webhook's own event came after.
    assert body["data"] == {**now, "updated_at": body["data"]["updated_at"]}
    assert body["data"]["status"] == "completed" and body["data"]["webhook_url"] == hook.url
    assert got.headers["webhook-id"].startswith("msg_")
    assert events == [
        {
            "type": "webhook_delivered",
            "status": "completed",
            "progress": 100.0,
            "webhook_id": got.headers["webhook-id"],
            "event_type": "job.completed",
            "attempt": 1,
            "max_attempts": 6,
            "status_code": 204,
            "error": None,
        }
    ]
    assert [d.status for d in deliveries(h, job_id)] == ["delivered"]
    assert "webhook_delivered" in {m["event"] for m in h.published.messages}  # published live


async def test_failed_and_cancelled_jobs_are_announced_too(make_harness: MakeHarness) -> None:
    h = harness(make_harness)
    with receiver([200]) as hook:
        failing = await submit(h, hook.url)
        (await h.stages.next_started(failing)).fail(MediaError("no audio", code="no_audio"))
        await h.ended(failing)
        cancelled = await submit(h, hook.url)
        await h.stages.next_started(cancelled)
        await h.core.cancel(cancelled)
        got = await hook.arrivals(2)
        await events_reach(h, cancelled, 1)
    types = {verified(g)["data"]["id"]: verified(g)["type"] for g in got}
    assert types == {failing: "job.failed", cancelled: "job.cancelled"}
    plain = await h.submit()
    await h.run_to_completion(plain)
    assert deliveries(h, plain) == []  # no webhook_url, no delivery


async def test_a_500_is_retried_after_the_backoff_with_the_same_id_and_body(
    make_harness: MakeHarness,
) -> None:
    h = harness(make_harness)
    with receiver([500, 200]) as hook:
        job_id = await submit(h, hook.url)
        await h.run_to_completion(job_id)
        [first] = await hook.arrivals(1)
        [failed] = await events_reach(h, job_id, 1)
        assert failed["type"] == "webhook_failed" and failed["status_code"] == 500
        assert failed["next_attempt_in_s"] == 30 and failed["attempt"] == 1
        [row] = deliveries(h, job_id)
        assert (row.status, row.attempts, row.last_error) == ("pending", 1, "HTTP 500")
        h.clock.advance(29)
        await asyncio.sleep(0.05)
        assert len(hook.got) == 1  # not before its time
        h.clock.advance(1)
        first, second = await hook.arrivals(2)
        events = await events_reach(h, job_id, 2)
    assert second.headers["webhook-id"] == first.headers["webhook-id"]
    assert second.body == first.body
    assert int(second.headers["webhook-timestamp"]) - int(first.headers["webhook-timestamp"]) >= 30
    verified(second)
    assert [e["type"] for e in events] == ["webhook_failed", "webhook_delivered"]
    assert deliveries(h, job_id)[0].status == "delivered"


async def test_timeouts_and_refused_connections_are_retried(make_harness: MakeHarness) -> None:
    h = harness(make_harness, timeout_s=0.2)
    with receiver([-2.0]) as hook:  # answers after 2 s: too late
        slow = await submit(h, hook.url)
        await h.run_to_completion(slow)
        [timed_out] = await events_reach(h, slow, 1)
    assert timed_out["type"] == "webhook_failed"
    assert timed_out["error"] == "no answer within 0.2 s"
    closed = await submit(h, f"http://127.0.0.1:{free_port()}/hook")
    await h.run_to_completion(closed)
    [refused] = await events_reach(h, closed, 1)
    assert refused["type"] == "webhook_failed" and refused["status_code"] is None
    assert refused["error"].startswith("ConnectError")


async def test_it_gives_up_after_the_last_attempt(make_harness: MakeHarness) -> None:
    h = harness(make_harness, max_attempts=3, backoff_base_s=10, backoff_max_s=15)
    with receiver([503]) as hook:
        job_id = await submit(h, hook.url)
        await h.run_to_completion(job_id)
        await events_reach(h, job_id, 1)
        h.clock.advance(10)
        await events_reach(h, job_id, 2)
        h.clock.advance(15)  # capped: 20 would be the doubling
        events = await events_reach(h, job_id, 3)
        h.clock.advance(3600)
        await asyncio.sleep(0.05)
        assert len(hook.got) == 3
    assert [(e["type"], e["attempt"]) for e in events] == [
        ("webhook_failed", 1),
        ("webhook_failed", 2),
        ("webhook_gave_up", 3),
    ]
    assert [e.get("next_attempt_in_s") for e in events] == [10, 15, None]
    [row] = deliveries(h, job_id)
    assert (row.status, row.attempts) == ("gave_up", 3)
    assert "gave up" in (h.last_event(job_id, "webhook_gave_up").message or "")


async def test_an_address_the_policy_refuses_now_or_no_secret_gives_up_at_once(
    make_harness: MakeHarness,
) -> None:
    h = harness(make_harness, allow_private_urls=False)
    with receiver([200]) as hook:
        job_id = await submit(h, hook.url)
        await h.run_to_completion(job_id)
        [refused] = await events_reach(h, job_id, 1)
        h2 = harness(make_harness, secret=None)
        unsigned = await submit(h2, hook.url)
        await h2.run_to_completion(unsigned)
        [no_secret] = await events_reach(h2, unsigned, 1)
        assert hook.got == []
    assert refused["type"] == "webhook_gave_up" and "loopback" in refused["error"]
    assert no_secret["type"] == "webhook_gave_up" and "WEBHOOK_SECRET" in no_secret["error"]


async def test_an_unresolvable_host_is_retried(make_harness: MakeHarness) -> None:
    h = harness(make_harness)

    def unresolvable(url: str, allow_private: bool) -> str:
        raise PolicyError("The host x.invalid could not be resolved", code="url_unresolvable")

    await h.core.webhooks.close()
    sender = WebhookSender(h.core, h.core._write, h.clock.now, h.clock, check=unresolvable)
    job_id = await submit(h, "https://x.invalid/hook")
    await h.run_to_completion(job_id)
    [row] = deliveries(h, job_id)
    outcome = await sender.attempt(row)
    await sender.close()
    assert not outcome.final and outcome.error == "The host x.invalid could not be resolved"
    assert webhook_events(h, job_id)[0]["type"] == "webhook_failed"


# ---------------------------------------------------------------------- durability
async def test_pending_deliveries_survive_a_restart(make_harness: MakeHarness) -> None:
    first = make_harness(webhooks=CONFIG, job_timeout_s=1e6)  # its sender never starts
    with receiver([500, 200]) as hook:
        unsent = await submit(first, hook.url)
        await first.run_to_completion(unsent)
        retrying = await submit(first, hook.url)
        await first.run_to_completion(retrying)
        first.core.webhooks.start()
        await wait_for(lambda: len(hook.got) == 2)  # one 500, one 200 (either order)
        await wait_for(
            lambda: len(webhook_events(first, unsent) + webhook_events(first, retrying)) == 2
        )
        await wait_for(lambda: not first.core.webhooks.sending)  # both rows updated
        await first.crash()
        pending = [d for j in (unsent, retrying) for d in deliveries(first, j)]
        assert sorted(d.status for d in pending) == ["delivered", "pending"]

        # A new coordinator on a new engine over the same SQLite file.
        second = make_harness(webhooks=CONFIG, job_timeout_s=1e6)
        second.clock.t = first.clock.t
        second.core.webhooks.start()
        await asyncio.sleep(0.05)
        assert len(hook.got) == 2  # the retry is not due yet
        second.clock.advance(30)
        got = await hook.arrivals(3)
        await wait_for(
            lambda: all(
                d.status == "delivered" for j in (unsent, retrying) for d in deliveries(second, j)
            )
        )
    ids = [g.headers["webhook-id"] for g in got]
    assert len(set(ids)) == 2 and ids[2] in ids[:2]
    for g in got:
        verified(g)


async def test_an_unreachable_database_is_waited_out(
    make_harness: MakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = make_harness(webhooks=CONFIG, job_timeout_s=1e6)
    with receiver([200]) as hook:
        job_id = await submit(h, hook.url)
        await h.run_to_completion(job_id)
        real = h.repo.due_webhooks
        down = OperationalError("SELECT", {}, Exception(REFUSED))

        def failing(*args: Any, **kwargs: Any) -> Any:
            raise down

        monkeypatch.setattr(h.repo, "due_webhooks", failing)
        h.core.webhooks.start()
        await wait_for(lambda: bool(h.clock.pending()))
        assert hook.got == []
        monkeypatch.setattr(h.repo, "due_webhooks", real)
        h.clock.advance(30)  # the scan's retry
        await hook.arrivals(1)
        await events_reach(h, job_id, 1)
    assert deliveries(h, job_id)[0].status == "delivered"


async def test_deleting_the_job_drops_its_pending_deliveries(make_harness: MakeHarness) -> None:
    h = harness(make_harness)
    with receiver([500]) as hook:
        job_id = await submit(h, hook.url)
        await h.run_to_completion(job_id)
        await events_reach(h, job_id, 1)
        await h.core.delete(job_id)
        assert deliveries(h, job_id) == []
        h.clock.advance(30)
        await asyncio.sleep(0.05)
        assert len(hook.got) == 1
    assert h.repo.get_job(UUID(job_id)) is None


def test_a_job_with_a_webhook_has_its_status_in_one_transaction(tmp_path: Any) -> None:
    """The delivery row comes with the terminal status: no status change, no delivery."""
    from storage.db import create_db_engine, init_db
    from storage.models import EventType
    from storage.repository import JobRepository

    repo = JobRepository(create_db_engine(f"sqlite:///{tmp_path / 'vpa.db'}"))
    init_db(repo.engine)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    data = JobCreate(
        youtube_url="https://m.example/v",
        job_type=JobType.audio_extraction,
        webhook_url="https://h.example/",
    )
    job, _ = repo.create_job(data, default_max_retries=0, now=now)
    repo.transition(
        job.id, event=EventType.cancelled, fields={"status": JobStatus.cancelled}, now=now
    )
    repo.transition(job.id, event=EventType.expired, now=now)  # a terminal job's later event
    [row] = repo.webhook_deliveries(job.id)
    assert (row.event_type, row.status, row.attempts, row.url) == (
        "job.cancelled",
        "pending",
        0,
        "https://h.example/",
    )
    assert json.loads(row.body)["data"]["status"] == "cancelled"
    assert repo.due_webhooks(now, 10) == [row] and repo.next_webhook_due() == now
    assert (
        repo.due_webhooks(now, 10, skip={row.id}) == [] and repo.next_webhook_due({row.id}) is None
    )
