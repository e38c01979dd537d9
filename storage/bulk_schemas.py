"""The bodies and answers of the bulk routes (`POST /api/v1/jobs/bulk`, bulk cancel, retry
and delete): each item is accepted or refused on its own."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField

from storage.schemas import JobCreate, JobPublic


class BulkJobCreate(BaseModel):
    """Several submissions at once; each is accepted or refused on its own."""

    model_config = ConfigDict(extra="forbid")

    jobs: list[JobCreate] = PydanticField(min_length=1, max_length=100)


class BulkJobIds(BaseModel):
    """Several jobs to act on (cancel, retry, delete)."""

    model_config = ConfigDict(extra="forbid")

    job_ids: list[uuid.UUID] = PydanticField(min_length=1, max_length=500)


class BulkItemResult(BaseModel):
    """The outcome for one item of a bulk request, with the status code it would have had."""

    index: int | None = None
    job_id: uuid.UUID | None = None
    ok: bool
    status_code: int
    detail: str | None = None
    job: JobPublic | None = None


class BulkResult(BaseModel):
    results: list[BulkItemResult]
    succeeded: int
    failed: int
