"""A retry resumes after the last completed stage: an analysis that fails (a sentiment model
the Analyzer cannot use) and is retried once the configuration is fixed does not fetch,
extract or transcribe again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.fixtures.models import tiny_sentiment_model
from tests.integration.conftest import deploy


def _stages(events: list[dict[str, Any]], kind: str) -> list[str]:
    return [e["stage"] for e in events if e["type"] == kind]


def test_retry_after_analysis_failure_does_not_transcribe_again(
    deploy_vpa: Any, http_port: int, speech_video: str, tmp_path: Path
) -> None:
    # labels that say nothing about polarity: the Analyzer refuses the model, and every
    # analysis fails with that reason until the configuration is fixed
    model = tiny_sentiment_model(tmp_path, "the quick brown fox", labels=("joy", "anger"))
    app = deploy_vpa(with_models=True, sentiment_model=str(model))
    job = app.submit(speech_video, job_type="analysis", max_retries=0)
    failed = app.wait(job["id"], timeout_s=180)
    assert failed["status"] == "failed", failed
    assert failed["error_code"] == "model_unavailable" and "sentiment" in failed["error_message"]
    assert failed["transcript"], "the transcript of the completed stage is kept"
    assert _stages(app.events(job["id"]), "stage_completed") == ["fetch", "audio", "transcribe"]

    # The operator fixes the configuration (VADER again) and retries the job.
    fixed = deploy(http_port, app.settings.model_copy(update={"sentiment_model": None}), 1, True)
    r = fixed.client.post(f"/api/v1/jobs/{job['id']}/retry")
    assert r.status_code == 200, r.text
    done = fixed.wait(job["id"], timeout_s=180)
    assert done["status"] == "completed", done
    assert done["analysis_results"]["sentiment"] in {"positive", "negative", "neutral", "mixed"}
    assert done["transcript"] == failed["transcript"]
    events = fixed.events(job["id"])
    assert _stages(events, "stage_started").count("transcribe") == 1
    assert _stages(events, "stage_started").count("fetch") == 1
    assert _stages(events, "stage_completed") == ["fetch", "audio", "transcribe", "analyze"]
