"""The priority queue the coordinator dispatches from (a plain class, no Ray), and the
queue status the coordinator reports (`queue_report`).

Higher priority first; first in, first out within a priority (by the time the job was
queued, then by insertion order). Removal by id is O(1) (lazy deletion), so cancelling a
queued job never scans the heap.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from actors.running_job import RunningJob

STATUS_IDS = 100  # job ids per list in `queue_report`; its counts cover every job


@dataclass(order=True)
class _Entry:
    sort_key: tuple[int, float, int]
    job_id: str = field(compare=False)
    priority: int = field(compare=False)
    removed: bool = field(default=False, compare=False)


class JobQueue:
    """Max-priority queue of job ids with FIFO order inside a priority."""

    def __init__(self) -> None:
        self._heap: list[_Entry] = []
        self._entries: dict[str, _Entry] = {}
        self._counter = itertools.count()

    def push(self, job_id: str, priority: int, queued_at: datetime | None = None) -> None:
        """Add a job, or move it if it is already queued (its old place is dropped)."""
        self.remove(job_id)
        ts = queued_at.timestamp() if queued_at is not None else float("inf")
        entry = _Entry((-priority, ts, next(self._counter)), job_id, priority)
        self._entries[job_id] = entry
        heapq.heappush(self._heap, entry)

    def pop(self) -> str | None:
        """The next job to run, or None when the queue is empty."""
        while self._heap:
            entry = heapq.heappop(self._heap)
            if not entry.removed:
                del self._entries[entry.job_id]
                return entry.job_id
        return None

    def remove(self, job_id: str) -> bool:
        entry = self._entries.pop(job_id, None)
        if entry is None:
            return False
        entry.removed = True
        return True

    def clear(self) -> list[str]:
        """Empty the queue and return the ids it held, in dispatch order."""
        ids = self.ordered()
        self._heap.clear()
        self._entries.clear()
        return ids

    def ordered(self, limit: int | None = None) -> list[str]:
        """Queued ids in the order they would be dispatched (the first `limit` of them)."""
        return [e.job_id for e in self._first(self._entries.values(), limit)]

    def by_priority(self, limit: int | None = None) -> dict[int, list[str]]:
        """Queued ids by priority, each list in dispatch order (its first `limit`)."""
        grouped: dict[int, list[_Entry]] = {}
        for entry in self._entries.values():
            grouped.setdefault(entry.priority, []).append(entry)
        return {p: [e.job_id for e in self._first(g, limit)] for p, g in grouped.items()}

    def count_by_priority(self) -> dict[int, int]:
        """How many jobs are queued at each priority."""
        return dict(Counter(e.priority for e in self._entries.values()))

    @staticmethod
    def _first(entries: Iterable[_Entry], limit: int | None) -> list[_Entry]:
        # A partial sort: with 10,000 jobs queued, a status showing the first 100 is cheap.
        return sorted(entries) if limit is None else heapq.nsmallest(limit, entries)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._entries

    def __len__(self) -> int:
        return len(self._entries)


def queue_report(
    queue: JobQueue,
    delayed: Collection[str],
    running: Iterable[RunningJob],
    *,
    free_slots: int,
    limit: int,
    queue_running: bool,
) -> dict[str, Any]:
    """The coordinator's queue status: counts, the first `STATUS_IDS` ids of each list
    (`delayed`: the jobs waiting out a retry's backoff), the running attempts."""
    ordered = sorted(running, key=lambda r: r.slot)
    return {
        "queue_running": queue_running,
        "max_concurrent_jobs": limit,
        "queued": len(queue) + len(delayed),
        "queued_count_by_priority": {
            str(k): v for k, v in sorted(queue.count_by_priority().items(), reverse=True)
        },
        "queued_by_priority": {
            str(k): v for k, v in sorted(queue.by_priority(STATUS_IDS).items(), reverse=True)
        },
        "queued_order": queue.ordered(STATUS_IDS),
        "waiting_for_retry": sorted(delayed)[:STATUS_IDS],
        "running": [
            {"job_id": r.job_id, "stage": r.stage, "slot": r.slot, "attempt": r.attempt}
            for r in ordered
        ],
        "running_count": len(ordered),
        "available_slots": free_slots,
    }
