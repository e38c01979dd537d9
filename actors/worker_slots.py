"""`WorkerSlots`: the numbered slots that bound how many jobs run at once.

A dispatched job takes the lowest free slot and gives it back when its attempt ends. The
limit can change while jobs run (a redeploy with another MAX_CONCURRENT_JOBS): a slot at or
past a lowered limit is not given out again once its job ends.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from actors.running_job import RunningJob


class WorkerSlots:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._free = list(range(limit))
        self._last_job: dict[int, tuple[str, datetime]] = {}

    def __len__(self) -> int:
        """The number of free slots."""
        return len(self._free)

    def take(self) -> int:
        """The lowest free slot, now taken (there must be one)."""
        return self._free.pop(0)

    def untake(self, slot: int) -> None:
        """Give back a slot taken for a job that did not start after all."""
        self._free.insert(0, slot)

    def release(self, slot: int, job_id: str, at: datetime) -> None:
        """Give back the slot of an attempt that ended at `at`."""
        self._last_job[slot] = (job_id, at)
        if slot < self.limit:  # the limit may have shrunk meanwhile
            self._free.append(slot)
            self._free.sort()

    def resize(self, limit: int, busy: Iterable[int]) -> None:
        """Apply a new limit; the `busy` slots stay with their jobs."""
        self.limit = limit
        taken = set(busy)
        self._free = [s for s in range(limit) if s not in taken]

    def report(self, running: Iterable[RunningJob], now: datetime) -> list[dict[str, Any]]:
        """Each slot up to the limit: busy with which job and stage, or idle since when."""
        by_slot = {r.slot: r for r in running}
        out = []
        for slot in range(self.limit):
            run = by_slot.get(slot)
            last = self._last_job.get(slot)
            heartbeat = run.last_heartbeat if run else (last[1] if last else now)
            out.append(
                {
                    "id": f"slot-{slot}",
                    "kind": "job_slot",
                    "state": "busy" if run else "idle",
                    "current_job": run.job_id if run else None,
                    "current_stage": run.stage if run else None,
                    "last_heartbeat": heartbeat.isoformat().replace("+00:00", "Z"),
                    "last_job": last[0] if last else None,
                }
            )
        return out
