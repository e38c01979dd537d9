"""Logging set-up: console plus a rotating log file, with the job id on every job line."""

from __future__ import annotations

import logging
import logging.handlers
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from config.settings import Settings

FORMAT = "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"
_MARK = "_vpa_handler"


def setup_logging(settings: Settings) -> None:
    """Configure the `vpa` logger tree. Safe to call again in the same process."""
    level = settings.effective_log_level
    root = logging.getLogger("vpa")
    root.setLevel(level)
    root.propagate = False
    for handler in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(handler)
        handler.close()
    formatter = logging.Formatter(FORMAT)
    console = logging.StreamHandler()
    handlers: list[logging.Handler] = [console]
    if settings.log_file:
        path = Path(settings.log_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(
            logging.handlers.RotatingFileHandler(
                path,
                maxBytes=settings.log_file_max_bytes,
                backupCount=settings.log_file_backups,
                encoding="utf-8",
            )
        )
    for handler in handlers:
        handler.setFormatter(formatter)
        setattr(handler, _MARK, True)
        root.addHandler(handler)


class JobLogger(logging.LoggerAdapter):  # type: ignore[type-arg,unused-ignore]
    """Prefixes every message with `job=<id>` so a job's lines can be grepped out."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        return f"job={self.extra['job_id'] if self.extra else '?'} {msg}", kwargs


def job_logger(job_id: str, name: str = "vpa.job") -> JobLogger:
    return JobLogger(logging.getLogger(name), {"job_id": job_id})
