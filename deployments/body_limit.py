"""`BodyLimit`: request bodies over MAX_REQUEST_BYTES are refused with 413, unread.

A pure ASGI middleware: a declared `Content-Length` over the limit is answered at once;
a body sent without one (chunked) is counted as the route reads it and refused the moment
it passes the limit (FastAPI passes an `HTTPException` raised while reading the body on to
its handlers), so no request makes the replica hold more than the limit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def too_large(max_bytes: int, setting: str = "MAX_REQUEST_BYTES") -> str:
    return f"the request body is larger than {setting} ({max_bytes} bytes)"


class BodyLimit:
    """`max_bytes` for every request; `larger` maps path prefixes (uploads) to their own
    limit and setting name; `render` writes the 413's body for a request (the OpenAI routes
    answer in their own shape)."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        larger: dict[str, tuple[int, str]] | None = None,
        render: Callable[[Scope, str], dict[str, Any]] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = larger or {}
        self.render = render or (lambda _, detail: {"detail": detail})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes, setting = self.max_bytes, "MAX_REQUEST_BYTES"
        for prefix, (limit, name) in self.larger.items():
            if scope["path"].startswith(prefix):
                max_bytes, setting = limit, name
        detail = too_large(max_bytes, setting)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            response = JSONResponse(self.render(scope, detail), status_code=413)
            await response(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > max_bytes:
                    raise HTTPException(status_code=413, detail=detail)
            return message

        await self.app(scope, counted, send)
