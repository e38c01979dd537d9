"""Progress fan-out: a bounded in-memory log per channel, and the actor that serves it.

`ProgressLog` is a plain class (unit-tested without Ray). `ProgressHub` embeds it in an
async actor, after the pattern of Serve's own `LongPollHost`: every ingress replica runs
one listener that long-polls `listen(cursors, timeout_s)` for all the channels its sockets
follow and pushes to its own sockets. The hub's load therefore grows with the number of
ingress replicas, never with the number of sockets.

Channels: one per job (named by the job id, sequence numbers are the job's event sequence
numbers assigned by the coordinator, so they survive a hub restart) and `BROADCAST`
(sequence numbers assigned here; `epoch` changes when the hub restarts so a listener knows
to reset its cursor).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from typing import Any

import ray

from config.logging import LogConfig, setup_logging

BROADCAST = "broadcast"
logger = logging.getLogger("vpa.progress")
Message = dict[str, Any]


class ProgressLog:
    """Bounded per-channel logs of (seq, message), oldest first, each job's in `seq` order.

    Publishes can arrive out of order (an async actor does not execute calls in the order
    they were sent, and writers may publish from several threads), so a job's message
    that skips ahead is held back until the ones before it arrive, or until it has waited
    `hold_s`: then the gap is given up (the job's sockets fill it from the database) and
    what was held goes out in order. A message at or below what a job already released is a
    duplicate (or too late to go out in order) and is dropped. The broadcast log therefore
    carries every job's messages in that job's `seq` order, each once.
    """

    def __init__(
        self,
        per_job: int = 256,
        broadcast: int = 4096,
        max_channels: int = 10_000,
        hold_s: float = 0.5,
    ) -> None:
        self._per_job = per_job
        self._max_channels = max_channels
        self._hold_s = hold_s
        self._jobs: OrderedDict[str, deque[tuple[int, Message]]] = OrderedDict()
        self._held: dict[str, dict[int, tuple[float, Message]]] = {}
        self._broadcast: deque[tuple[int, Message]] = deque(maxlen=broadcast)
        self._broadcast_seq = 0
        self.epoch = uuid.uuid4().hex

    def publish(self, job_id: str, seq: int, message: Message, now: float = 0.0) -> bool:
        """Add a job's message at `now` (monotonic seconds); True if anything was released."""
        log = self._jobs.get(job_id)
        last = log[-1][0] if log else 0
        held = self._held.get(job_id, {})
        if seq <= last or seq in held:
            return False  # a duplicate, or later than an already given-up gap
        if seq != last + 1:
            self._held.setdefault(job_id, {})[seq] = (now + self._hold_s, message)
            return False
        self._release(job_id, seq, message)
        self._release_run(job_id)
        return True

    def release_due(self, now: float) -> bool:
        """Give up the gaps of messages held since `hold_s` before `now`; True if any went."""
        released = False
        due = [j for j, held in self._held.items() if min(d for d, _ in held.values()) <= now]
        for job_id in due:
            while (held := self._held.get(job_id)) and min(d for d, _ in held.values()) <= now:
                seq = min(held)
                logger.warning(
                    "job=%s gave up waiting for seq %d..%d",
                    job_id,
                    self.last_seq(job_id) + 1,
                    seq - 1,
                )
                self._release(job_id, seq, held.pop(seq)[1])
                self._release_run(job_id)
                released = True
        return released

    def next_deadline(self) -> float | None:
        """When the earliest held message is due, if any is held."""
        return min((d for held in self._held.values() for d, _ in held.values()), default=None)

    def _release_run(self, job_id: str) -> None:
        """Release the held messages that now follow on without a gap."""
        held = self._held.get(job_id)
        while held and (nxt := self._jobs[job_id][-1][0] + 1) in held:
            self._release(job_id, nxt, held.pop(nxt)[1])
        if held is not None and not held:
            del self._held[job_id]

    def _release(self, job_id: str, seq: int, message: Message) -> None:
        log = self._jobs.get(job_id)
        if log is None:
            log = self._jobs[job_id] = deque(maxlen=self._per_job)
            while len(self._jobs) > self._max_channels:
                evicted, _ = self._jobs.popitem(last=False)  # least recently published goes
                self._held.pop(evicted, None)
        else:
            self._jobs.move_to_end(job_id)
        log.append((seq, message))
        self._broadcast_seq += 1
        self._broadcast.append((self._broadcast_seq, message))

    def last_seq(self, channel: str) -> int:
        log = self._broadcast if channel == BROADCAST else self._jobs.get(channel)
        return log[-1][0] if log else 0

    def read(self, channel: str, after_seq: int) -> list[tuple[int, Message]]:
        log = self._broadcast if channel == BROADCAST else self._jobs.get(channel)
        if not log or log[-1][0] <= after_seq:
            return []
        if channel == BROADCAST:
            # broadcast numbers are contiguous: skip straight to the first unread one
            skip = max(after_seq - log[0][0] + 1, 0)
            return list(itertools.islice(log, skip, None))
        return [item for item in log if item[0] > after_seq]

    def read_many(self, cursors: dict[str, int]) -> dict[str, list[tuple[int, Message]]]:
        out: dict[str, list[tuple[int, Message]]] = {}
        for channel, after in cursors.items():
            items = self.read(channel, after)
            if items:
                out[channel] = items
        return out


class ProgressHubCore:
    """The hub's behaviour without Ray: long-polls over a `ProgressLog`, connection counts."""

    def __init__(self, log: ProgressLog | None = None, report_ttl_s: float = 30.0) -> None:
        self.log = log or ProgressLog()
        self._changed = asyncio.Event()
        self._reports: dict[str, tuple[float, dict[str, Any]]] = {}
        self._report_ttl_s = report_ttl_s
        self._timer: asyncio.TimerHandle | None = None

    def publish(self, job_id: str, seq: int, message: Message) -> None:
        self.publish_many([(job_id, seq, message)])

    def publish_many(self, items: list[tuple[str, int, Message]]) -> None:
        """Add messages (in the order given; the log orders each job's by seq) and wake the
        listeners once."""
        now = time.monotonic()
        released = False
        for job_id, seq, message in items:
            released = self.log.publish(job_id, seq, message, now) or released
        self._settle(released)

    def _release_due(self) -> None:
        self._timer = None
        self._settle(self.log.release_due(time.monotonic()))

    def _settle(self, released: bool) -> None:
        """Wake the listeners if anything was released; time the next held-back release."""
        if released:
            self._changed.set()
            self._changed = asyncio.Event()
        deadline = self.log.next_deadline()
        if deadline is not None and self._timer is None:
            loop = asyncio.get_running_loop()
            delay = max(deadline - time.monotonic(), 0.0)
            self._timer = loop.call_later(delay, self._release_due)

    async def listen(
        self, cursors: dict[str, int], timeout_s: float, epoch: str | None = None
    ) -> dict[str, Any]:
        """Wait until any channel has messages past its cursor, or the timeout.

        A negative cursor asks for the channel's head: the answer comes at once, in `heads`.
        A listener that names another `epoch` (it last heard a hub since restarted) is
        answered at once, so it resets its broadcast cursor without waiting out a poll.
        """
        if epoch is not None and epoch != self.log.epoch:
            return {"epoch": self.log.epoch, "channels": {}, "heads": {}}
        heads = {ch: self.log.last_seq(ch) for ch, after in cursors.items() if after < 0}
        if heads:
            return {"epoch": self.log.epoch, "channels": {}, "heads": heads}
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.log.read_many(cursors)
            remaining = deadline - time.monotonic()
            if found or remaining <= 0:
                return {"epoch": self.log.epoch, "channels": found, "heads": {}}
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    def report_connections(self, replica_id: str, counts: dict[str, Any]) -> None:
        self._reports[replica_id] = (time.monotonic(), counts)

    def connection_status(self) -> dict[str, Any]:
        now = time.monotonic()
        per_job: dict[str, int] = {}
        broadcast = health = 0
        replicas: dict[str, int] = {}
        for replica_id, (at, counts) in list(self._reports.items()):
            if now - at > self._report_ttl_s:
                del self._reports[replica_id]
                continue
            for job_id, n in counts.get("jobs", {}).items():
                per_job[job_id] = per_job.get(job_id, 0) + int(n)
            broadcast += int(counts.get("broadcast", 0))
            health += int(counts.get("health", 0))
            replicas[replica_id] = int(counts.get("total", 0))
        job_total = sum(per_job.values())
        return {
            "total_connections": job_total + broadcast + health,
            "job_connections": per_job,
            "job_connection_total": job_total,
            "broadcast_connections": broadcast,
            "health_connections": health,
            "replicas": replicas,
        }


class PublishQueue:
    """A writer's publishes, sent to the hub in the order they were made, batched.

    `put` may be called from any thread. One task (`run`) sends what has queued up in one
    `send` call and waits for it before sending more, so the hub gets a writer's messages
    in order; a failed send (the hub restarting) is retried with the same messages after
    `on_error` (the hub deduplicates), up to `max_attempts` times. At most `max_pending`
    wait: past that the oldest are dropped (the database has them; sockets fill gaps from
    it).
    """

    def __init__(
        self,
        send: Callable[[list[tuple[str, int, Message]]], Awaitable[Any]],
        on_error: Callable[[], None] = lambda: None,
        max_batch: int = 512,
        max_pending: int = 100_000,
        retry_s: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0, 2.0),
        max_attempts: int = 30,
    ) -> None:
        self._send = send
        self._on_error = on_error
        self._max_batch = max_batch
        self._pending: deque[tuple[str, int, Message]] = deque(maxlen=max_pending)
        self._retry_s = retry_s
        self._max_attempts = max_attempts
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def put(self, job_id: str, seq: int, message: Message) -> None:
        self._pending.append((job_id, seq, message))
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        failures = 0
        batch: list[tuple[str, int, Message]] = []
        while True:
            if not batch:
                self._wake.clear()
                if not self._pending:
                    await self._wake.wait()
                batch = [
                    self._pending.popleft() for _ in range(min(len(self._pending), self._max_batch))
                ]
            try:
                await self._send(batch)
            except Exception:
                failures += 1
                given_up = failures >= self._max_attempts
                logger.warning(
                    "publishing %d message(s) to the hub failed (%s)",
                    len(batch),
                    "given up" if given_up else "retrying",
                    exc_info=given_up,
                )
                self._on_error()
                if not given_up:
                    await asyncio.sleep(self._retry_s[min(failures, len(self._retry_s)) - 1])
                    continue
            failures = 0
            batch = []


class ProgressHubActor:
    """Named actor wrapping `ProgressHubCore` (use `ProgressHub`, its Ray actor class)."""

    def __init__(self, logs: LogConfig | None = None) -> None:
        if logs is not None:
            setup_logging(logs, role="progress-hub", required=False)
        self._core = ProgressHubCore()

    async def publish(self, job_id: str, seq: int, message: Message) -> None:
        self._core.publish(job_id, seq, message)

    async def publish_many(self, items: list[tuple[str, int, Message]]) -> None:
        self._core.publish_many(items)

    async def listen(
        self, cursors: dict[str, int], timeout_s: float, epoch: str | None = None
    ) -> dict[str, Any]:
        return await self._core.listen(cursors, timeout_s, epoch)

    async def report_connections(self, replica_id: str, counts: dict[str, Any]) -> None:
        self._core.report_connections(replica_id, counts)

    async def connection_status(self) -> dict[str, Any]:
        return self._core.connection_status()

    async def ping(self) -> str:
        return self._core.log.epoch


_HUB_OPTIONS: dict[str, Any] = {"num_cpus": 0, "max_concurrency": 10_000, "max_restarts": -1}
ProgressHub: Any = ray.remote(**_HUB_OPTIONS)(ProgressHubActor)
