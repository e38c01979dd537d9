"""Errors of the OpenAI-compatible routes (`/v1/...`) in OpenAI's shape:
`{"error": {"message", "type", "param", "code"}}`, which the `openai` client reads.

The app's own handlers answer `{"detail": ...}`; `scoped` wraps each of them so that on a
`/v1/` path the same status comes back in OpenAI's shape (and a validation 422 as OpenAI's
400), while `/api/v1` keeps `{"detail": ...}`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from fastapi.exception_handlers import http_exception_handler
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Scope

OPENAI_PREFIX = "/v1/"
# Headers of the app's answers that a client still needs in OpenAI's shape
KEPT_HEADERS = ("retry-after", "www-authenticate")
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}
ERROR_CODES = {401: "invalid_api_key", 404: "not_found", 413: "file_too_large"}

Handler = Callable[[Request, Any], Coroutine[Any, Any, Response]]


class OpenAIError(Exception):
    """An answer in OpenAI's error shape, raised by the `/v1` routes."""

    def __init__(
        self,
        status_code: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        type_: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.param = param
        self.code = code
        self.type = type_ or error_type(status_code)

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.type, self.param, self.code)


def error_type(status_code: int) -> str:
    """OpenAI's `type` for an HTTP status."""
    return ERROR_TYPES.get(
        status_code, "server_error" if status_code >= 500 else "invalid_request_error"
    )


def error_body(
    message: str, type_: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def is_openai(scope: Scope | Request) -> bool:
    """Whether a request is one of the OpenAI-compatible routes'."""
    path: str = scope["path"] if isinstance(scope, Mapping) else scope.url.path
    return path.startswith(OPENAI_PREFIX)


def _field(loc: Any) -> str | None:
    """The form field a validation error's location names (`["body", "model"]`: model)."""
    skipped = ("body", "query", "path", "header")
    parts = [str(p) for p in loc or () if p not in skipped and not isinstance(p, int)]
    return ".".join(parts) or None


def from_detail(status_code: int, content: Mapping[str, Any]) -> OpenAIError:
    """The OpenAI error for one of the app's `{"detail": ..., "code"?: ...}` answers."""
    detail = content.get("detail")
    code = content.get("code") or ERROR_CODES.get(status_code)
    if isinstance(detail, list):  # a validation error: OpenAI answers 400 and names the field
        first = detail[0] if detail and isinstance(detail[0], Mapping) else {}
        param = _field(first.get("loc"))
        messages = [
            f"{_field(e.get('loc')) or 'request'}: {e.get('msg')}"
            for e in detail
            if isinstance(e, Mapping)
        ]
        return OpenAIError(400, "; ".join(messages) or "invalid request", param, "invalid_value")
    # 422 is FastAPI's; OpenAI answers a request it cannot take with a 400
    return OpenAIError(400 if status_code == 422 else status_code, str(detail), None, code)


def openai_response(error: OpenAIError, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status_code, headers=dict(headers or {}))


def scoped(handler: Handler) -> Handler:
    """`handler`, answering in OpenAI's shape on `/v1/` paths."""

    async def handle(request: Request, exc: Any) -> Response:
        response = await handler(request, exc)
        if not is_openai(request):
            return response
        content = json.loads(bytes(response.body))
        kept = {k: v for k, v in response.headers.items() if k.lower() in KEPT_HEADERS}
        return openai_response(from_detail(response.status_code, content), kept)

    return handle


async def openai_error(_: Request, exc: OpenAIError) -> JSONResponse:
    return openai_response(exc)


async def http_error(request: Request, exc: Any) -> Response:
    """FastAPI's own `HTTPException` answer (401, 404, 413, ...), scoped."""
    return await scoped(http_exception_handler)(request, exc)


def limit_body(scope: Scope, detail: str) -> dict[str, Any]:
    """The body of BodyLimit's 413 for this request's path."""
    if is_openai(scope):
        return OpenAIError(413, detail, "file", "file_too_large").body()
    return {"detail": detail}
