"""The links the API builds: one function per URL, and the clips' links from their ids."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from deployments.urls import artifact_download_url, clip_with_links, job_with_links, public_job
from storage.models import Artifact
from storage.schemas import ArtifactPublic

JOB = "11111111-1111-1111-1111-111111111111"
IDS = {"video": "a" * 8, "thumbnail": "b" * 8, "subtitles": "c" * 8}


def test_artifact_url_is_the_one_artifacts_show() -> None:
    artifact = Artifact(
        job_id=uuid.UUID(JOB),
        kind="audio",
        filename="a.wav",
        storage_path=f"{JOB}/a.wav",
        format="wav",
        content_type="audio/wav",
    )
    shown = ArtifactPublic.model_validate(artifact).download_url
    assert shown == artifact_download_url(JOB, artifact.id)
    assert shown == f"/api/v1/jobs/{JOB}/artifacts/{artifact.id}/download"


def test_clip_links_keep_order_and_are_idempotent() -> None:
    clip = {"index": 1, "artifacts": IDS}
    linked = clip_with_links(JOB, clip)
    assert list(linked) == ["index", "artifacts", "video_url", "thumbnail_url", "subtitles_url"]
    assert linked["thumbnail_url"] == f"/api/v1/jobs/{JOB}/artifacts/{'b' * 8}/download"
    assert clip_with_links(JOB, linked) == linked
    assert list(clip_with_links(JOB, linked)) == list(linked)


def test_clips_without_ids_are_left_alone() -> None:
    assert clip_with_links(JOB, {"start": 0.0}) == {"start": 0.0}
    assert clip_with_links(JOB, {"artifacts": {"video": "v"}}) == {
        "artifacts": {"video": "v"},
        "video_url": artifact_download_url(JOB, "v"),
    }
    data = {"id": JOB, "generated_clips": None}
    assert job_with_links(data) is data


def test_public_job_links_every_clip() -> None:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    row = {
        "id": JOB,
        "youtube_url": "http://x.test/v",
        "job_type": "clip_generation",
        "status": "completed",
        "priority": 5,
        "progress": 100.0,
        "generated_clips": [{"index": 1, "artifacts": IDS}, {"index": 2, "artifacts": IDS}],
        "created_at": now,
        "updated_at": now,
    }
    job = public_job(row)
    assert [c["video_url"] for c in job.generated_clips or []] == [
        artifact_download_url(JOB, IDS["video"])
    ] * 2
    assert job_with_links(public_job(row).model_dump(mode="json")) == job.model_dump(mode="json")
