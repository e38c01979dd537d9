"""Tables and summaries of what the API returns, as rich renderables."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

STATUS_STYLES = {
    "completed": "green",
    "failed": "red",
    "cancelled": "yellow",
    "processing": "cyan",
    "queued": "blue",
    "pending": "blue",
}


def status_text(status: str | None) -> Text:
    return Text(status or "-", style=STATUS_STYLES.get(status or "", ""))


def percent(progress: Any) -> str:
    """A 0-100 progress as `42%` (`-` when unknown)."""
    if not isinstance(progress, int | float) or isinstance(progress, bool):
        return "-"
    return f"{progress:.0f}%"


def size(num_bytes: Any) -> str:
    """Bytes for people: `912 B`, `1.5 KiB`, `3.0 MiB`."""
    if not isinstance(num_bytes, int) or isinstance(num_bytes, bool):
        return "-"
    if num_bytes < 1024:
        return f"{num_bytes} B"
    value, units = num_bytes / 1024, ["KiB", "MiB", "GiB"]
    while value >= 1024 and len(units) > 1:
        value /= 1024
        units.pop(0)
    return f"{value:.1f} {units[0]}"


def _when(value: Any) -> str:
    """An API timestamp to the second, without its `T` and fraction."""
    if not isinstance(value, str):
        return "-"
    return value.replace("T", " ")[:19]


def jobs_table(jobs: list[dict[str, Any]], count: int | None = None) -> Table:
    title = None if count is None else f"{len(jobs)} of {count} job(s)"
    table = Table(title=title, title_justify="left")
    table.add_column("id", no_wrap=True)
    for name in ("type", "status", "progress", "stage", "created", "source"):
        table.add_column(name, overflow="fold")
    for job in jobs:
        table.add_row(
            str(job.get("id")),
            str(job.get("job_type")),
            status_text(job.get("status")),
            percent(job.get("progress")),
            job.get("current_stage") or "-",
            _when(job.get("created_at")),
            str(job.get("video_title") or job.get("youtube_url") or "-"),
        )
    return table


def job_fields(job: dict[str, Any]) -> Table:
    """A job's main fields, one per row."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    rows: list[tuple[str, str | Text]] = [
        ("id", str(job.get("id"))),
        ("type", str(job.get("job_type"))),
        ("status", status_text(job.get("status"))),
        ("progress", percent(job.get("progress"))),
        ("stage", job.get("current_stage") or "-"),
        ("message", job.get("status_message") or "-"),
        ("source", str(job.get("youtube_url"))),
        ("priority", str(job.get("priority"))),
        ("created", _when(job.get("created_at"))),
        ("completed", _when(job.get("completed_at"))),
    ]
    if job.get("video_title"):
        rows.insert(7, ("title", str(job["video_title"])))
    if job.get("error_code") or job.get("error_message"):
        error = f"{job.get('error_code') or 'error'}: {job.get('error_message') or ''}"
        rows.insert(4, ("error", Text(error, style="red")))
    for name, value in rows:
        table.add_row(name, value)
    return table


def stages_table(job: dict[str, Any]) -> Table | None:
    """The seconds each completed stage took, in the order they ran."""
    timings = job.get("stage_timings") or {}
    if not timings:
        return None
    table = Table(title="stages", title_justify="left")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    for stage, seconds in timings.items():
        table.add_row(stage, f"{seconds:.2f}" if isinstance(seconds, int | float) else "-")
    return table


def artifacts_table(artifacts: list[dict[str, Any]], base_url: str) -> Table:
    table = Table(title="artifacts", title_justify="left")
    table.add_column("kind", no_wrap=True)
    table.add_column("file", overflow="fold")
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("download", overflow="fold")
    for artifact in artifacts:
        link = str(artifact.get("download_url") or "")
        table.add_row(
            str(artifact.get("kind")),
            str(artifact.get("filename")),
            size(artifact.get("size_bytes")),
            base_url.rstrip("/") + link if link.startswith("/") else link,
        )
    return table


def job_details(job: dict[str, Any], artifacts: list[dict[str, Any]], base_url: str) -> Group:
    """`vpa show`: the fields, the stages' timings, the artifacts with their links."""
    parts: list[RenderableType] = [job_fields(job)]
    stages = stages_table(job)
    if stages is not None:
        parts.append(stages)
    if job.get("speakers"):
        parts.append(speakers_table(job["speakers"]))
    if artifacts:
        parts.append(artifacts_table(artifacts, base_url))
    return Group(*parts)


def speakers_table(speakers: list[dict[str, Any]]) -> Table:
    """A diarized job's speakers: talk time (m:ss and share), turns, words."""
    table = Table(title="speakers")
    for name in ("speaker", "talk time", "share", "turns", "words"):
        table.add_column(name, justify="left" if name == "speaker" else "right")
    total = sum(float(s.get("talk_time") or 0) for s in speakers) or 1.0
    for speaker in speakers:
        talk = float(speaker.get("talk_time") or 0)
        table.add_row(
            str(speaker.get("speaker")),
            f"{int(talk) // 60}:{int(talk) % 60:02d}",
            f"{talk / total:.0%}",
            str(speaker.get("turns")),
            str(speaker.get("words")),
        )
    return table


def keys_table(keys: list[dict[str, Any]]) -> Table:
    table = Table()
    table.add_column("id", no_wrap=True)
    for name in ("name", "prefix", "created", "revoked"):
        table.add_column(name, overflow="fold")
    for key in keys:
        revoked = key.get("revoked_at")
        table.add_row(
            str(key.get("id")),
            str(key.get("name")),
            str(key.get("key_prefix")),
            _when(key.get("created_at")),
            Text(_when(revoked), style="red") if revoked else Text("-"),
        )
    return table
