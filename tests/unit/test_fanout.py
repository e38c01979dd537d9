"""The progress log, the hub's long-poll, the per-replica fan-out and the job queue, no Ray."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from actors.coordinator_config import CoordinatorConfig, backoff_s
from actors.job_queue import JobQueue
from actors.progress import BROADCAST, ProgressHubCore, ProgressLog
from deployments.fanout import Fanout, Subscriber, Update


def msg(job: str, seq: int) -> dict[str, Any]:
    return {"type": "job_update", "job_id": job, "seq": seq, "data": {}}


def test_log_is_bounded_ordered_and_drops_stale() -> None:
    log = ProgressLog(per_job=3, broadcast=4)
    for seq in range(1, 6):
        assert log.publish("a", seq, msg("a", seq))
    assert not log.publish("a", 5, msg("a", 5))  # already held: dropped
    assert not log.publish("a", 1, msg("a", 1))  # older than all kept: the DB has it
    assert [s for s, _ in log.read("a", 0)] == [3, 4, 5]
    assert [s for s, _ in log.read("a", 4)] == [5]
    assert log.read("a", 5) == []
    assert [s for s, _ in log.read(BROADCAST, 0)] == [2, 3, 4, 5]
    assert log.last_seq("a") == 5 and log.last_seq("missing") == 0


def test_log_releases_a_job_in_seq_order_whatever_the_arrival_order() -> None:
    log = ProgressLog(per_job=8)
    assert not log.publish("a", 2, msg("a", 2))  # 1 has not come yet: 2 waits for it
    assert log.read("a", 0) == [] and log.read(BROADCAST, 0) == []
    assert log.publish("a", 1, msg("a", 1))  # releases 1, then the 2 that waited
    assert not log.publish("a", 2, msg("a", 2))  # a duplicate is dropped
    assert [s for s, _ in log.read("a", 0)] == [1, 2]
    assert [m["seq"] for _, m in log.read(BROADCAST, 0)] == [1, 2]


def test_log_forgets_least_recent_channels() -> None:
    log = ProgressLog(max_channels=2)
    log.publish("a", 1, msg("a", 1))
    log.publish("b", 1, msg("b", 1))
    log.publish("a", 2, msg("a", 2))
    log.publish("c", 1, msg("c", 1))
    assert log.read("b", 0) == [] and log.last_seq("a") == 2 and log.last_seq("c") == 1


async def test_listen_wakes_on_publish_and_times_out() -> None:
    hub = ProgressHubCore()
    listening = asyncio.Event()

    async def listen() -> dict[str, Any]:
        listening.set()  # the listen below runs on without yielding until it waits
        return await hub.listen({"a": 0}, 3600.0)

    waiter = asyncio.ensure_future(listen())
    await listening.wait()
    assert not waiter.done()
    hub.publish("a", 1, msg("a", 1))
    result = await waiter
    assert result["channels"]["a"][0][0] == 1
    empty = await hub.listen({"a": 1}, 0.0)  # nothing new and no time left: answered empty
    assert empty["channels"] == {}
    heads = await hub.listen({BROADCAST: -1}, 3600.0)  # negative cursor: answered at once
    assert heads["heads"] == {BROADCAST: 1}


def test_connection_counts_sum_over_replicas() -> None:
    hub = ProgressHubCore(report_ttl_s=60)
    hub.report_connections("r1", {"jobs": {"a": 2}, "broadcast": 1, "health": 0, "total": 3})
    hub.report_connections(
        "r2", {"jobs": {"a": 1, "b": 1}, "broadcast": 0, "health": 1, "total": 3}
    )
    status = hub.connection_status()
    assert status["job_connections"] == {"a": 3, "b": 1}
    assert status["total_connections"] == 6
    assert status["replicas"] == {"r1": 3, "r2": 3}


class ObservedListen:
    """The hub's `listen`, with each poll's cursors recorded as the poll starts."""

    def __init__(self, hub: ProgressHubCore) -> None:
        self._hub = hub
        self.polls: asyncio.Queue[dict[str, int]] = asyncio.Queue()

    async def __call__(
        self, cursors: dict[str, int], timeout_s: float, epoch: str | None
    ) -> dict[str, Any]:
        self.polls.put_nowait(dict(cursors))
        return await self._hub.listen(cursors, timeout_s, epoch)


async def _stop(task: asyncio.Future[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_fanout_delivers_in_order_and_drops_only_the_slow_subscriber() -> None:
    hub = ProgressHubCore()
    reports: list[dict[str, Any]] = []
    fan = Fanout(hub.listen, reports.append, queue_size=4, poll_timeout_s=3600.0)
    runner = asyncio.ensure_future(fan.run())
    fast = fan.subscribe("a")
    slow = fan.subscribe("a")
    received: list[int] = []
    for seq in range(1, 11):
        hub.publish("a", seq, msg("a", seq))
        item = await fast.queue.get()  # the fast one reads each message as it comes
        assert item is not None
        received.append(item.seq)
    await _stop(runner)
    assert received == list(range(1, 11))
    assert slow.dropped and not fast.dropped
    assert fan.dropped_total == 10 - 4  # the slow one held 4, then took nothing more
    drained = []
    while not slow.queue.empty():
        item = slow.queue.get_nowait()
        drained.append(item and item.message)
    # the oldest made room for the None that tells the socket's sender to close it
    assert drained == [msg("a", seq) for seq in (2, 3, 4)] + [None]
    assert reports[-1]["jobs"] == {"a": 2}
    fan.unsubscribe(fast)
    fan.unsubscribe(slow)
    assert fan.counts()["total"] == 0


async def test_take_returns_everything_queued_in_order_then_waits() -> None:
    sub = Subscriber(BROADCAST, queue_size=3)
    updates = [Update(seq, msg("a", seq), json.dumps(msg("a", seq))) for seq in range(1, 5)]
    assert sub.offer(updates[0]) and sub.offer(updates[1])
    assert await sub.take() == updates[:2]
    waiting = asyncio.ensure_future(sub.take())
    await asyncio.sleep(0)
    assert not waiting.done()  # nothing queued: it waits for the next update
    assert sub.offer(updates[2])
    assert await asyncio.wait_for(waiting, 5) == [updates[2]]
    for update in updates:  # one more than fits: the oldest goes, the close sentinel comes
        sub.offer(update)
    assert await sub.take() == [updates[1], updates[2], None]


async def test_fanout_picks_up_new_channels_without_waiting_for_the_poll() -> None:
    hub = ProgressHubCore()
    listen = ObservedListen(hub)
    # a poll that only ended by its timeout would outlast the test's own timeout
    fan = Fanout(listen, lambda _: None, poll_timeout_s=3600.0)
    runner = asyncio.ensure_future(fan.run())
    fan.subscribe("early", start_seq=0)
    assert await listen.polls.get() == {"early": 0}  # that poll now waits on the hub
    sub = fan.subscribe("late", start_seq=0)
    assert await listen.polls.get() == {"early": 0, "late": 0}
    hub.publish("late", 1, msg("late", 1))
    item = await sub.queue.get()
    await _stop(runner)
    assert item is not None and item.seq == 1
    assert json.loads(item.text) == msg("late", 1)  # encoded once, for every socket


async def test_the_next_poll_goes_out_before_the_messages_go_to_the_sockets() -> None:
    hub = ProgressHubCore()
    sent: list[tuple[dict[str, int], int]] = []  # each poll's cursors, messages then queued
    subs: list[Subscriber] = []
    asked = asyncio.Event()

    def listen(
        cursors: dict[str, int], timeout_s: float, epoch: str | None
    ) -> Awaitable[dict[str, Any]]:
        sent.append((dict(cursors), sum(s.queue.qsize() for s in subs)))  # as it is sent
        asked.set()
        return hub.listen(cursors, timeout_s, epoch)

    fan = Fanout(listen, lambda _: None, poll_timeout_s=3600.0)
    runner = asyncio.ensure_future(fan.run())
    subs.append(fan.subscribe("a", start_seq=0))
    await asyncio.wait_for(asked.wait(), 5)
    hub.publish("a", 1, msg("a", 1))
    item = await asyncio.wait_for(subs[0].queue.get(), 5)
    await _stop(runner)
    assert item is not None and item.seq == 1
    # the second poll asked past message 1 before message 1 reached the socket's queue
    assert sent == [({"a": 0}, 0), ({"a": 1}, 0)]


def test_job_queue_priority_then_fifo() -> None:
    q = JobQueue()
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    q.push("low", 1, t0)
    q.push("high-late", 9, t0 + timedelta(seconds=2))
    q.push("high-early", 9, t0 + timedelta(seconds=1))
    q.push("mid", 5, t0)
    assert q.ordered() == ["high-early", "high-late", "mid", "low"]
    assert q.by_priority() == {9: ["high-early", "high-late"], 5: ["mid"], 1: ["low"]}
    assert q.remove("mid") and not q.remove("mid")
    assert "mid" not in q and len(q) == 3
    assert [q.pop(), q.pop(), q.pop(), q.pop()] == ["high-early", "high-late", "low", None]


def test_job_queue_push_again_moves_a_job() -> None:
    q = JobQueue()
    q.push("a", 1)
    q.push("b", 2)
    q.push("a", 3)
    assert q.clear() == ["a", "b"] and len(q) == 0


@pytest.mark.parametrize(("n", "expected"), [(1, 2.0), (2, 4.0), (3, 8.0), (10, 300.0)])
def test_backoff_doubles_and_is_capped(n: int, expected: float) -> None:
    config = CoordinatorConfig(retry_backoff_base_s=2.0, retry_backoff_max_s=300.0)
    assert backoff_s(config, n) == expected
