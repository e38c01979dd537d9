"""A job's live updates from its WebSocket (`/ws/{job_id}`), resumed after a drop.

`FollowState` is pure: it takes the socket's messages in turn, keeps the job's status,
progress and each stage's fraction, and the `seq` of the last update taken. `follow` runs
the socket: when it drops before the job ends (a network error, the server dropping a slow
reader with 4408, a restart) it connects again with `?after_seq=<last seq>`, so the server
replays what was missed; an update seen twice is taken once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import connect as ws_connect

from cli.client import Target
from cli.errors import ApiError, Unreachable, detail_of

# The stages of each job type, in order (the service's pipeline/stages.py STAGE_CHAINS;
# tests/unit/test_cli_follow.py keeps the two equal). An unknown type shows its stages as
# they start.
STAGE_CHAINS: dict[str, tuple[str, ...]] = {
    "audio_extraction": ("fetch", "audio"),
    "transcription": ("fetch", "audio", "transcribe"),
    "analysis": ("fetch", "audio", "transcribe", "analyze"),
    "clip_generation": ("fetch", "audio", "transcribe", "analyze", "clips"),
    "full_processing": ("fetch", "audio", "transcribe", "analyze", "clips", "subtitles"),
}
# Close codes that end following: no such job (4404), not a job id (4400), a query
# parameter refused (1008). Any other close before `job_finished` is reconnected.
FATAL_CLOSES = {4400: 404, 4404: 404, 1008: 422}
# Events whose line names them (`failed: <why>`); the others' messages speak for themselves
# (`fetch started`, `audio completed in 0.28 s`).
NAMED_EVENTS = {"failed", "cancelled", "retry_scheduled", "recovered"}
MAX_FAILURES = 8  # connection attempts in a row that got nothing, before giving up
MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # a finished job carries its whole transcript


@dataclass
class FollowState:
    """What the messages so far say about the job."""

    job_id: str
    last_seq: int | None = None
    status: str | None = None
    progress: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)  # stage → 0..1, in chain order
    job: dict[str, Any] | None = None  # the last whole job (initial_status, job_finished)
    finished: bool = False
    seen: list[int] = field(default_factory=list)  # seq of every update taken, in order
    error: str | None = None  # the detail of an `error` message
    messages: int = 0  # messages taken, of every kind

    def apply(self, message: dict[str, Any]) -> str | None:
        """Take one message; returns a line worth showing (a stage started or ended, the
        job failed...), or None."""
        self.messages += 1
        kind = message.get("type")
        if kind == "initial_status":
            self._take_job(message.get("data") or {})
            if self.last_seq is None:  # first connection: updates after this one follow
                self.last_seq = _int(message.get("seq")) or 0
        elif kind == "job_update":
            seq = _int(message.get("seq"))
            if seq is None or (self.last_seq is not None and seq <= self.last_seq):
                return None  # already taken (a replay overlapping the live stream)
            self.last_seq = seq
            self.seen.append(seq)
            return self._take_update(message.get("data") or {})
        elif kind == "job_finished":
            self._take_job(message.get("data") or {})
            self.finished = True
        elif kind == "error":
            self.error = detail_of(message, str(message))
        return None

    def _take_job(self, job: dict[str, Any]) -> None:
        self.job = job
        self.status = job.get("status", self.status)
        self.progress = float(job.get("progress") or 0.0)
        for stage in STAGE_CHAINS.get(str(job.get("job_type")), ()):
            self.stages.setdefault(stage, 0.0)
        for stage in job.get("stage_timings") or {}:
            self.stages[stage] = 1.0
        if self.status == "completed":
            self.stages = dict.fromkeys(self.stages, 1.0)

    def _take_update(self, data: dict[str, Any]) -> str | None:
        self.status = data.get("status") or self.status
        if data.get("progress") is not None:
            self.progress = float(data["progress"])
        event, stage = data.get("event"), data.get("stage")
        if stage and event == "stage_started":
            self.stages[stage] = 0.0
        elif stage and event == "progress":
            fraction = (data.get("event_data") or {}).get("stage_fraction")
            if isinstance(fraction, int | float):
                self.stages[stage] = min(max(float(fraction), 0.0), 1.0)
            return None
        elif stage and event == "stage_completed":
            self.stages[stage] = 1.0
        message = data.get("message")
        if not message or message == event:
            return str(event)
        return f"{event}: {message}" if event in NAMED_EVENTS else str(message)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def socket_url(base_url: str, job_id: str, after_seq: int | None) -> str:
    """The job's WebSocket on the server at `base_url` (http → ws, https → wss); resuming
    after update `after_seq` when one was taken."""
    base = base_url.rstrip("/")
    scheme, _, rest = base.partition("://")
    ws_scheme = "wss" if scheme.lower() == "https" else "ws"
    url = f"{ws_scheme}://{rest}/ws/{quote(job_id.strip(), safe='')}"
    return url if after_seq is None else f"{url}?after_seq={after_seq}"


class Socket(Protocol):
    """What `follow` needs of a connection: its messages, then how it closed."""

    @property
    def close_code(self) -> int | None: ...

    def __iter__(self) -> Iterator[str | bytes]: ...


Connect = Callable[[str, dict[str, str]], AbstractContextManager[Socket]]


def open_socket(url: str, headers: dict[str, str]) -> AbstractContextManager[Socket]:
    """A real WebSocket (the API key in its headers, as on every request)."""
    return ws_connect(url, additional_headers=headers, open_timeout=10, max_size=MAX_MESSAGE_BYTES)


def backoff_s(failures: int) -> float:
    """The pause before connecting again: none after a connection that brought messages,
    then 0.5 s doubling up to 5 s."""
    return 0.0 if failures == 0 else min(0.5 * 2 ** (failures - 1), 5.0)


def follow(
    target: Target,
    job_id: str,
    on_message: Callable[[FollowState, str | None], None],
    connect: Connect = open_socket,
    sleep: Callable[[float], None] = time.sleep,
) -> FollowState:
    """Follow the job until its `job_finished`; `on_message` sees the state after every
    message. A job that cannot be followed is an `ApiError`; a server that stays away for
    MAX_FAILURES attempts in a row, `Unreachable`."""
    state = FollowState(job_id)
    failures = 0
    while True:
        url = socket_url(target.url, job_id, state.last_seq)
        before = state.messages
        code, reason = _session(connect, url, target.headers, state, on_message)
        if state.finished:
            return state
        if code in FATAL_CLOSES:
            raise ApiError(FATAL_CLOSES[code], state.error or reason)
        failures = 0 if state.messages > before else failures + 1
        if failures >= MAX_FAILURES:
            raise Unreachable(target.url, f"the job's WebSocket: {reason}")
        sleep(backoff_s(failures))


def _session(
    connect: Connect,
    url: str,
    headers: dict[str, str],
    state: FollowState,
    on_message: Callable[[FollowState, str | None], None],
) -> tuple[int | None, str]:
    """One connection, read until it closes: (its close code or None, why it ended)."""
    try:
        with connect(url, headers) as socket:
            _read(socket, state, on_message)
            code = socket.close_code
            return code, f"closed with code {code}"
    except InvalidStatus as exc:  # refused at the handshake: 401, 404, 503...
        response = exc.response
        detail = detail_of(_json(response.body or b""), str(exc))
        if response.status_code >= 500:  # a restart, no replica yet: try again
            return None, f"{response.status_code}: {detail}"
        raise ApiError(response.status_code, detail) from None
    except ConnectionClosed as exc:
        code = exc.rcvd.code if exc.rcvd is not None else None
        return code, str(exc)
    except (OSError, InvalidHandshake, TimeoutError) as exc:
        return None, str(exc) or exc.__class__.__name__


def _read(
    socket: Iterable[str | bytes],
    state: FollowState,
    on_message: Callable[[FollowState, str | None], None],
) -> None:
    for raw in socket:
        message = _json(raw)
        if isinstance(message, dict):
            on_message(state, state.apply(message))
        if state.finished:
            return


def _json(raw: str | bytes | bytearray) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None
