"""The transcription and analysis job types end to end, with the real bundled models behind
the Transcriber and Analyzer deployments."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest

from pipeline.media.ffmpeg import ffmpeg_exe
from tests.fixtures.speech import word_error_rate
from tests.integration.conftest import VpaApp
from tests.integration.scrape import poll, poll_growth, ray_series, value


@pytest.fixture(scope="module")
def app(models_app: VpaApp) -> VpaApp:
    return models_app


def _srt_times(text: str) -> list[tuple[float, float]]:
    def secs(stamp: str) -> float:
        h, m, rest = stamp.split(":")
        s, ms = rest.split(",")
        return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000

    return [
        (secs(a), secs(b))
        for a, b in re.findall(r"(\d\d:\d\d:\d\d,\d\d\d) --> (\d\d:\d\d:\d\d,\d\d\d)", text)
    ]


def test_transcription_job(app: VpaApp, speech_video: str, speech_sample: Any) -> None:
    rtf = "vpa_transcription_realtime_factor_count"
    before = ray_series(rtf)
    job = app.submit(speech_video, job_type="transcription", options={"audio_format": "flac"})
    done = app.wait(job["id"], timeout_s=180)
    assert done["status"] == "completed", done
    # the Transcriber replica's real-time factor of this transcription, in Ray's metrics
    # (per process: one that ended meanwhile drops out of /metrics' sums) and at /metrics
    poll_growth(rtf, before, 1)
    figures = poll(app, lambda f: value(f, rtf) > 0)
    assert value(figures, "vpa_transcription_realtime_factor_sum") > 0
    assert word_error_rate(speech_sample.text, done["transcript"]) < 0.15
    assert done["language"] == "en" and done["language_probability"] > 0.5
    segments = done["segments"]
    assert segments and all(s["start"] < s["end"] for s in segments)
    assert all(
        {"id", "start", "end", "text", "avg_logprob", "no_speech_prob", "words"} <= set(s)
        for s in segments
    )
    events = app.events(job["id"])
    assert [e["stage"] for e in events if e["type"] == "stage_completed"] == [
        "fetch",
        "audio",
        "transcribe",
    ]
    assert any(e["type"] == "progress" and e["stage"] == "transcribe" for e in events)
    arts = {a["kind"]: a for a in app.client.get(f"/api/v1/jobs/{job['id']}/artifacts").json()}
    assert {"transcript_json", "subtitles_srt", "subtitles_vtt", "transcript_txt"} <= set(arts)
    srt = app.client.get(arts["subtitles_srt"]["download_url"]).text
    times = _srt_times(srt)
    assert times[0][0] == pytest.approx(segments[0]["start"], abs=0.001)
    assert times[-1][1] == pytest.approx(segments[-1]["end"], abs=0.001)
    vtt = app.client.get(arts["subtitles_vtt"]["download_url"])
    assert vtt.text.startswith("WEBVTT") and vtt.headers["content-type"].startswith("text/vtt")


def test_analysis_job(app: VpaApp, speech_video: str) -> None:
    job = app.submit(speech_video, job_type="analysis", options={"min_confidence": 0.3})
    done = app.wait(job["id"], timeout_s=180)
    assert done["status"] == "completed", done
    results = done["analysis_results"]
    assert results["sentiment"] in {"positive", "negative", "neutral", "mixed"}
    assert isinstance(results["topics"], list) and isinstance(results["keywords"], list)
    assert results["keywords"], results
    for key in (
        "sentiment_score",
        "sentiment_timeline",
        "entities",
        "summary",
        "chapters",
        "word_count",
    ):
        assert key in results
    stages = [e["stage"] for e in app.events(job["id"]) if e["type"] == "stage_completed"]
    assert stages == ["fetch", "audio", "transcribe", "analyze"]


def test_missing_model_fails_the_job_clearly(app: VpaApp, speech_video: str) -> None:
    job = app.submit(
        speech_video, job_type="transcription", options={"model_size": "large-v3"}, max_retries=0
    )
    done = app.wait(job["id"], timeout_s=120)
    assert done["status"] == "failed"
    assert done["error_code"] == "model_unavailable", done
    assert "large-v3" in done["error_message"]
    assert app.client.get("/health").status_code == 200


def test_cancel_during_transcription(
    app: VpaApp, media_server: Any, speech_sample: Any, speech_video: str, tmp_path_factory: Any
) -> None:
    """A long transcription is interrupted: the job ends cancelled in the transcribe stage
    and nothing more is written for it."""
    # 60 plays of the sample, 23 minutes (the sound copied, not encoded again): the
    # transcription outlasts the test by far
    out = tmp_path_factory.mktemp("long") / "long_speech.mkv"
    subprocess.run(
        [
            ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
            "-stream_loop", "59", "-i", str(speech_sample.path),
            "-f", "lavfi", "-i", "color=c=black:s=64x48:r=5",
            "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "copy", "-shortest", str(out),
        ],
        check=True,
    )  # fmt: skip
    media_server.add_file(out, "long_speech.mkv")
    job = app.submit(
        media_server.url("long_speech.mkv"),
        job_type="transcription",
        options={"audio_format": "flac", "audio_quality": "low"},
    )
    app.wait(
        job["id"],
        lambda j: (
            j["current_stage"] == "transcribe" and j["status_message"] != "transcribe started"
        ),
        timeout_s=120,
    )
    r = app.client.post(f"/api/v1/jobs/{job['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    events = app.events(job["id"])
    assert events[-1]["type"] == "cancelled" and events[-1]["stage"] == "transcribe"
    assert "transcribe" not in [e["stage"] for e in events if e["type"] == "stage_completed"]
    # The Transcriber then serves a whole transcription for another job, and by its end
    # still nothing more was written for the cancelled one.
    later = app.wait(app.submit(speech_video, job_type="transcription")["id"], timeout_s=180)
    assert later["status"] == "completed", later
    assert len(app.events(job["id"])) == len(events)
