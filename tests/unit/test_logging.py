"""Logging: one LOG_FILE shared by several processes loses no line to rotation; every line
carries its process's role and the job id; bad log settings fail at start."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import multiprocessing
import os
import re
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from config.logging import (
    LogConfig,
    LogSetupError,
    bind_job,
    job_context,
    job_logger,
    reset_logging,
    set_process_job,
    setup_logging,
)
from config.settings import Settings

LINE = re.compile(
    r"^\S+ \S+ (?P<level>[A-Z]+) role=(?P<role>\S+) pid=(?P<pid>\d+) job=(?P<job>\S+) "
    r"(?P<logger>\S+): (?P<message>.*)$"
)
WRITERS = 4
LINES_EACH = 400
MAX_BYTES = 4096


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    reset_logging()  # each test's handlers are its own (the console: its capsys)
    yield
    reset_logging()  # the test's log file is closed


def parsed(path: Path) -> list[dict[str, str]]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = LINE.match(line)
        assert match, f"a line without the vpa fields: {line!r}"
        out.append(match.groupdict())
    return out


def log_files(log_file: Path) -> list[Path]:
    """LOG_FILE and its backups, oldest first."""
    backups = sorted(
        log_file.parent.glob(log_file.name + ".*"), key=lambda p: int(p.suffix[1:]), reverse=True
    )
    return [*backups, log_file]


def line_id(record: dict[str, str]) -> tuple[int, int]:
    """(writer, line number) of a `writer` line: its message starts `line w<w>-<i>`."""
    w, i = record["message"].split()[1][1:].split("-")
    return int(w), int(i)


def writer(index: int, config: LogConfig, barrier: Any, lines: int) -> None:
    """One process: `lines` lines, each with a unique id, all in one job."""
    setup_logging(config, role=f"stage:w{index}")
    for handler in logging.getLogger("vpa").handlers:  # the console stays quiet
        if type(handler) is logging.StreamHandler:
            handler.setStream(open(os.devnull, "w"))  # noqa: SIM115
    log = logging.getLogger("vpa.stage")
    barrier.wait()  # all writers start together
    with job_context(f"job-{index}"):
        for i in range(lines):
            log.info("line w%d-%d %s", index, i, "x" * (index * 7 % 40))


def run_writers(config: LogConfig, lines: int) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(WRITERS)
    procs = [ctx.Process(target=writer, args=(i, config, barrier, lines)) for i in range(WRITERS)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    assert [proc.exitcode for proc in procs] == [0] * WRITERS


def test_processes_sharing_a_log_file_lose_no_line_to_rotation(tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "vpa.log"
    # Enough backups that no rotation ever deletes one: every line must still be there.
    config = LogConfig("INFO", str(log_file), max_bytes=MAX_BYTES, backups=500)
    run_writers(config, LINES_EACH)

    files = log_files(log_file)
    assert len(files) > 20  # rotated many times, by several processes
    assert not (log_file.parent / f"vpa.log.{config.backups}").exists()  # none dropped
    assert not list(log_file.parent.glob("vpa.log.rotate.*"))  # no half-done rotation
    records = [record for path in files for record in parsed(path)]
    ids = Counter(line_id(record) for record in records)
    assert set(ids) == {(w, i) for w in range(WRITERS) for i in range(LINES_EACH)}
    assert set(ids.values()) == {1}  # each line exactly once
    for record in records:
        w = line_id(record)[0]
        assert (record["role"], record["job"]) == (f"stage:w{w}", f"job-{w}")
    assert len({record["pid"] for record in records}) == WRITERS
    # Each writer's lines are found in the order it wrote them, oldest file first.
    for w in range(WRITERS):
        assert [i for v, i in map(line_id, records) if v == w] == list(range(LINES_EACH))


def test_when_backups_run_out_the_oldest_lines_go_and_nothing_else(tmp_path: Path) -> None:
    """LOG_FILE_BACKUPS bounds the disk used: a rotation that would need one more backup
    deletes the oldest. What is left is each writer's latest lines, each once, none missing
    in between."""
    log_file = tmp_path / "vpa.log"
    config = LogConfig("INFO", str(log_file), max_bytes=MAX_BYTES, backups=3)
    run_writers(config, LINES_EACH // 2)

    files = log_files(log_file)
    assert [p.name for p in files] == ["vpa.log.3", "vpa.log.2", "vpa.log.1", "vpa.log"]
    records = [record for path in files for record in parsed(path)]
    ids = Counter(line_id(record) for record in records)
    assert set(ids.values()) == {1}
    last = LINES_EACH // 2
    for w in range(WRITERS):
        kept = [i for v, i in map(line_id, records) if v == w]
        assert kept == list(range(last - len(kept), last))  # its latest lines, in order
    assert len(records) < WRITERS * last  # older ones were dropped, by design


def test_no_backups_means_no_rotation(tmp_path: Path) -> None:
    """LOG_FILE_BACKUPS=0: the file is never rotated (nor truncated); it grows."""
    log_file = tmp_path / "vpa.log"
    setup_logging(LogConfig("INFO", str(log_file), max_bytes=1024, backups=0), role="main")
    for i in range(200):
        logging.getLogger("vpa.x").info("line %d", i)
    records = parsed(log_file)
    assert [r["message"] for r in records] == [f"line {i}" for i in range(200)]
    assert log_files(log_file) == [log_file]


@pytest.fixture
def lines(tmp_path: Path) -> Iterator[Any]:
    """Log into a fresh file; `lines()` returns what was written, parsed."""
    log_file = tmp_path / "vpa.log"
    setup_logging(LogConfig("DEBUG", str(log_file)), role="coordinator")
    yield lambda: parsed(log_file)


def test_lines_carry_the_job_of_their_context(lines: Any) -> None:
    log = logging.getLogger("vpa.coordinator")
    log.info("outside")
    with job_context("job-a"):
        log.info("inside a")
        with job_context("job-b"):
            log.info("inside b")
        log.info("back in a")
        logging.getLogger("pipeline.fetch").info("a library line")
    log.info("outside again")
    job_logger("job-c").info("adapter")
    got = [(r["message"], r["job"], r["role"]) for r in lines()]
    assert got == [
        ("outside", "-", "coordinator"),
        ("inside a", "job-a", "coordinator"),
        ("inside b", "job-b", "coordinator"),
        ("back in a", "job-a", "coordinator"),
        ("a library line", "job-a", "coordinator"),
        ("outside again", "-", "coordinator"),
        ("adapter", "job-c", "coordinator"),
    ]
    assert {r["pid"] for r in lines()} == {str(os.getpid())}


def test_the_job_follows_asyncio_tasks_and_to_thread(lines: Any) -> None:
    log = logging.getLogger("vpa.coordinator")

    async def one_job(job_id: str, started: asyncio.Barrier) -> None:
        bind_job(job_id)  # this task only
        await started.wait()  # both jobs are bound before either logs
        log.info("task %s", job_id)
        await asyncio.to_thread(log.info, "thread %s", job_id)

    async def main() -> None:
        started = asyncio.Barrier(2)
        await asyncio.gather(one_job("job-1", started), one_job("job-2", started))
        log.info("after")

    asyncio.run(main())
    got = {(r["message"], r["job"]) for r in lines()}
    assert got == {
        ("task job-1", "job-1"),
        ("thread job-1", "job-1"),
        ("task job-2", "job-2"),
        ("thread job-2", "job-2"),
        ("after", "-"),
    }


def test_a_plain_thread_needs_the_context_copied_or_the_process_job(lines: Any) -> None:
    log = logging.getLogger("vpa.stage")

    def run(target: Any) -> None:
        thread = threading.Thread(target=target)
        thread.start()
        thread.join()

    with job_context("job-a"):
        run(lambda: log.info("plain"))
        ctx = contextvars.copy_context()
        run(lambda: ctx.run(log.info, "copied"))
    set_process_job("job-p")  # what a stage task does: one job per process at a time
    run(lambda: log.info("process job"))
    with job_context("job-a"):
        log.info("the task's own job wins")
    got = [(r["message"], r["job"]) for r in lines()]
    assert got == [
        ("plain", "-"),
        ("copied", "job-a"),
        ("process job", "job-p"),
        ("the task's own job wins", "job-a"),
    ]


async def test_model_work_in_its_worker_thread_carries_the_job(lines: Any) -> None:
    from deployments.model_calls import stream_work

    def work(progress: Any, cancel: Any) -> str:
        logging.getLogger("vpa.transcriber").info("in the worker thread")
        return "done"

    async def request() -> list[dict[str, Any]]:
        bind_job("job-m")  # what Transcriber.transcribe does with its job_id
        return [item async for item in stream_work(work)]

    items = await asyncio.create_task(request())
    assert items == [{"type": "result", "result": "done"}]
    assert [(r["message"], r["job"]) for r in lines()] == [("in the worker thread", "job-m")]


def test_setup_with_settings_sets_the_role_and_keeps_its_handlers(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, log_file=str(tmp_path / "vpa.log"), log_level="warning")
    setup_logging(settings, role="ingress")
    handlers = list(logging.getLogger("vpa").handlers)
    setup_logging(settings, role="ingress")  # again (the coordinator re-adopts settings)
    assert logging.getLogger("vpa").handlers == handlers
    logging.getLogger("vpa.api").info("dropped: below WARNING")
    logging.getLogger("vpa.api").warning("kept")
    assert [(r["role"], r["level"], r["message"]) for r in parsed(tmp_path / "vpa.log")] == [
        ("ingress", "WARNING", "kept")
    ]


@pytest.mark.parametrize("where", ["parent is a file", "is a directory", "below a file"])
def test_a_log_file_that_cannot_be_written_fails_at_setup(tmp_path: Path, where: str) -> None:
    (tmp_path / "file").write_text("not a directory")
    (tmp_path / "dir").mkdir()
    path = {
        "parent is a file": tmp_path / "file" / "vpa.log",
        "is a directory": tmp_path / "dir",
        "below a file": tmp_path / "file" / "logs" / "vpa.log",
    }[where]
    good = tmp_path / "good.log"
    setup_logging(LogConfig("INFO", str(good)), role="main")
    with pytest.raises(
        LogSetupError, match=rf"LOG_FILE='{re.escape(str(path))}' cannot be written"
    ):
        setup_logging(Settings(_env_file=None, log_file=str(path)), role="main")
    logging.getLogger("vpa.x").info("still logging")  # the previous set-up is untouched
    assert [r["message"] for r in parsed(good)] == ["still logging"]


def test_a_ray_process_falls_back_to_the_console(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Where LOG_FILE cannot be written on a node, its stage tasks and replicas still run:
    they log to the console (Ray's worker logs) and say why, once per set-up."""
    (tmp_path / "file").write_text("")
    bad = LogConfig("INFO", str(tmp_path / "file" / "vpa.log"))
    setup_logging(bad, "stage:audio", "job-s", required=False)
    logging.getLogger("vpa.stage").info("on the console")
    err = capsys.readouterr().err.splitlines()
    assert LINE.match(err[0]) and "role=stage:audio" in err[0] and "job=job-s" in err[0]
    assert "cannot be written: Not a directory" in err[0] and "console only" in err[0]
    assert err[1].endswith("vpa.stage: on the console")


def test_a_bad_level_fails_at_setup() -> None:
    with pytest.raises(LogSetupError, match=r"LOG_LEVEL='chatty' is not a log level"):
        setup_logging(LogConfig("chatty"))


def test_main_refuses_an_unwritable_log_file_before_starting_ray(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import main

    (tmp_path / "file").write_text("")
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv("LOG_FILE", str(tmp_path / "file" / "vpa.log"))
    # Ray is refused in unit tests (conftest): the error must come first.
    with pytest.raises(LogSetupError, match="cannot be written: Not a directory"):
        main.serve_until_stopped(main.StopSignals())
