"""What ends a command: the errors the client raises, their messages, and the exit codes.

Exit codes: 0 success (a followed job completed), 1 an API error, an unreachable service or
a job that failed or was cancelled, 2 bad usage (click's own code, also for a malformed
`-o`), 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.text import Text

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
TERMINAL_STATUSES = ("completed", "failed", "cancelled")

P = ParamSpec("P")
R = TypeVar("R")


class CliError(Exception):
    """A command cannot go on: its message is printed (no traceback) and vpa exits 1."""


class ApiError(CliError):
    """The service answered with an error status."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(f"{status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail


class Unreachable(CliError):
    """No answer from the service (refused, timed out, the connection dropped)."""

    def __init__(self, url: str, reason: object) -> None:
        super().__init__(f"cannot reach vpa at {url}: {reason}")


def _validation_error(item: Any) -> str:
    """One of FastAPI's validation errors (`{"loc": [...], "msg": ...}`) as a line."""
    if not isinstance(item, dict):
        return str(item)
    loc = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
    message = str(item.get("msg", item))
    return f"{loc}: {message}" if loc else message


def detail_of(body: Any, fallback: str = "") -> str:
    """The server's message in an error body: `{"detail": ...}` of /api/v1 (a string or
    FastAPI's list of validation errors), `{"error": {"message"}}` of the OpenAI routes
    (/v1); otherwise `fallback` (the raw text)."""
    if isinstance(body, dict):
        detail = body.get("detail")
        if isinstance(detail, str):
            return detail
        if isinstance(detail, list) and detail:
            return "; ".join(_validation_error(item) for item in detail)
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return fallback.strip() or "(no detail)"


def exit_code_for(status: str | None) -> int:
    """A followed job's exit code: 0 when it completed, 1 otherwise."""
    return EXIT_OK if status == "completed" else EXIT_FAILED


def print_error(message: str) -> None:
    Console(stderr=True).print(Text(f"error: {message}", style="bold red"))


def guarded(command: Callable[P, R]) -> Callable[P, R]:
    """A command whose `CliError` is a red message and exit 1, and whose Ctrl-C is a short
    note and exit 130, never a traceback. (Usage errors are click's: exit 2.)"""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except CliError as exc:
            print_error(str(exc))
            raise typer.Exit(EXIT_FAILED) from None
        except KeyboardInterrupt:
            Console(stderr=True).print("interrupted", style="yellow")
            raise typer.Exit(EXIT_INTERRUPTED) from None

    return run
