"""Who used the CPU during a benchmark, from psutil: this benchmark's processes by role, and
everyone else on the machine, which is shared, so that a slow figure can be told apart from
a busy neighbour. Also: waiting for the machine to go quiet before a run."""

from __future__ import annotations

import dataclasses
import os
import time

import psutil

from bench.common import log

# (pid, part) -> (name, CPU seconds so far); `part` tells apart two entries of one process.
Snapshot = dict[tuple[int, str], tuple[str, float]]

_ROLES = {  # a substring of the command line -> the role reported
    "bench.baseline": "bare app (uvicorn)",
    "bench.media": "media server",
    "ffmpeg": "ffmpeg",
    "raylet": "raylet",
    "gcs_server": "gcs_server",
    "multiprocessing": "process pool workers",
}


@dataclasses.dataclass(frozen=True)
class Proc:
    ppid: int
    name: str
    cmd: str
    own_s: float  # user + system
    children_s: float  # of its reaped children (ffmpeg under a stage worker, a pool)


def process_table() -> dict[int, Proc]:
    """Every process on the machine that psutil can read now."""
    table: dict[int, Proc] = {}
    for proc in psutil.process_iter(["ppid", "name", "cmdline", "cpu_times"]):
        info = proc.info
        times = info["cpu_times"]
        if times is None or info["ppid"] is None:  # not readable: another user's, or gone
            continue
        table[proc.pid] = Proc(
            ppid=info["ppid"],
            name=info["name"] or "",
            cmd=" ".join(info["cmdline"] or []).strip(),
            own_s=times.user + times.system,
            children_s=times.children_user + times.children_system,
        )
    return table


def descendants(table: dict[int, Proc], root: int) -> set[int]:
    """`root` and every process below it."""
    tree = {root}
    grew = True
    while grew:
        new = {pid for pid, p in table.items() if p.ppid in tree and pid not in tree}
        tree |= new
        grew = bool(new)
    return tree


def machine_busy_s() -> float:
    """CPU seconds the whole machine has spent not idle (nor waiting on I/O), since boot."""
    t = psutil.cpu_times()
    return float(t.user + t.nice + t.system + t.irq + t.softirq + t.steal)


def role(cmd: str, stage_workers: str) -> str:
    """A process's role from its command line (Ray titles its workers "ray::<actor>");
    the workers that run stage tasks are one role, `stage_workers`."""
    if cmd.startswith("ray::"):
        name = cmd.split()[0]
        if name.startswith("ray::vpa-") or name in {"ray::IDLE", "ray::run_stage_task"}:
            return stage_workers
        return name
    return next((r for key, r in _ROLES.items() if key in cmd), "other Ray daemons")


def snapshot_all(stage_workers: str) -> Snapshot:
    """CPU seconds so far of every process on the machine: this benchmark's by role (the
    driver's own and its reaped children's apart), all others as "outside this benchmark"."""
    table = process_table()
    me = os.getpid()
    mine = descendants(table, me)
    out: Snapshot = {}
    for pid, p in table.items():
        if pid not in mine:
            out[(pid, "all")] = ("outside this benchmark", p.own_s + p.children_s)
        elif pid == me:
            out[(pid, "own")] = ("bench driver + clients", p.own_s)
            out[(pid, "children")] = ("process pool + its ffmpeg", p.children_s)
        else:
            out[(pid, "all")] = (role(p.cmd, stage_workers), p.own_s + p.children_s)
    return out


def used_by_name(before: Snapshot, after: Snapshot) -> dict[str, float]:
    """CPU seconds per name between two snapshots."""
    totals: dict[str, float] = {}
    for key, (name, seconds) in after.items():
        used = seconds - before.get(key, (name, 0.0))[1]
        if used > 0:
            totals[name] = totals.get(name, 0.0) + used
    return totals


def ranked(totals: dict[str, float]) -> str:
    """ "name 1.2, other 0.3", largest first, without the crumbs under 0.05 s."""
    order = sorted(totals.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{name} {sec:.1f}" for name, sec in order if sec >= 0.05)


@dataclasses.dataclass
class CpuSnapshot:
    """This benchmark's processes (by role) and the machine's busy seconds, at one time."""

    busy_s: float
    mine: Snapshot

    @classmethod
    def take(cls, stage_workers: str = "Ray stage tasks (incl. their ffmpeg)") -> CpuSnapshot:
        table = process_table()
        me = os.getpid()
        mine: Snapshot = {}
        for pid in descendants(table, me) & table.keys():
            p = table[pid]
            name = "bench driver (this process)" if pid == me else role(p.cmd, stage_workers)
            mine[(pid, "all")] = (name, p.own_s + p.children_s)
        return cls(busy_s=machine_busy_s(), mine=mine)


@dataclasses.dataclass
class CpuUse:
    """CPU seconds used between two snapshots: this benchmark's by process, and the rest."""

    wall_s: float
    machine_s: float
    by_name: dict[str, float]

    @classmethod
    def between(cls, before: CpuSnapshot, after: CpuSnapshot, wall_s: float) -> CpuUse:
        return cls(wall_s, after.busy_s - before.busy_s, used_by_name(before.mine, after.mine))

    @property
    def mine_s(self) -> float:
        return sum(self.by_name.values())

    @property
    def outside_s(self) -> float:
        return max(self.machine_s - self.mine_s, 0.0)

    def text(self) -> str:
        cores = os.cpu_count() or 1
        share = self.machine_s / max(self.wall_s * cores, 1e-9)
        return (
            f"{self.machine_s:.1f} CPU s on the machine in {self.wall_s:.1f} s wall ({share:.0%} "
            f"of {cores} cores): this benchmark {self.mine_s:.1f} ({ranked(self.by_name)}); "
            f"outside this benchmark {self.outside_s:.1f}"
        )


def other_raylets() -> list[int]:
    """Raylet processes running on this machine that this process did not start."""
    table = process_table()
    mine = descendants(table, os.getpid())
    return [pid for pid, p in table.items() if p.name == "raylet" and pid not in mine]


def busy_cores(sample_s: float = 5.0) -> float:
    """Cores the whole machine kept busy, on average, over the next `sample_s` seconds."""
    before = machine_busy_s()
    time.sleep(sample_s)
    return (machine_busy_s() - before) / sample_s


def wait_until_idle(max_s: float, busy_limit: float = 0.5, sample_s: float = 0.5) -> float:
    """Wait, at most `max_s`, until the machine keeps fewer than `busy_limit` cores busy
    over `sample_s`; the last figure."""
    deadline = time.monotonic() + max_s
    while (busy := busy_cores(sample_s)) >= busy_limit and time.monotonic() < deadline:
        pass
    return busy


def wait_for_quiet(max_wait_s: float, busy_limit: float, notes: list[str]) -> None:
    """Wait until no other Ray instance runs here and the machine is nearly idle (under
    `busy_limit` cores busy over 5 s), checking every 30 s, for at most `max_wait_s`."""
    deadline = time.monotonic() + max_wait_s
    said = ""
    while True:
        pids = other_raylets()
        busy = busy_cores()
        if not pids and busy < busy_limit:
            if said:
                log(f"the machine is quiet now ({busy:.2f} cores busy)")
            return
        why = (
            f"another Ray instance is running (raylet pid {pids})"
            if pids
            else f"other work keeps {busy:.2f} cores busy"
        )
        if time.monotonic() >= deadline:
            notes.append(
                f"after waiting {max_wait_s:.0f} s, {why}: it shared the cores with this run"
            )
            log(f"{why}; going on anyway")
            return
        if why.split(" (")[0] != said.split(" (")[0]:
            log(f"{why}; waiting (at most {max(deadline - time.monotonic(), 0):.0f} s more)")
        said = why
        time.sleep(min(25.0, max(deadline - time.monotonic(), 0.1)))
