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
import time
import uuid
from collections import OrderedDict, deque
from typing import Any

import ray

from config.logging import LogConfig, setup_logging

BROADCAST = "broadcast"
Message = dict[str, Any]


class ProgressLog:
    """Bounded per-channel logs of (seq, message), oldest first."""

    def __init__(self, per_job: int = 256, broadcast: int = 4096, max_channels: int = 10_000):
        self._per_job = per_job
        self._max_channels = max_channels
        self._jobs: OrderedDict[str, deque[tuple[int, Message]]] = OrderedDict()
        self._broadcast: deque[tuple[int, Message]] = deque(maxlen=broadcast)
        self._broadcast_seq = 0
        self.epoch = uuid.uuid4().hex

    def publish(self, job_id: str, seq: int, message: Message) -> bool:
        """Add a job's message; False if the channel already holds that sequence number.

        Calls can arrive out of order (an async actor does not promise execution order), so
        an older message is inserted in its place rather than dropped.
        """
        log = self._jobs.get(job_id)
        if log is None:
            log = deque(maxlen=self._per_job)
            self._jobs[job_id] = log
            while len(self._jobs) > self._max_channels:
                self._jobs.popitem(last=False)  # least recently published channel goes
        else:
            self._jobs.move_to_end(job_id)
        if not log or log[-1][0] < seq:
            log.append((seq, message))
        else:
            if log[0][0] > seq and len(log) == log.maxlen:
                return False  # older than anything kept: the database has it
            if any(item[0] == seq for item in log):
                return False
            items = sorted([*log, (seq, message)], key=lambda item: item[0])
            log.clear()
            log.extend(items[-self._per_job :])
        self._broadcast_seq += 1
        self._broadcast.append((self._broadcast_seq, message))
        return True

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

    def publish(self, job_id: str, seq: int, message: Message) -> None:
        if self.log.publish(job_id, seq, message):
            self._changed.set()
            self._changed = asyncio.Event()

    async def listen(self, cursors: dict[str, int], timeout_s: float) -> dict[str, Any]:
        """Wait until any channel has messages past its cursor, or the timeout.

        A negative cursor asks for the channel's head: the answer comes at once, in `heads`.
        """
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


class ProgressHubActor:
    """Named actor wrapping `ProgressHubCore` (use `ProgressHub`, its Ray actor class)."""

    def __init__(self, logs: LogConfig | None = None) -> None:
        if logs is not None:
            setup_logging(logs, role="progress-hub", required=False)
        self._core = ProgressHubCore()

    async def publish(self, job_id: str, seq: int, message: Message) -> None:
        self._core.publish(job_id, seq, message)

    async def listen(self, cursors: dict[str, int], timeout_s: float) -> dict[str, Any]:
        return await self._core.listen(cursors, timeout_s)

    async def report_connections(self, replica_id: str, counts: dict[str, Any]) -> None:
        self._core.report_connections(replica_id, counts)

    async def connection_status(self) -> dict[str, Any]:
        return self._core.connection_status()

    async def ping(self) -> str:
        return self._core.log.epoch


_HUB_OPTIONS: dict[str, Any] = {"num_cpus": 0, "max_concurrency": 10_000, "max_restarts": -1}
ProgressHub: Any = ray.remote(**_HUB_OPTIONS)(ProgressHubActor)
