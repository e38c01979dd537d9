"""Logging set-up for every vpa process: the console plus one log file that all share.

Every line reads

    2026-01-31 12:00:00,123 INFO role=coordinator pid=4242 job=3f2a... vpa.coordinator: text

- `role`: what the process is: `main` (the process that builds the app), `ingress`,
  `coordinator`, `progress-hub`, `transcriber`, `analyzer`, or `stage:<name>` (a Ray
  worker runs one task at a time, and each stage task sets its role when it starts);
  `-` in a process that never called `setup_logging`.
- `pid`: the process id.
- `job`: the job the current asyncio task or thread works for (`bind_job`, `job_context`,
  `job_logger`), or `-`. It is a `ContextVar`, so it follows asyncio tasks and
  `asyncio.to_thread` (which copies the context); a plain thread or `run_in_executor`
  starts without it (copy the context: `contextvars.copy_context().run`). A process that
  works on one job at a time (a stage task) also sets a process-wide default, which
  covers the plain threads it starts.

A traceback follows its record's line unprefixed.

Errors: a bad level, or a LOG_FILE that cannot be created or written, raises
`LogSetupError` at start (`main.py`, `serve_app.app_from_settings`). A Ray process (stage
task, replica, actor) sets up with `required=False`: on a node where LOG_FILE cannot be
written it logs to the console (Ray's worker logs) only, and says so there.

Rotation. All of a node's vpa processes append to LOG_FILE. With the standard library's
`RotatingFileHandler` each process rotates on its own: one renames vpa.log to vpa.log.1
while the others keep writing into their open descriptors, now vpa.log.1, which a later
rotation by another process renames on or, once the backups run out, deletes; two
processes rotating at once also clobber each other's backups. Lines were lost. Here each
process writes through `ConcurrentRotatingFileHandler` (concurrent-log-handler), which
holds an exclusive lock (`flock` on `.__<name>.lock` beside LOG_FILE) around every write:
under the lock it reopens LOG_FILE if another process rotated it (inode check), rotates if
the file reached LOG_FILE_MAX_BYTES, then writes. So one process rotates at a time, and no
line is written into a file that is being renamed: every line is in LOG_FILE or one of
its LOG_FILE_BACKUPS backups (`.1` the newest). When a rotation needs more backups than
that, the oldest (`.N`) is deleted, with its lines: that is the only way a line leaves
the logs. LOG_FILE_BACKUPS=0 turns rotation off (the file grows; rotate it externally).
Every process must use the same LOG_FILE_MAX_BYTES and LOG_FILE_BACKUPS (a redeploy with
other values: restart). The lock works on a node's local disk; on a network filesystem
without working `flock`, give each node its own LOG_FILE.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from concurrent_log_handler import ConcurrentRotatingFileHandler

from config.settings import Settings

FORMAT = (
    "%(asctime)s %(levelname)s role=%(role)s pid=%(process)d job=%(job_id)s %(name)s: %(message)s"
)
NONE = "-"
LOGGERS = ("vpa", "pipeline", "actors", "deployments", "storage")
LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
_MARK = "_vpa_handler"

# The job the current asyncio task or thread works for. Set it where a job's work starts
# and every line logged below carries `job=<id>`, library lines included.
current_job: contextvars.ContextVar[str | None] = contextvars.ContextVar("vpa_job", default=None)


class LogSetupError(ValueError):
    """A log setting that cannot work (a LOG_FILE that cannot be written, a bad level)."""


@dataclass(frozen=True)
class LogConfig:
    """The log settings a process needs; small and picklable, for Ray tasks and actors."""

    level: str = "INFO"
    file: str | None = None
    max_bytes: int = 10 << 20
    backups: int = 5

    @classmethod
    def from_settings(cls, settings: Settings) -> LogConfig:
        return cls(
            settings.effective_log_level,
            settings.log_file,
            settings.log_file_max_bytes,
            settings.log_file_backups,
        )


@dataclass
class _State:
    role: str = NONE
    job: str | None = None  # the process-wide default job (one job at a time processes)
    config: LogConfig | None = None
    handlers: tuple[logging.Handler, ...] = ()


_state = _State()


def log_config(settings: Settings) -> LogConfig:
    return LogConfig.from_settings(settings)


def current_job_id() -> str | None:
    """The job this task or thread works for, else the process's, else None."""
    return current_job.get() or _state.job


class ContextFilter(logging.Filter):
    """Adds `role` and `job_id` to every record (a `job_logger`'s own id wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "role"):
            record.role = _state.role
        if not getattr(record, "job_id", None):
            record.job_id = current_job_id() or NONE
        return True


def bind_job(job_id: str | None) -> None:
    """This asyncio task's (or thread's) lines carry `job=<job_id>` from now on."""
    current_job.set(job_id)


@contextlib.contextmanager
def job_context(job_id: str | None) -> Iterator[None]:
    """Lines logged inside carry `job=<job_id>`; the previous job is back afterwards."""
    token = current_job.set(job_id)
    try:
        yield
    finally:
        current_job.reset(token)


def set_role(role: str) -> None:
    """The role every line of this process carries from now on."""
    _state.role = role


def set_process_job(job_id: str | None) -> None:
    """The job of every line of this process that no task or thread binds (None: `-`)."""
    _state.job = job_id


def setup_logging(
    source: Settings | LogConfig,
    role: str | None = None,
    job_id: str | None = None,
    *,
    required: bool = True,
) -> None:
    """Configure vpa's logger trees (console, and LOG_FILE when set) for this process.

    `role` names the process on every line; `job_id` sets the process-wide job (for a
    process that works on one job at a time). Safe to call again: the same settings keep
    the open handlers. Raises `LogSetupError` when the level is not a level, or when
    LOG_FILE cannot be written and the file is `required` (the start-up checks it there);
    otherwise (a Ray process, perhaps on a node where that path cannot be written) the
    process logs to the console only and says why there, rather than failing its work.
    """
    config = source if isinstance(source, LogConfig) else LogConfig.from_settings(source)
    if role is not None:
        set_role(role)
    if job_id is not None:
        set_process_job(job_id)
    try:
        _install(config)
    except LogSetupError as err:
        if required or not config.file:
            raise
        _install(replace(config, file=None))
        logging.getLogger("vpa").error("%s; this process logs to the console only", err)


def _level(value: str) -> str:
    level = str(value).strip().upper()
    if level not in LEVELS:
        raise LogSetupError(f"LOG_LEVEL={value!r} is not a log level; use one of {LEVELS}")
    return level


def file_handler(config: LogConfig) -> logging.Handler:
    """The shared rotating file handler, its file and lock file checked writable now."""
    assert config.file
    path = Path(config.file).expanduser().resolve()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = ConcurrentRotatingFileHandler(
            str(path),
            maxBytes=config.max_bytes if config.backups > 0 else 0,
            backupCount=config.backups,
            encoding="utf-8",
        )
        for name in (path, Path(handler.lockFilename)):
            with open(name, "a", encoding="utf-8"):
                pass
    except OSError as exc:
        # mkdir says "File exists" where a file stands in for a directory of the path
        reason = "Not a directory" if isinstance(exc, FileExistsError) else exc.strerror
        where = exc.filename or path
        message = f"LOG_FILE={config.file!r} cannot be written: {reason or exc}: {where}"
        raise LogSetupError(message) from exc
    return handler


def _install(config: LogConfig) -> None:
    config = LogConfig(_level(config.level), config.file or None, config.max_bytes, config.backups)
    if config == _state.config:
        return
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if config.file:
        handlers.append(file_handler(config))
    formatter = logging.Formatter(FORMAT)
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(ContextFilter())
        setattr(handler, _MARK, True)
    for name in LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(config.level)
        logger.propagate = False
        for old in [h for h in logger.handlers if getattr(h, _MARK, False)]:
            logger.removeHandler(old)
        for handler in handlers:
            logger.addHandler(handler)
    for old in _state.handlers:
        old.close()
    _state.config, _state.handlers = config, tuple(handlers)


def reset_logging() -> None:
    """Back to the unconfigured state (vpa's handlers removed and closed, the loggers
    propagating again, role and process job `-`); for tests."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if getattr(h, _MARK, False)]:
            logger.removeHandler(old)
        logger.setLevel(logging.NOTSET)
        logger.propagate = True
    for old in _state.handlers:
        old.close()
    _state.role, _state.job, _state.config, _state.handlers = NONE, None, None, ()


class JobLogger(logging.LoggerAdapter):  # type: ignore[type-arg,unused-ignore]
    """Tags every message with `job=<id>`, whatever the context says."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        job = self.extra["job_id"] if self.extra else None
        if job:
            kwargs.setdefault("extra", {})["job_id"] = job
        return msg, kwargs


def job_logger(job_id: str, name: str = "vpa.job") -> JobLogger:
    return JobLogger(logging.getLogger(name), {"job_id": job_id})
