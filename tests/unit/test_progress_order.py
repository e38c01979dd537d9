"""Each job's updates reach every client in `seq` order, none twice, none missing: the hub's
hold-back, the coordinator's ordered publish queue, the fan-out's broadcast check and the
job socket's gap fill from the database, all without Ray."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from uuid import uuid4

from starlette.websockets import WebSocketState

from actors.progress import BROADCAST, ProgressHubCore, ProgressLog, PublishQueue
from deployments.fanout import Fanout, Subscriber, Update, encode
from deployments.routes import ws as ws_routes


def msg(job: str, seq: int) -> dict[str, Any]:
    return {"type": "job_update", "job_id": job, "seq": seq, "data": {}}


def broadcast_seqs(log: ProgressLog) -> list[tuple[str, int]]:
    return [(m["job_id"], m["seq"]) for _, m in log.read(BROADCAST, 0)]


def test_a_gap_is_held_back_then_given_up_in_order() -> None:
    log = ProgressLog(hold_s=0.5)
    assert log.publish("a", 1, msg("a", 1), now=0.0)
    assert not log.publish("a", 3, msg("a", 3), now=0.0)  # 2 is missing: 3 waits
    assert not log.publish("a", 4, msg("a", 4), now=0.1)
    assert log.publish("b", 1, msg("b", 1), now=0.1)  # another job is not held up
    assert log.next_deadline() == 0.5
    assert not log.release_due(0.4)
    assert [s for s, _ in log.read("a", 0)] == [1]
    assert log.release_due(0.5)  # 2 never came: given up, 3 and 4 go in order
    assert [s for s, _ in log.read("a", 0)] == [1, 3, 4]
    assert not log.publish("a", 2, msg("a", 2), now=0.6)  # too late to go in order
    assert broadcast_seqs(log) == [("a", 1), ("b", 1), ("a", 3), ("a", 4)]
    assert log.next_deadline() is None


def test_a_job_first_heard_mid_stream_waits_for_its_predecessors() -> None:
    log = ProgressLog(hold_s=0.5)
    assert not log.publish("a", 2, msg("a", 2), now=0.0)  # created (1) may still come
    assert log.publish("a", 1, msg("a", 1), now=0.1)
    assert broadcast_seqs(log) == [("a", 1), ("a", 2)]
    assert not log.publish("b", 7, msg("b", 7), now=0.0)  # after a hub restart: 1-6 are gone
    assert log.release_due(0.5)
    assert broadcast_seqs(log)[-1] == ("b", 7)


async def test_hub_listeners_see_2_then_3_when_3_is_published_first() -> None:
    hub = ProgressHubCore(ProgressLog(hold_s=3600.0))
    hub.publish_many([("a", 1, msg("a", 1)), ("a", 3, msg("a", 3))])
    first = await hub.listen({BROADCAST: 0, "a": 0}, 0.0)
    assert [m["seq"] for _, m in first["channels"][BROADCAST]] == [1]
    hub.publish("a", 2, msg("a", 2))
    hub.publish("a", 3, msg("a", 3))  # sent again (a retried batch): dropped
    result = await hub.listen({BROADCAST: 1, "a": 1}, 0.0)
    assert [m["seq"] for _, m in result["channels"][BROADCAST]] == [2, 3]
    assert [s for s, _ in result["channels"]["a"]] == [2, 3]


async def test_hub_releases_a_held_message_on_its_own_when_the_gap_stays() -> None:
    hub = ProgressHubCore(ProgressLog(hold_s=0.0))
    hub.publish("a", 1, msg("a", 1))
    hub.publish("a", 3, msg("a", 3))  # held; the hub's timer gives the gap up
    result = await hub.listen({"a": 1}, 3600.0)  # woken by that release, not a timeout
    assert [s for s, _ in result["channels"]["a"]] == [3]


async def test_listener_of_a_restarted_hub_is_answered_at_once() -> None:
    hub = ProgressHubCore()
    result = await hub.listen({BROADCAST: 50}, 3600.0, epoch="the-old-hub")
    assert result == {"epoch": hub.log.epoch, "channels": {}, "heads": {}}


async def test_publish_queue_sends_in_order_and_retries_a_failed_batch() -> None:
    sent: list[list[tuple[str, int, dict[str, Any]]]] = []
    errors: list[bool] = []
    all_sent = asyncio.Event()
    release = asyncio.Event()  # the resend waits until 4 is queued: the batches are fixed

    async def send(batch: list[tuple[str, int, dict[str, Any]]]) -> None:
        sent.append(list(batch))
        if len(sent) == 1:
            raise ConnectionError("hub restarting")
        if len(sent) == 2:
            await release.wait()
        if batch[-1][1] == 4:
            all_sent.set()

    queue = PublishQueue(send, lambda: errors.append(True), max_batch=2, retry_s=(0.0,))
    for seq in (1, 2, 3):
        queue.put("a", seq, msg("a", seq))
    runner = asyncio.ensure_future(queue.run())
    await asyncio.to_thread(queue.put, "a", 4, msg("a", 4))  # from another thread
    release.set()
    await all_sent.wait()
    runner.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await runner
    assert errors == [True]
    assert [[s for _, s, _ in batch] for batch in sent] == [[1, 2], [1, 2], [3, 4]]


async def test_broadcast_after_a_hub_restart_sends_nothing_twice_and_keeps_order() -> None:
    hubs = [ProgressHubCore()]
    polls: asyncio.Queue[str | None] = asyncio.Queue()

    async def listen(cursors: dict[str, int], timeout_s: float, epoch: str | None) -> Any:
        polls.put_nowait(epoch)
        return await hubs[-1].listen(cursors, timeout_s, epoch)

    fan = Fanout(listen, lambda _: None, poll_timeout_s=3600.0)
    runner = asyncio.ensure_future(fan.run())
    sub = fan.subscribe(BROADCAST)
    await polls.get()  # the head poll
    for seq in (1, 2):
        hubs[0].publish("a", seq, msg("a", seq))
    got = [(await sub.queue.get()) for _ in range(2)]
    hubs.append(ProgressHubCore())  # the hub restarts; the coordinator resends 2, then 3
    for seq in (2, 3):
        hubs[1].publish("a", seq, msg("a", seq))
    while not polls.empty():
        polls.get_nowait()
    fan.subscribe("other")  # makes the replica poll again, now the new hub
    assert await polls.get() == hubs[0].log.epoch  # answered at once: another epoch
    got.append(await sub.queue.get())
    await asyncio.sleep(0)  # let anything else delivered reach the queue
    runner.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await runner
    assert sub.queue.empty()
    assert [u.seq for u in got if u is not None] == [1, 2, 3]


class FakeSocket:
    application_state = WebSocketState.DISCONNECTED  # so closing it is a no-op

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send_json(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    async def send_text(self, text: str) -> None:
        self.sent.append(json.loads(text))


def event(seq: int) -> SimpleNamespace:
    return SimpleNamespace(
        seq=seq,
        data={},
        stage=None,
        message=None,
        type="stage_started",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


async def test_job_socket_fills_a_gap_from_the_database_and_skips_duplicates() -> None:
    job_id = uuid4()
    asked: list[int] = []

    class Repo:
        def get_job(self, _: Any) -> None:
            return None

        def list_events(self, _: Any, after: int, __: Any) -> list[SimpleNamespace]:
            asked.append(after)
            return [event(s) for s in (2, 3, 4) if s > after]

    sub = Subscriber(str(job_id), 8)
    ws = FakeSocket()
    for seq in (1, 4, 3, 5):  # 1 was sent on connect, 2 and 3 missed, 3 arrives late
        m = {**msg(str(job_id), seq), "event": "stage_started"}
        sub.offer(Update(seq, m, encode(m)))
    sub.queue.put_nowait(None)  # then the socket is closed as too slow: the pump ends
    await ws_routes._pump_job(ws, Repo(), job_id, sub, 1, 1.0)  # type: ignore[arg-type]
    assert asked == [1]  # one database read for the gap
    assert [m["seq"] for m in ws.sent] == [2, 3, 4, 5]
