"""The WebSocket message shapes, built in one place for live updates and for replays."""

from __future__ import annotations

from typing import Any

from storage.models import TERMINAL_STATUSES, Job, JobEvent
from storage.schemas import JobPublic, iso_z


def _value(x: Any) -> Any:
    return x.value if hasattr(x, "value") else x


def update_message(job_id: str, event: JobEvent, job: Job | None = None) -> dict[str, Any]:
    """A `job_update` for one persisted event.

    The event's own snapshot (status, progress and stage when it was written) is used, so a
    replay of old events reads exactly as the live messages did.
    """
    snap = event.data or {}
    status = snap.get("status", _value(job.status) if job else None)
    progress = snap.get("progress", job.progress if job else None)
    data: dict[str, Any] = {
        "id": job_id,
        "status": status,
        "progress": progress,
        "stage": event.stage if event.stage is not None else snap.get("stage"),
        "message": event.message,
        "event": _value(event.type),
        "event_data": {k: v for k, v in snap.items() if k not in {"status", "progress", "stage"}},
        "updated_at": iso_z(event.created_at),
    }
    if job is not None:
        data.update(
            error_message=job.error_message,
            error_code=job.error_code,
            retry_count=job.retry_count,
            video_title=job.video_title,
        )
    return {
        "type": "job_update",
        "job_id": job_id,
        "seq": event.seq,
        "event": data["event"],
        "data": data,
    }


OWNER = "owner"  # of a message for the hub: its job's owner, for the fan-out, never sent


def hub_message(job_id: str, event: JobEvent, job: Job) -> dict[str, Any]:
    """`update_message` as published to the hub: with the job's owner, which the ingress
    uses to give a broadcast socket only its API key's jobs, and drops before sending."""
    return {**update_message(job_id, event, job), OWNER: job.owner}


def initial_message(job: Job) -> dict[str, Any]:
    return {
        "type": "initial_status",
        "job_id": str(job.id),
        "seq": job.last_event_seq,
        "data": JobPublic.model_validate(job).model_dump(mode="json"),
    }


def finished_message(job: Job) -> dict[str, Any]:
    return {
        "type": "job_finished",
        "job_id": str(job.id),
        "seq": job.last_event_seq,
        "status": _value(job.status),
        "data": JobPublic.model_validate(job).model_dump(mode="json"),
    }


def is_terminal_status(status: Any) -> bool:
    """Whether a status (a `JobStatus` or its value) is one of `TERMINAL_STATUSES`."""
    return _value(status) in TERMINAL_STATUSES
