"""Pipeline benchmark: one full_processing job through vpa beside its stages run alone.

Run: `PYTHONPATH=. HF_HUB_OFFLINE=1 .venv/bin/python bench/pipeline.py [--minutes 10]
[--size 1280x720] [--quick] [--runs N]` (`--quick`: a 2-minute video, for a smoke run;
`--runs N`: N rounds of both runs, the table giving medians). A script, never a test. It
prints a markdown report; `--write` also puts it in bench/README-figures.md (replacing this
script's earlier section there).

The video: a testsrc2 picture at `--size`, 25 fps, a keyframe every 2 s (`-g 50`), h264
`-preset ultrafast` + AAC, whose sound is the speech clip tests/assets/speech_en.ogg looped
to `--minutes` (so transcription and analysis get real words). It is made once and cached
under tmp/bench-cache/ (gitignored), and served over HTTP by the tests' loopback media
server (tests/fixtures/media.py, in a subprocess), so both runs download it with yt-dlp.

What it measures, with the same job options (`OPTIONS`: 5 clips of 30 s) on both sides:
1. stages alone: each stage of the full_processing chain (fetch, audio, transcribe, analyze,
   clips, subtitles) called in this process with `pipeline.stages.run_stage`, in order,
   each consuming the previous one's checkpoint; the model stages use an in-process
   `ModelServices` that does what the Transcriber and Analyzer deployments do per request,
   with the models loaded once before timing;
2. through the service: Ray (num_cpus = this machine's cores), Serve and the vpa app with
   its model deployments (temp SQLite database and artifact directory); a 20 s
   full_processing warm-up job (skipped with `--cold`: a service that has run a job has
   its stage-task worker processes and replicas warm), then one full_processing job
   submitted over HTTP and polled every 0.2 s until completed; the wall
   time from the POST to the first poll that sees it completed, and the job's
   `stage_timings` (the coordinator's seconds per stage: Ray task submit to result).

The table gives, per stage, alone vs in the service; the sums; the service job's wall time
as a multiple of real time (wall / video duration); and the orchestration overhead =
service wall / sum of the stages alone - 1 (target: at most 10%). Under it: where the
service's extra time went (queueing, gaps between stages, inside the stage tasks) and the
CPU seconds used on the machine during each run, this benchmark's and everyone else's.

This machine is shared: before each run the script waits (up to `--wait-quiet` seconds)
until no other Ray instance is running and other work keeps less than `--busy-limit` cores
busy; the report gives the CPU seconds others used during each run all the same.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import hashlib
import itertools
import json
import logging
import math
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Run as `python bench/pipeline.py`, Python puts bench/ first on sys.path, where this very
# file would shadow the `pipeline` package: put the repository root there instead.
_HERE = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(_HERE)]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import httpx  # noqa: E402

from bench.common import serve_media, tree_text  # noqa: E402

SPEECH = ROOT / "tests" / "assets" / "speech_en.ogg"
CACHE_DIR = ROOT / "tmp" / "bench-cache"  # "/tmp/" is in .gitignore
FIGURES_FILE = ROOT / "bench" / "README-figures.md"
SECTION_BEGIN = "<!-- bench/pipeline.py: begin -->"
SECTION_END = "<!-- bench/pipeline.py: end -->"
JOB_TYPE = "full_processing"
OPTIONS: dict[str, Any] = {"clip_duration": 30, "max_clips": 5, "min_confidence": 0.0}
WARM_UP_MINUTES = 20 / 60  # a 20 s video
WARM_UP_OPTIONS: dict[str, Any] = {"clip_duration": 8, "max_clips": 1, "min_confidence": 0.0}
FPS = 25
GOP = 50  # a keyframe every 2 s
NAMESPACE = "vpa-bench-pipeline"
POLL_S = 0.2
TARGET_OVERHEAD = 0.10
TERMINAL = frozenset({"completed", "failed", "cancelled"})


# ============================================================================ helpers


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def parse_ts(value: str) -> float:
    """ISO 8601 (with "Z") to epoch seconds."""
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def fmt_s(seconds: float | None) -> str:
    return "n/a" if seconds is None or math.isnan(seconds) else f"{seconds:.2f}"


def fmt_pct(fraction: float | None) -> str:
    return "n/a" if fraction is None or math.isnan(fraction) else f"{fraction:+.1%}"


def load_text() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def machine_text() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 2**20:.0f} GiB memory"
    return (
        f"{os.cpu_count()} cores ({model}){memory}, Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )


# ============================================================================ CPU accounting

_TICKS = os.sysconf("SC_CLK_TCK")


def _proc_table() -> dict[int, tuple[int, str, float]]:
    """pid -> (parent pid, name, CPU seconds of it and its reaped children)."""
    table: dict[int, tuple[int, str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        comm = stat[stat.find("(") + 1 : stat.rfind(")")]
        f = stat[stat.rfind(")") + 2 :].split()
        cpu = sum(int(x) for x in f[11:15]) / _TICKS
        table[int(entry.name)] = (int(f[1]), _process_name(comm, cmd.strip()), cpu)
    return table


def _process_name(comm: str, cmd: str) -> str:
    if cmd.startswith("ray::"):
        name = cmd.split()[0]
        if name.startswith("ray::vpa-") or name in {"ray::IDLE", "ray::run_stage_task"}:
            return "Ray stage tasks (incl. their ffmpeg)"
        return name
    if "--serve-media" in cmd:
        return "media server"
    if comm in {"raylet", "gcs_server", "ffmpeg"}:
        return comm
    return "other Ray daemons"


def _machine_busy_s() -> float:
    """CPU seconds the whole machine has spent not idle, since boot."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(x) for x in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / _TICKS


@dataclasses.dataclass
class CpuSnapshot:
    busy_s: float
    mine: dict[tuple[int, str], float]  # (pid, name) -> CPU s of this benchmark's processes

    @classmethod
    def take(cls) -> CpuSnapshot:
        table = _proc_table()
        me = os.getpid()
        tree = {me}
        grew = True
        while grew:
            new = {pid for pid, (ppid, _, _) in table.items() if ppid in tree and pid not in tree}
            tree |= new
            grew = bool(new)
        mine: dict[tuple[int, str], float] = {}
        for pid in tree:
            if pid in table:
                _, name, cpu = table[pid]
                mine[(pid, "bench driver (this process)" if pid == me else name)] = cpu
        return cls(busy_s=_machine_busy_s(), mine=mine)


@dataclasses.dataclass
class CpuUse:
    """CPU seconds used between two snapshots: this benchmark's by process, and the rest."""

    wall_s: float
    machine_s: float
    by_name: dict[str, float]

    @classmethod
    def between(cls, before: CpuSnapshot, after: CpuSnapshot, wall_s: float) -> CpuUse:
        by_name: dict[str, float] = {}
        for key, cpu in after.mine.items():
            used = cpu - before.mine.get(key, 0.0)
            if used > 0:
                by_name[key[1]] = by_name.get(key[1], 0.0) + used
        return cls(wall_s, after.busy_s - before.busy_s, by_name)

    @property
    def mine_s(self) -> float:
        return sum(self.by_name.values())

    @property
    def outside_s(self) -> float:
        return max(self.machine_s - self.mine_s, 0.0)

    def text(self) -> str:
        ranked = ", ".join(
            f"{name} {sec:.1f}"
            for name, sec in sorted(self.by_name.items(), key=lambda kv: -kv[1])
            if sec >= 0.05
        )
        cores = os.cpu_count() or 1
        share = self.machine_s / max(self.wall_s * cores, 1e-9)
        return (
            f"{self.machine_s:.1f} CPU s on the machine in {self.wall_s:.1f} s wall ({share:.0%} "
            f"of {cores} cores): this benchmark {self.mine_s:.1f} ({ranked}); outside this "
            f"benchmark {self.outside_s:.1f}"
        )


# ============================================================================ other Ray


def other_raylets() -> list[int]:
    """Raylet processes running on this machine that this process did not start."""
    table = _proc_table()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if comm != "raylet":
            continue
        pid, parent = int(entry.name), table.get(int(entry.name), (0, "", 0.0))[0]
        while parent > 1 and parent != os.getpid():
            parent = table.get(parent, (0, "", 0.0))[0]
        if parent != os.getpid():
            found.append(pid)
    return found


def busy_cores(sample_s: float = 5.0) -> float:
    """Cores the whole machine kept busy, on average, over the next `sample_s` seconds."""
    before = _machine_busy_s()
    time.sleep(sample_s)
    return (_machine_busy_s() - before) / sample_s


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


# ============================================================================ the video


def ffmpeg(*args: str) -> None:
    from pipeline.media.ffmpeg import ffmpeg_exe

    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args],
        check=True,
        stdin=subprocess.DEVNULL,
    )


def make_video(minutes: float, size: str) -> Path:
    """The benchmark video (cached): testsrc2 + the speech clip looped, h264/AAC in MP4."""
    from pipeline.media.probe import probe

    duration_s = round(minutes * 60.0, 3)
    speech_tag = hashlib.sha256(SPEECH.read_bytes()).hexdigest()[:8]
    name = f"testsrc2-{size}-{FPS}fps-g{GOP}-{duration_s:g}s-speech{speech_tag}.mp4"
    path = CACHE_DIR / name
    if path.is_file():
        with contextlib.suppress(Exception):
            info = probe(path)
            if info.duration_s and abs(info.duration_s - duration_s) < 1.0:
                return path
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.stem + ".part.mp4")
    log(f"making the {duration_s:g} s {size} video {path} (once; it is cached) ...")
    t0 = time.perf_counter()
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={FPS}",
        "-stream_loop", "-1", "-i", str(SPEECH),
        "-map", "0:v:0", "-map", "1:a:0", "-t", f"{duration_s:g}",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        "-g", str(GOP), "-keyint_min", str(GOP), "-sc_threshold", "0",
        "-c:a", "aac", "-b:a", "96k", "-ar", "44100", "-ac", "2",
        str(part),
    )  # fmt: skip
    part.replace(path)
    log(f"  made in {time.perf_counter() - t0:.0f} s, {path.stat().st_size / 2**20:.0f} MiB")
    return path


# ============================================================================ media server


@contextlib.contextmanager
def media_server(root: Path) -> Iterator[str]:
    """A media server subprocess serving `root`; yields its base URL."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--serve-media", str(root)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        if not base_url.startswith("http://"):
            raise RuntimeError(f"the media server did not start (said {base_url!r})")
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# ============================================================================ stages alone


class LocalModels:
    """`ModelServices` in this process, doing per call what the Transcriber and Analyzer
    deployments do per request (same option mapping, same engine settings), with the
    models loaded once, here, before anything is timed."""

    def __init__(self, settings: Any) -> None:
        from pipeline.analysis.nlp_models import load_models
        from pipeline.transcription.cache import load_engine

        self.work_dir = Path(".")  # where the stages run (set by run_alone)
        t0 = time.perf_counter()
        # As deployments.transcriber.Transcriber: its ModelCache loader, 4 workers per model.
        self.engine = load_engine(
            settings.whisper_engine, settings.whisper_model, "cpu", None, num_workers=4
        )
        self.whisper_load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        self.nlp = load_models(
            spacy_model=settings.spacy_model,
            sentiment_model=settings.sentiment_model,
            device="cpu",
        )
        self.nlp_load_s = time.perf_counter() - t0

    def transcribe(
        self, audio_key: str, options: dict[str, Any], progress: Any, cancel: Any
    ) -> dict[str, Any]:
        from deployments.transcriber import transcribe_options
        from pipeline.transcription.engine import transcribe_audio

        # The stages name the audio by its store key (<job id>/<file>); alone, every stage
        # works in one directory, where the file is.
        audio_path = str(self.work_dir / Path(audio_key).name)
        result = transcribe_audio(
            audio_path, self.engine, transcribe_options(options), progress, cancel
        )
        return result.to_dict()

    def analyze(
        self,
        text: str,
        segments: list[dict[str, Any]],
        options: dict[str, Any],
        language: str | None,
        progress: Any,
        cancel: Any,
    ) -> dict[str, Any]:
        from deployments.analyzer import analyze_transcript

        return analyze_transcript(self.nlp, text, segments, options, language, progress)


@dataclasses.dataclass
class AloneRun:
    timings: dict[str, float]
    load_note: str
    results: dict[str, Any]
    cpu: CpuUse
    first_progress: dict[str, float]  # per stage: seconds from its start to its first report


def run_alone(url: str, options: dict[str, Any], work_dir: Path, settings: Any) -> AloneRun:
    from pipeline.options import FetchOptions
    from pipeline.stages import STAGE_CHAINS, StageInput, run_stage
    from pipeline.types import CancelToken

    log("stages alone: loading the models ...")
    models = LocalModels(settings)
    models.work_dir = work_dir
    load_note = (
        f"models loaded before timing: {settings.whisper_engine} {settings.whisper_model} "
        f"in {models.whisper_load_s:.1f} s, spaCy {settings.spacy_model} + embeddings + "
        f"sentiment in {models.nlp_load_s:.1f} s"
    )
    job_id = str(uuid.uuid4())
    fetch_options = FetchOptions(
        allow_private_urls=True,
        max_download_bytes=settings.max_download_bytes,
        max_media_duration_s=settings.max_media_duration_s,
    )
    checkpoints: dict[str, dict[str, Any]] = {}
    timings: dict[str, float] = {}
    results: dict[str, Any] = {}
    first_progress: dict[str, float] = {}
    cpu0, t_all = CpuSnapshot.take(), time.perf_counter()
    for stage in STAGE_CHAINS[JOB_TYPE]:
        inp = StageInput(
            job_id=job_id,
            url=url,
            options=dict(options),
            work_dir=str(work_dir),
            checkpoints=dict(checkpoints),
            fetch_options=fetch_options,
            job_type=JOB_TYPE,
        )
        t0 = time.perf_counter()

        def progress(fraction: float, message: str, stage: str = stage, t0: float = t0) -> None:
            first_progress.setdefault(stage, time.perf_counter() - t0)

        output = run_stage(stage, inp, progress, CancelToken(), models)
        timings[stage] = time.perf_counter() - t0
        checkpoints[stage] = output.checkpoint
        results.update(output.job_fields)
        log(f"  {stage}: {timings[stage]:.2f} s")
    cpu = CpuUse.between(cpu0, CpuSnapshot.take(), time.perf_counter() - t_all)
    del models
    gc.collect()
    return AloneRun(timings, load_note, results, cpu, first_progress)


# ============================================================================ the service


@dataclasses.dataclass
class ServiceRun:
    wall_s: float | None = None
    job: dict[str, Any] = dataclasses.field(default_factory=dict)
    events: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    posted_at: float = 0.0  # epoch seconds just before the POST
    seen_at: float = 0.0  # epoch seconds of the poll that saw the job terminal
    deploy_s: float = 0.0
    deployments: list[str] = dataclasses.field(default_factory=list)
    cpu: CpuUse | None = None
    problems: list[str] = dataclasses.field(default_factory=list)


def service_settings(tmp: Path) -> Any:
    """Like tests/integration/conftest.make_settings, with the production queue timings."""
    from config.settings import Settings
    from serve_app import absolute_paths

    return absolute_paths(
        Settings(
            _env_file=None,
            database_url=f"sqlite:///{tmp / 'vpa.db'}",
            artifact_dir=str(tmp / "artifacts"),
            log_file=str(tmp / "vpa.log"),
            allow_private_urls=True,
            ray_namespace=NAMESPACE,
        )
    )


def warm_up(client: httpx.Client, url: str) -> float:
    """One short full_processing job before the measured one: a running service has its
    stage-task workers and model replicas warm; a cold start is a once-per-cluster cost."""
    t0 = time.perf_counter()
    body = {"youtube_url": url, "job_type": JOB_TYPE, "options": WARM_UP_OPTIONS}
    job_id = client.post("/api/v1/jobs/", json=body).json()["id"]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if client.get(f"/api/v1/jobs/{job_id}").json()["status"] in TERMINAL:
            break
        time.sleep(POLL_S)
    return time.perf_counter() - t0


def run_service(
    url: str,
    body: dict[str, Any],
    settings: Any,
    num_cpus: int,
    timeout_s: float,
    warm_url: str | None = None,
) -> ServiceRun:
    """Ray + Serve + vpa with models; one job, timed from POST to completed. Always shuts
    Serve and Ray down before returning."""
    import ray
    from ray import serve

    from serve_app import app_from_settings

    out = ServiceRun()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    t_deploy = time.perf_counter()
    try:
        log(f"service: starting Ray (num_cpus={num_cpus}), Serve and vpa with models ...")
        ray.init(
            num_cpus=num_cpus,
            namespace=NAMESPACE,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
            runtime_env={"env_vars": {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}},
        )
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(app_from_settings(settings, None, with_models=True), name="vpa", route_prefix="/")
        out.deployments = sorted(serve.status().applications["vpa"].deployments)
        with httpx.Client(base_url=base, timeout=60.0) as client:
            deadline = time.monotonic() + 120
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if client.get("/health").status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError("vpa did not become healthy in 120 s")
                time.sleep(0.2)
            out.deploy_s = time.perf_counter() - t_deploy
            log(f"  healthy after {out.deploy_s:.1f} s ({', '.join(out.deployments)})")
            if warm_url is not None:
                log(f"  warm-up job done in {warm_up(client, warm_url):.1f} s")
            time.sleep(2.0)  # let start-up work (replica health checks, prestarted workers) settle

            cpu0 = CpuSnapshot.take()
            t0 = time.perf_counter()
            out.posted_at = time.time()
            r = client.post("/api/v1/jobs/", json=body)
            if r.status_code not in (200, 201):
                raise RuntimeError(f"POST /api/v1/jobs/ -> {r.status_code}: {r.text[:500]}")
            job_id = r.json()["id"]
            log(f"  job {job_id} submitted; polling every {POLL_S} s ...")
            job: dict[str, Any] = {}
            last_stage, deadline = None, time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                job = client.get(f"/api/v1/jobs/{job_id}").json()
                if job["status"] in TERMINAL:
                    break
                if job.get("current_stage") != last_stage:
                    last_stage = job.get("current_stage")
                    log(f"  {last_stage} ... ({job.get('progress', 0):.0f}%)")
                time.sleep(POLL_S)
            wall = time.perf_counter() - t0
            out.seen_at = time.time()
            out.cpu = CpuUse.between(cpu0, CpuSnapshot.take(), wall)
            out.job = job
            out.events = list(client.get(f"/api/v1/jobs/{job_id}/events").json())
            if job.get("status") == "completed":
                out.wall_s = wall
                log(f"  completed in {wall:.2f} s")
            else:
                out.problems.append(
                    f"the service job ended {job.get('status', 'unknown')!r} after {wall:.1f} s: "
                    f"{job.get('error_code')}: {job.get('error_message')}"
                )
                log(out.problems[-1])
    except Exception as exc:
        out.problems.append(f"service run aborted: {type(exc).__name__}: {exc}")
        log(out.problems[-1])
    finally:
        log("service: shutting Serve and Ray down")
        with contextlib.suppress(Exception):
            serve.shutdown()
        with contextlib.suppress(Exception):
            ray.shutdown()
    return out


def breakdown(run: ServiceRun, chain: tuple[str, ...]) -> dict[str, float]:
    """Where the service job's wall time went, from its event log (server clock)."""
    job = run.job
    parts: dict[str, float] = {}
    if not job.get("started_at") or not job.get("completed_at"):
        return parts
    started = [e for e in run.events if e["type"] == "stage_started"]
    completed = [e for e in run.events if e["type"] == "stage_completed"]
    done_event = next((e for e in run.events if e["type"] == "completed"), None)
    if not started or not completed or done_event is None:
        return parts
    first = parse_ts(started[0]["created_at"])
    parts["POST → first stage started (HTTP, coordinator, dispatch)"] = first - run.posted_at
    stage_sum = sum(float(v) for v in job.get("stage_timings", {}).values())
    ends = {e["stage"]: parse_ts(e["created_at"]) for e in completed}
    starts = {e["stage"]: parse_ts(e["created_at"]) for e in started}
    gaps = sum(
        starts[b] - ends[a] for a, b in itertools.pairwise(chain) if a in ends and b in starts
    )
    in_stage = sum(ends[s] - starts[s] for s in chain if s in ends and s in starts)
    parts["stage started → completed events, summed"] = in_stage
    parts["  of which stage_timings (Ray task submit → result)"] = stage_sum
    parts["  of which around the tasks (event writes, artifact registration)"] = (
        in_stage - stage_sum
    )
    parts["gaps between one stage's completed and the next one's started"] = gaps
    last = parse_ts(done_event["created_at"])
    parts["last stage completed → job completed"] = last - max(ends.values())
    parts["job completed → seen by the client's poll"] = run.seen_at - last
    return parts


def first_progress_latency(run: ServiceRun, chain: tuple[str, ...]) -> dict[str, float]:
    """Per stage: seconds from its stage_started event to its first progress event."""
    starts: dict[str, float] = {}
    first: dict[str, float] = {}
    for event in run.events:
        stage = event.get("stage")
        if stage is None:
            continue
        if event["type"] == "stage_started":
            starts.setdefault(stage, parse_ts(event["created_at"]))
        elif event["type"] == "progress":
            first.setdefault(stage, parse_ts(event["created_at"]))
    return {s: first[s] - starts[s] for s in chain if s in starts and s in first}


# ============================================================================ report


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def stage_timings(run: ServiceRun) -> dict[str, float]:
    return {k: float(v) for k, v in (run.job.get("stage_timings") or {}).items()}


def report(
    args: argparse.Namespace,
    video: Path,
    video_s: float,
    video_info: str,
    chain: tuple[str, ...],
    alones: list[AloneRun],
    services: list[ServiceRun],
    notes: list[str],
) -> str:
    done = [run for run in services if run.wall_s is not None]
    n_a, n_s = len(alones), len(done)
    of = "" if max(n_a, n_s) <= 1 else f", median of {n_a} / {n_s} runs"
    lines = [
        "# Pipeline figures (bench/pipeline.py)",
        "",
        f"Run {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}: "
        f"`{' '.join(['bench/pipeline.py', *sys.argv[1:]])}` on {tree_text()}",
        "",
        f"- machine: {machine_text()}; load average at the start {notes_load(notes)}",
        f"- video: {video.name}, {video_info}",
        f"- job: {JOB_TYPE} ({' → '.join(chain)}), options {json.dumps(OPTIONS)} (other "
        "options at their defaults)",
        "",
        f"| stage | alone, s{of} | in the service (stage_timings), s | service - alone, s |",
        "|---|---|---|---|",
    ]
    for stage in chain:
        a = median([run.timings[stage] for run in alones if stage in run.timings])
        s = median([t[stage] for run in done if stage in (t := stage_timings(run))])
        diff = s - a if a is not None and s is not None else None
        lines.append(f"| {stage} | {fmt_s(a)} | {fmt_s(s)} | {fmt_s(diff)} |")
    alone_sums = [sum(run.timings.values()) for run in alones if len(run.timings) == len(chain)]
    service_sums = [sum(stage_timings(run).values()) for run in done]
    sum_alone, sum_service = median(alone_sums), median(service_sums)
    diff = sum_service - sum_alone if sum_alone is not None and sum_service is not None else None
    lines.append(
        f"| **sum of the stages** | **{fmt_s(sum_alone)}** | **{fmt_s(sum_service)}** | "
        f"{fmt_s(diff)} |"
    )
    wall = median([run.wall_s for run in done if run.wall_s is not None])
    lines.append(f"| **service job wall time** (POST → seen completed) | | **{fmt_s(wall)}** | |")
    lines.append("")

    def xrt(seconds: float | None) -> str:
        return "n/a" if seconds is None else f"{seconds / video_s:.3f}x real time"

    overhead = wall / sum_alone - 1 if wall is not None and sum_alone else None
    verdict = ""
    if overhead is not None:
        verdict = (
            " (within the 10% target)" if overhead <= TARGET_OVERHEAD else " (over the 10% target)"
        )
    lines += [
        f"- video duration: {video_s:.1f} s",
        f"- service job wall time: {fmt_s(wall)} s = **{xrt(wall)}**; stages alone summed: "
        f"{fmt_s(sum_alone)} s = {xrt(sum_alone)}",
        f"- **orchestration overhead** (service wall / sum of stages alone - 1): "
        f"**{fmt_pct(overhead)}**{verdict}",
    ]
    if alone_sums and done and (len(alone_sums) > 1 or len(done) > 1):
        best = min(r.wall_s for r in done if r.wall_s is not None) / min(alone_sums) - 1
        lines.append(f"- best service wall / best sum of stages alone - 1: {fmt_pct(best)}")
    for i in range(max(len(alones), len(services))):
        a_run = alones[i] if i < len(alones) else None
        s_run = services[i] if i < len(services) else None
        parts = [f"- run {i + 1}:"]
        if a_run:
            cpu = a_run.cpu
            parts.append(
                f"alone {sum(a_run.timings.values()):.2f} s (others used "
                f"{cpu.outside_s:.1f} CPU s meanwhile);"
            )
        if s_run and s_run.wall_s is not None:
            outside = s_run.cpu.outside_s if s_run.cpu else math.nan
            parts.append(
                f"service {s_run.wall_s:.2f} s, its stages {sum(stage_timings(s_run).values()):.2f}"
                f" s (others used {outside:.1f} CPU s meanwhile)"
            )
            if a_run:
                parts.append(
                    f"; overhead {fmt_pct(s_run.wall_s / sum(a_run.timings.values()) - 1)}"
                )
        elif s_run:
            parts.append("service: no result")
        lines.append(" ".join(parts).replace(" ;", ";"))
    # The details of the run whose service wall time is the median one.
    pick = sorted(done, key=lambda r: r.wall_s or 0.0)[(len(done) - 1) // 2] if done else None
    index = services.index(pick) if pick else (len(services) - 1)
    shown = services[index] if services else None
    shown_alone = alones[min(index, len(alones) - 1)] if alones else None
    label = f" (run {index + 1})" if len(services) > 1 else ""
    if shown and shown.job:
        parts_s = breakdown(shown, chain)
        if parts_s:
            lines.append(f"- where the service job's time went{label} (event log, server clock):")
            lines += [f"  - {name}: {seconds:.2f} s" for name, seconds in parts_s.items()]
        latency = first_progress_latency(shown, chain)
        if latency:
            alone_first = shown_alone.first_progress if shown_alone else {}
            lines.append(
                "- stage started → its first progress report (in the service: the Ray task's "
                "start-up, then the stage's first report; alone in brackets): "
                + ", ".join(
                    f"{k} {v:.2f} s ({fmt_s(alone_first.get(k))} s)" for k, v in latency.items()
                )
            )
    lines.append("")
    lines.append("Other figures:")
    if shown_alone:
        lines.append(f"- stages alone: {shown_alone.load_note}")
        lines.append(f"- CPU during the stages alone{label}: {shown_alone.cpu.text()}")
        lines += result_notes("stages alone", shown_alone.results)
    if shown:
        lines.append(
            f"- service: Ray num_cpus={args.num_cpus}, deployments "
            f"{', '.join(shown.deployments)}; Ray + Serve + vpa start to first /health "
            f"200: {shown.deploy_s:.1f} s (not timed)"
        )
        if shown.cpu:
            lines.append(f"- CPU during the service job{label}: {shown.cpu.text()}")
        if shown.job:
            lines += result_notes("service", shown.job)
        if shown.events:
            kinds: dict[str, int] = {}
            for event in shown.events:
                kinds[event["type"]] = kinds.get(event["type"], 0) + 1
            lines.append(
                f"- service job events written: {len(shown.events)} "
                f"({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))})"
            )
    lines += [f"- {n}" for n in notes if not n.startswith("load:")]
    problems = [p for run in services for p in run.problems]
    lines += ["", "Problems seen:" if problems else "Problems seen: none."]
    lines += [f"- {p}" for p in problems]
    return "\n".join(lines).rstrip() + "\n"


def notes_load(notes: list[str]) -> str:
    return next((n.split(":", 1)[1].strip() for n in notes if n.startswith("load:")), "n/a")


def result_notes(label: str, fields: dict[str, Any]) -> list[str]:
    transcript = fields.get("transcript") or ""
    clips = fields.get("generated_clips") or []
    analysis = fields.get("analysis_results") or {}
    return [
        f"- {label} results: transcript {len(transcript.split())} words in "
        f"{len(fields.get('segments') or [])} segments; analysis keys "
        f"{sorted(analysis)[:8]}; {len(clips)} clips"
    ]


def write_section(text: str, path: Path) -> None:
    """Put `text` in `path` between this script's markers, replacing an earlier section."""
    old = path.read_text(encoding="utf-8") if path.is_file() else ""
    section = f"{SECTION_BEGIN}\n{text.rstrip()}\n{SECTION_END}\n"
    pattern = re.compile(re.escape(SECTION_BEGIN) + r".*?" + re.escape(SECTION_END) + r"\n?", re.S)
    if pattern.search(old):
        new = pattern.sub(lambda _: section, old)
    else:
        new = (old.rstrip() + "\n\n" if old.strip() else "") + section
    path.write_text(new, encoding="utf-8")


# ============================================================================ main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--minutes", type=float, default=10.0, help="video length (default 10)")
    p.add_argument("--size", default="1280x720", help="picture size WxH (default 1280x720)")
    p.add_argument("--quick", action="store_true", help="smoke run: a 2-minute video")
    p.add_argument("--num-cpus", type=int, default=os.cpu_count() or 2, help="Ray CPUs")
    p.add_argument("--timeout", type=float, default=3600.0, help="service job limit, seconds")
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=600.0,
        help="seconds to wait, before each run, for other Ray instances to end and the "
        "machine to go quiet (default 600)",
    )
    p.add_argument(
        "--busy-limit",
        type=float,
        default=0.3,
        help="cores other work may keep busy for the machine to count as quiet (default 0.3)",
    )
    p.add_argument(
        "--runs",
        type=int,
        default=1,
        help="repeat alone + service this many times; the table gives medians (default 1)",
    )
    p.add_argument(
        "--cold", action="store_true", help="no warm-up job before the measured service job"
    )
    p.add_argument("--skip-alone", action="store_true", help="only the service run")
    p.add_argument("--skip-service", action="store_true", help="only the stages alone")
    p.add_argument("--write", action="store_true", help="put the report in README-figures.md")
    p.add_argument("--keep-tmp", action="store_true", help="keep the work directories")
    p.add_argument("--serve-media", metavar="ROOT", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.minutes = 2.0
    if not re.fullmatch(r"\d+x\d+", args.size):
        p.error("--size must look like 1280x720")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_media:
        serve_media(args.serve_media)
        return 0

    from pipeline.media.probe import probe
    from pipeline.stages import STAGE_CHAINS
    from storage.schemas import JobCreate

    chain = STAGE_CHAINS[JOB_TYPE]
    notes: list[str] = []
    video = make_video(args.minutes, args.size)
    warm_video = make_video(WARM_UP_MINUTES, args.size)
    info = probe(video)
    video_s = float(info.duration_s or args.minutes * 60)
    video_info = (
        f"{video_s:.1f} s, {info.width}x{info.height} {info.video_codec} {info.fps:g} fps "
        f"(keyframe every {GOP // FPS} s) + {info.audio_codec} {info.audio_sample_rate_hz} Hz, "
        f"{video.stat().st_size / 2**20:.0f} MiB"
    )
    tmp = Path(tempfile.mkdtemp(prefix="vpa-bench-pipeline-"))
    alones: list[AloneRun] = []
    services: list[ServiceRun] = []
    failed: BaseException | None = None
    log(f"temp dir {tmp}")
    try:
        with media_server(video.parent) as base_url:
            url = f"{base_url}/{video.name}"
            body = {"youtube_url": url, "job_type": JOB_TYPE, "options": OPTIONS}
            # The options exactly as the service stores them (validated, defaults filled in).
            options = JobCreate.model_validate(body).options.model_dump(mode="json")
            for i in range(args.runs):
                if args.runs > 1:
                    log(f"run {i + 1} of {args.runs}")
                settings = service_settings(tmp / f"service-{i}")
                if not args.skip_alone:
                    wait_for_quiet(args.wait_quiet, args.busy_limit, notes)
                    if i == 0:
                        notes.append(f"load: {load_text()}")
                    alones.append(run_alone(url, options, tmp / f"alone-{i}", settings))
                    if not args.keep_tmp:
                        shutil.rmtree(tmp / f"alone-{i}", ignore_errors=True)
                if not args.skip_service:
                    wait_for_quiet(args.wait_quiet, args.busy_limit, notes)
                    if not any(n.startswith("load:") for n in notes):
                        notes.append(f"load: {load_text()}")
                    warm = None if args.cold else f"{base_url}/{warm_video.name}"
                    services.append(
                        run_service(url, body, settings, args.num_cpus, args.timeout, warm)
                    )
                    if not args.keep_tmp:
                        shutil.rmtree(tmp / f"service-{i}", ignore_errors=True)
    except BaseException as exc:  # report what was measured, then re-raise
        failed = exc
        notes.append(f"benchmark aborted: {type(exc).__name__}: {exc}")
    notes.append(f"load average at the end: {load_text()}")
    text = report(args, video, video_s, video_info, chain, alones, services, notes)
    print("\n" + text, flush=True)
    if args.write:
        write_section(text, FIGURES_FILE)
        log(f"wrote {FIGURES_FILE}")
    if args.keep_tmp:
        log(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    if failed is not None and not isinstance(failed, Exception):
        raise failed
    problems = [p for run in services for p in run.problems]
    return 1 if failed is not None or problems else 0


if __name__ == "__main__":
    sys.exit(main())
