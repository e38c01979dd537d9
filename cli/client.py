"""The vpa HTTP API over httpx: one method per call the commands make.

Every error status becomes an `ApiError` carrying the server's message, and a service that
does not answer an `Unreachable`; nothing else leaves this module.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from cli.errors import ApiError, Unreachable, detail_of

DEFAULT_URL = "http://127.0.0.1:8000"
API = "/api/v1"
TIMEOUT_S = 30.0
# Uploads and transcriptions: the body may take long to send, and a transcription is
# answered when its job ends (the server gives up at JOB_TIMEOUT).
LONG = httpx.Timeout(TIMEOUT_S, read=None, write=None)


@dataclass(frozen=True)
class Target:
    """Where vpa is and the API key to show it (None: keys are off)."""

    url: str = DEFAULT_URL
    api_key: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def absolute(self, path: str) -> str:
        """A link the API returned (`/api/v1/...`) on this server."""
        return self.url.rstrip("/") + path if path.startswith("/") else path


def job_path(job_id: str, *rest: str) -> str:
    """`/api/v1/jobs/<id>/...`, the id quoted: whatever was typed stays one path segment."""
    return "/".join((f"{API}/jobs", quote(job_id.strip(), safe=""), *rest))


def _raise_for(response: httpx.Response) -> None:
    if response.is_error:
        try:
            body = response.json()
        except ValueError:
            body = None
        raise ApiError(response.status_code, detail_of(body, response.text))


class VpaClient:
    """A session with one vpa service; close it (or use `with`)."""

    def __init__(self, target: Target, transport: httpx.BaseTransport | None = None) -> None:
        self.target = target
        self.http = httpx.Client(
            base_url=target.url,
            headers=target.headers,
            timeout=TIMEOUT_S,
            transport=transport,
        )

    def __enter__(self) -> VpaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise Unreachable(self.target.url, f"timed out ({exc.__class__.__name__})") from None
        except httpx.HTTPError as exc:
            raise Unreachable(self.target.url, exc) from None
        _raise_for(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._send(method, path, **kwargs).json()

    # jobs
    def create_job(self, body: dict[str, Any]) -> dict[str, Any]:
        job: dict[str, Any] = self._json("POST", f"{API}/jobs/", json=body)
        return job

    def list_jobs(self, params: dict[str, Any]) -> dict[str, Any]:
        page: dict[str, Any] = self._json("GET", f"{API}/jobs/", params=params)
        return page

    def job(self, job_id: str) -> dict[str, Any]:
        job: dict[str, Any] = self._json("GET", job_path(job_id))
        return job

    def command(self, job_id: str, verb: str) -> dict[str, Any]:
        """`cancel` or `retry`: the job as it is afterwards."""
        job: dict[str, Any] = self._json("POST", job_path(job_id, verb), timeout=LONG)
        return job

    def delete(self, job_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = self._json("DELETE", job_path(job_id))
        return answer

    def artifacts(self, job_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._json("GET", job_path(job_id, "artifacts"))
        return found

    @contextmanager
    def stream(self, path: str) -> Iterator[httpx.Response]:
        """A download, its body not yet read (an error status is an `ApiError`)."""
        try:
            with self.http.stream("GET", path, timeout=LONG) as response:
                if response.is_error:
                    response.read()
                    _raise_for(response)
                yield response
        except httpx.HTTPError as exc:
            raise Unreachable(self.target.url, exc) from None

    # uploads and the OpenAI-compatible transcription
    def upload(self, path: Path) -> dict[str, Any]:
        with path.open("rb") as file:
            files = {"file": (path.name, file, _content_type(path))}
            upload: dict[str, Any] = self._json("POST", f"{API}/uploads", files=files, timeout=LONG)
        return upload

    def transcribe(
        self, path: Path, response_format: str, language: str | None, *, diarize: bool = False
    ) -> str:
        # OpenAI's diarizing model's name asks the server to tell the speakers apart
        model = "gpt-4o-transcribe-diarize" if diarize else "whisper-1"
        form = {"model": model, "response_format": response_format}
        if language:
            form["language"] = language
        with path.open("rb") as file:
            files = {"file": (path.name, file, _content_type(path))}
            response = self._send(
                "POST", "/v1/audio/transcriptions", data=form, files=files, timeout=LONG
            )
        return response.text

    # API keys (the admin's)
    def create_key(self, body: dict[str, Any]) -> dict[str, Any]:
        key: dict[str, Any] = self._json("POST", f"{API}/keys", json=body)
        return key

    def list_keys(self) -> list[dict[str, Any]]:
        keys: list[dict[str, Any]] = self._json("GET", f"{API}/keys")
        return keys

    def revoke_key(self, key_id: str) -> dict[str, Any]:
        key: dict[str, Any] = self._json("DELETE", f"{API}/keys/{quote(key_id.strip(), safe='')}")
        return key


def _content_type(path: Path) -> str:
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"
