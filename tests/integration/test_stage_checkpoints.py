"""A retry resumes after the last completed stage: an analysis that fails (a sentiment model
the Analyzer cannot use) and is retried once the configuration is fixed does not fetch,
extract or transcribe again."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from pipeline.ffmpeg import ffmpeg_exe
from tests.integration.conftest import deploy


def unusable_sentiment_model(directory: Path) -> Path:
    """A BERT classifier whose labels ("joy", "anger") say nothing about polarity: the
    Analyzer refuses it, and every analysis fails with that reason until it is replaced."""
    from transformers import (  # type: ignore[attr-defined]
        BertConfig,
        BertForSequenceClassification,
        BertTokenizerFast,
    )

    words = ["quick", "brown", "fox", "team", "budget", "library", "ocean", "garden"]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(directory / "vocab.txt"))
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        id2label={0: "joy", 1: "anger"},
        label2id={"joy": 0, "anger": 1},
    )
    BertForSequenceClassification(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def speech_video(media_server: Any, speech_sample: Any, tmp_path_factory: Any) -> str:
    out = tmp_path_factory.mktemp("speech") / "checkpoint_speech.mp4"
    subprocess.run(
        [
            ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=s=160x120:r=10:d={speech_sample.duration_s}",
            "-i", str(speech_sample.path),
            "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest", str(out),
        ],
        check=True,
    )  # fmt: skip
    media_server.add_file(out, out.name)
    return str(media_server.url(out.name))


def _stages(events: list[dict[str, Any]], kind: str) -> list[str]:
    return [e["stage"] for e in events if e["type"] == kind]


def test_retry_after_analysis_failure_does_not_transcribe_again(
    deploy_vpa: Any, http_port: int, speech_video: str, tmp_path: Path
) -> None:
    model = unusable_sentiment_model(tmp_path)
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
