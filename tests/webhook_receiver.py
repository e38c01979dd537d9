"""A webhook receiver on 127.0.0.1 for the tests: a real HTTP server in a thread that
answers each POST as its script says and records what it got."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    """One POST as the receiver got it."""

    headers: dict[str, str]
    body: bytes
    status: int  # what it answered
    at: float  # time.monotonic() when it arrived


class Receiver:
    """Answers the n-th POST with `script[n]` (the last entry from then on): a status
    code, or a negative number -s to answer 200 only after s seconds (a timeout)."""

    def __init__(self, script: list[float]) -> None:
        self.script = script
        self.got: list[Received] = []
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver.arrived:
                    step = receiver.script[min(len(receiver.got), len(receiver.script) - 1)]
                    status = 200 if step < 0 else int(step)
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    receiver.got.append(Received(headers, body, status, time.monotonic()))
                    receiver.arrived.notify_all()
                if step < 0:
                    time.sleep(-step)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def wait_for(self, count: int, timeout_s: float = 30.0) -> list[Received]:
        """The first `count` POSTs, once they have arrived."""
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.got) >= count, timeout_s):
                raise AssertionError(f"{len(self.got)} webhook(s) arrived, {count} expected")
            return list(self.got[:count])

    async def arrivals(self, count: int, timeout_s: float = 30.0) -> list[Received]:
        """`wait_for` without blocking the event loop (whose sender is posting)."""
        return await asyncio.to_thread(self.wait_for, count, timeout_s)


@contextmanager
def receiver(script: list[float]) -> Iterator[Receiver]:
    """A `Receiver` serving in a thread for the `with` block."""
    made = Receiver(script)
    thread = threading.Thread(target=made.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield made
    finally:
        made.server.shutdown()
        made.server.server_close()
        thread.join()
