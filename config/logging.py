"""Logging set-up: console plus a rotating log file, with the job id on every job line."""

from __future__ import annotations

import contextvars
import logging
import logging.handlers
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from config.settings import Settings

FORMAT = "%(asctime)s %(levelname)s %(name)s [%(process)d] %(job_tag)s%(message)s"
_MARK = "_vpa_handler"

# The job the current asyncio task or thread works for. Set it once where a job's work
# starts (`bind_job`) and every line logged below carries `job=<id>`, library lines included.
current_job: contextvars.ContextVar[str | None] = contextvars.ContextVar("vpa_job", default=None)


class JobTagFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        job = current_job.get()
        if not hasattr(record, "job_tag"):
            record.job_tag = f"job={job} " if job else ""
        return True


def bind_job(job_id: str) -> None:
    current_job.set(job_id)


LOGGERS = ("vpa", "pipeline", "actors", "deployments", "storage")


def setup_logging(settings: Settings) -> None:
    """Configure vpa's logger trees from settings. Safe to call again in the same process."""
    configure_logging(
        settings.effective_log_level,
        settings.log_file,
        max_bytes=settings.log_file_max_bytes,
        backups=settings.log_file_backups,
    )


def configure_logging(
    level: str, log_file: str | None = None, *, max_bytes: int = 10 << 20, backups: int = 5
) -> None:
    """Console, plus a rotating file when `log_file` is given."""
    formatter = logging.Formatter(FORMAT)
    console = logging.StreamHandler()
    handlers: list[logging.Handler] = [console]
    if log_file:
        path = Path(log_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(
            logging.handlers.RotatingFileHandler(
                path,
                maxBytes=max_bytes,
                backupCount=backups,
                encoding="utf-8",
            )
        )
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(JobTagFilter())
        setattr(handler, _MARK, True)
    for name in LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.propagate = False
        for old in [h for h in logger.handlers if getattr(h, _MARK, False)]:
            logger.removeHandler(old)
            if old not in handlers:
                old.close()
        for handler in handlers:
            logger.addHandler(handler)


class JobLogger(logging.LoggerAdapter):  # type: ignore[type-arg,unused-ignore]
    """Tags every message with `job=<id>` so a job's lines can be grepped out."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        job = self.extra["job_id"] if self.extra else "?"
        kwargs.setdefault("extra", {})["job_tag"] = f"job={job} "
        return msg, kwargs


def job_logger(job_id: str, name: str = "vpa.job") -> JobLogger:
    return JobLogger(logging.getLogger(name), {"job_id": job_id})
