"""A model replica killed (SIGKILL, by the pid it reports) while it serves a job: the stage
fails with the retryable `worker_crashed`, Serve starts a new replica, the next attempt
reaches it and the job completes with its whole transcript; completed stages do not run
again.

The replica is first stopped (SIGSTOP) once its request is known to be in it (the job shows
its progress), so that the request cannot end before the kill.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
from pathlib import Path
from typing import Any

import psutil
import pytest

from pipeline.media.ffmpeg import ffmpeg_exe
from tests.fixtures.speech import word_error_rate
from tests.integration.conftest import VpaApp
from tests.integration.faults import one_replica_pid, sigkill
from tests.integration.processes import kill_if_running

PLAYS = 4  # of the 23 s sample: a transcription that lasts long enough to be caught in


@pytest.fixture(scope="module")
def app(deploy_vpa: Any) -> VpaApp:
    return deploy_vpa(with_models=True, max_concurrent_jobs=2)


@pytest.fixture(scope="module")
def looped_speech(media_server: Any, speech_sample: Any, tmp_path_factory: Any) -> str:
    out = tmp_path_factory.mktemp("faults") / "looped_speech.mkv"
    subprocess.run(
        [
            ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
            "-stream_loop", str(PLAYS - 1), "-i", str(speech_sample.path),
            "-f", "lavfi", "-i", "color=c=black:s=64x48:r=5",
            "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "copy", "-shortest", str(out),
        ],
        check=True,
    )  # fmt: skip
    media_server.add_file(out, Path(out).name)
    return str(media_server.url(Path(out).name))


def _transcribed_s(job: dict[str, Any]) -> float:
    """Seconds of audio the job's transcribe stage reports done (0 before it starts)."""
    found = re.match(r"transcribed ([\d.]+)", job["status_message"] or "")
    return float(found[1]) if job["current_stage"] == "transcribe" and found else 0.0


def _stages(events: list[dict[str, Any]], kind: str) -> list[str]:
    return [e["stage"] for e in events if e["type"] == kind]


def _kill_stopped_replica(app: VpaApp, job_id: str, deployment: str, stage: str) -> int:
    """Stop the deployment's replica, check the stage is still unfinished, SIGKILL it."""
    replica = psutil.Process(one_replica_pid(deployment))
    replica.suspend()
    try:
        assert stage not in _stages(app.events(job_id), "stage_completed")
        sigkill(replica)
    finally:
        kill_if_running(replica)
    return replica.pid


def _assert_retried_once_after_crash(
    app: VpaApp, job_id: str, stage: str, completed: list[str]
) -> dict[str, Any]:
    done = app.wait(job_id, timeout_s=300)
    assert done["status"] == "completed", done
    assert done["attempt"] == 2, done
    events = app.events(job_id)
    retries = [e for e in events if e["type"] == "retry_scheduled"]
    assert [e["data"]["error_code"] for e in retries] == ["worker_crashed"], retries
    assert retries[0]["stage"] == stage
    started = _stages(events, "stage_started")
    assert started.count(stage) == 2, started  # the killed attempt, then the retry
    assert all(started.count(s) == 1 for s in completed if s != stage), started
    assert _stages(events, "stage_completed") == completed
    return done


def test_transcriber_replica_killed_mid_transcription(
    app: VpaApp, looped_speech: str, speech_sample: Any
) -> None:
    job = app.submit(
        looped_speech,
        job_type="transcription",
        options={"audio_format": "flac", "audio_quality": "low"},
        max_retries=3,
    )
    app.wait(
        job["id"],
        lambda j: (
            j["current_stage"] == "transcribe"
            and (j["status_message"] or "").startswith("transcribed")
        ),
        timeout_s=180,
    )
    old = _kill_stopped_replica(app, job["id"], "Transcriber", "transcribe")
    done = _assert_retried_once_after_crash(
        app, job["id"], "transcribe", ["fetch", "audio", "transcribe"]
    )
    assert word_error_rate(" ".join([speech_sample.text] * PLAYS), done["transcript"]) < 0.2
    arts = {a["kind"]: a for a in app.client.get(f"/api/v1/jobs/{job['id']}/artifacts").json()}
    assert {"transcript_json", "subtitles_srt", "subtitles_vtt", "transcript_txt"} <= set(arts)
    txt = app.client.get(arts["transcript_txt"]["download_url"])
    assert txt.status_code == 200 and txt.text.split() == done["transcript"].split()
    assert one_replica_pid("Transcriber") != old  # Serve replaced the killed replica


def test_analyzer_replica_killed_mid_analysis(app: VpaApp, looped_speech: str) -> None:
    # The Analyzer is stopped before the analysis can reach it; once the analyze stage has
    # started and waits on it, it is killed. Serve sends the request to the replacement
    # replica (a request a replica never accepted is routed again), or, if the stopped
    # replica had taken it, the attempt fails as worker_crashed and the retry reaches it.
    replica = psutil.Process(one_replica_pid("Analyzer"))
    job = app.submit(looped_speech, job_type="analysis", max_retries=3)
    try:
        app.wait(job["id"], lambda j: _transcribed_s(j) > PLAYS * 23 / 2, timeout_s=240)
        replica.suspend()  # late: a replica stopped for long fails Serve's health checks
        app.wait(job["id"], lambda j: j["current_stage"] == "analyze", timeout_s=300)
        assert "analyze" not in _stages(app.events(job["id"]), "stage_completed")
        sigkill(replica)
    finally:
        with contextlib.suppress(psutil.NoSuchProcess):
            replica.resume()
        kill_if_running(replica)
    done = app.wait(job["id"], timeout_s=300)
    assert done["status"] == "completed", done
    results = done["analysis_results"]
    assert results["sentiment"] in {"positive", "negative", "neutral", "mixed"}
    assert results["keywords"] and results["word_count"] > 0
    events = app.events(job["id"])
    assert _stages(events, "stage_completed") == ["fetch", "audio", "transcribe", "analyze"]
    started = _stages(events, "stage_started")
    assert [started.count(s) for s in ("fetch", "audio", "transcribe")] == [1, 1, 1], started
    retries = [e["data"]["error_code"] for e in events if e["type"] == "retry_scheduled"]
    assert set(retries) <= {"worker_crashed"}, retries
    assert started.count("analyze") == 1 + len(retries)
    assert one_replica_pid("Analyzer") != replica.pid
