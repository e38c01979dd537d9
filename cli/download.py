"""`vpa download`: a job's artifacts saved under a directory by their own names, each
streamed to a `.part` file that takes its name once whole."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path, PurePosixPath
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TransferSpeedColumn,
)

from cli.client import VpaClient
from cli.errors import CliError

CHUNK_BYTES = 1024 * 1024


def safe_name(filename: Any, fallback: str) -> str:
    """The last part of a name the server gave (never a path out of the directory), or
    `fallback` when nothing usable is left."""
    name = PurePosixPath(str(filename or "").replace("\\", "/")).name.strip()
    return fallback if name in ("", ".", "..") else name


def file_names(artifacts: list[dict[str, Any]]) -> list[str]:
    """A distinct file name for each artifact: its own, or with its id's first characters
    added (`clip-<id8>.mp4`) when another artifact already took that name."""
    taken: set[str] = set()
    names = []
    for artifact in artifacts:
        ident = str(artifact.get("id", "artifact"))
        name = safe_name(artifact.get("filename"), ident)
        if name in taken:
            path = PurePosixPath(name)
            name = f"{path.stem}-{ident[:8]}{path.suffix}"
        taken.add(name)
        names.append(name)
    return names


def chosen(artifacts: list[dict[str, Any]], kinds: Collection[str]) -> list[dict[str, Any]]:
    """The artifacts of `kinds` (all of them when none is named)."""
    return [a for a in artifacts if not kinds or a.get("kind") in kinds]


def download(
    client: VpaClient, job_id: str, kinds: Collection[str], directory: Path, console: Console
) -> list[Path]:
    """Save the job's artifacts of `kinds` under `directory`; the paths written."""
    every = client.artifacts(job_id)
    artifacts = chosen(every, kinds)
    if not artifacts:
        have = sorted({str(a.get("kind")) for a in every}) or ["none"]
        wanted = f" of kind {', '.join(sorted(kinds))}" if kinds else ""
        raise CliError(f"job {job_id} has no artifacts{wanted} (it has: {', '.join(have)})")
    directory.mkdir(parents=True, exist_ok=True)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
    )
    saved = []
    with Progress(*columns, console=console) as progress:
        for artifact, name in zip(artifacts, file_names(artifacts), strict=True):
            task = progress.add_task(name, total=artifact.get("size_bytes") or None)
            target = directory / name
            _save(client, str(artifact["download_url"]), target, progress, task)
            saved.append(target)
    return saved


def _save(client: VpaClient, url: str, target: Path, progress: Progress, task: Any) -> None:
    part = target.with_name(f".{target.name}.part")
    try:
        with client.stream(url) as response, part.open("wb") as file:
            for chunk in response.iter_bytes(CHUNK_BYTES):
                file.write(chunk)
                progress.advance(task, len(chunk))
        part.replace(target)
    finally:
        part.unlink(missing_ok=True)
