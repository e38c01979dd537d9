"""The OpenAI-compatible API on the real service, with OpenAI's own Python client: speech
transcribed by the bundled model (tiny.en) in three formats, the models list, translation
refused for an English-only model, and each request a job in the job list; and `vpa
transcribe`, the command-line client's use of it."""

from __future__ import annotations

import openai
import pytest
from typer.testing import CliRunner

from cli.main import app as cli_app
from tests.fixtures.speech import ASSETS_DIR, SpeechSample, word_error_rate
from tests.integration.conftest import MODELS_ADMIN_KEY, VpaApp


@pytest.fixture(scope="module")
def app(models_app: VpaApp) -> VpaApp:
    return models_app


@pytest.fixture(scope="module")
def client(app: VpaApp) -> openai.OpenAI:
    # no retries: a refusal must reach the test as it was answered
    return openai.OpenAI(
        base_url=f"{app.base_url}/v1", api_key=MODELS_ADMIN_KEY, max_retries=0, timeout=300
    )


def test_openais_client_transcribes_speech(
    app: VpaApp, client: openai.OpenAI, speech_sample: SpeechSample
) -> None:
    with speech_sample.path.open("rb") as audio:
        text = client.audio.transcriptions.create(
            model="whisper-1", file=audio, response_format="text"
        )
    assert isinstance(text, str)
    assert word_error_rate(speech_sample.text, text) < 0.15

    with speech_sample.path.open("rb") as audio:
        srt = client.audio.transcriptions.create(
            model="whisper-1", file=audio, response_format="srt"
        )
    assert isinstance(srt, str) and srt.startswith("1\n00:00:")
    assert " --> " in srt

    with speech_sample.path.open("rb") as audio:
        verbose = client.audio.transcriptions.create(
            model="whisper-1",
            file=audio,
            response_format="verbose_json",
            timestamp_granularities=["word", "segment"],
            language="en",
            extra_body={"priority": 8},
        )
    assert verbose.language == "en"
    assert verbose.duration == pytest.approx(speech_sample.duration_s, abs=0.5)
    assert word_error_rate(speech_sample.text, verbose.text) < 0.15
    assert verbose.segments and verbose.words
    assert all(w.start <= w.end for w in verbose.words)
    assert verbose.segments[0].start <= verbose.words[0].start

    # each request was a job of the job list, the last with the priority it asked for
    jobs = app.client.get("/api/v1/jobs/", params={"job_type": "transcription"}).json()
    uploaded = [j for j in jobs["data"] if j["youtube_url"].startswith("upload://")]
    assert len(uploaded) >= 3 and all(j["status"] == "completed" for j in uploaded)
    assert sorted(j["priority"] for j in uploaded)[-1] == 8


def test_the_models_list(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == [
        "whisper-1",
        "tiny.en",
        "gpt-4o-transcribe-diarize",
    ]


def test_an_unknown_model_and_translation_with_tiny_en_are_bad_requests(
    client: openai.OpenAI, speech_sample: SpeechSample
) -> None:
    with speech_sample.path.open("rb") as audio, pytest.raises(openai.BadRequestError) as caught:
        client.audio.translations.create(model="whisper-1", file=audio)
    assert caught.value.code == "model_not_multilingual"
    assert "multilingual" in caught.value.message

    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")
    with speech_sample.path.open("rb") as audio, pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(model="large-v3", file=audio)
    assert caught.value.code == "model_not_found" and caught.value.param == "model"


def test_vpa_transcribe_prints_srt(app: VpaApp, speech_sample: SpeechSample) -> None:
    """The command-line client's one-call transcription (`vpa transcribe`, cli/) uses
    these routes: the SRT on stdout, cue by cue."""
    env = {"VPA_URL": app.base_url, "VPA_API_KEY": MODELS_ADMIN_KEY}
    args = ["transcribe", str(speech_sample.path), "--format", "srt"]
    result = CliRunner().invoke(cli_app, args, env=env)
    assert result.exit_code == 0, result.output
    cues = [block.splitlines() for block in result.stdout.strip().split("\n\n")]
    assert cues[0][0] == "1" and cues[0][1].startswith("00:00:")
    assert all(cue[0].isdigit() and " --> " in cue[1] for cue in cues)
    spoken = " ".join(" ".join(cue[2:]) for cue in cues)
    assert word_error_rate(speech_sample.text, spoken) < 0.2


def test_vpa_transcribe_diarize_and_diarized_json(app: VpaApp) -> None:
    """Speakers through these routes: `vpa transcribe --diarize` (OpenAI's diarizing model
    name) prints a paragraph per turn of the two-voice dialogue, and `diarized_json`
    labels each segment."""
    dialogue = ASSETS_DIR / "dialogue_en.ogg"
    env = {"VPA_URL": app.base_url, "VPA_API_KEY": MODELS_ADMIN_KEY}
    result = CliRunner().invoke(cli_app, ["transcribe", str(dialogue), "--diarize"], env=env)
    assert result.exit_code == 0, result.output
    paragraphs = result.stdout.strip().split("\n\n")
    labels = [p.split(":", 1)[0] for p in paragraphs]
    assert set(labels) == {"Speaker 1", "Speaker 2"}, paragraphs
    assert len(paragraphs) >= 5  # six turns: at most one short one merges
    assert labels[0] == "Speaker 1"  # numbered in order of first speech
    with dialogue.open("rb") as audio:
        r = app.client.post(
            "/v1/audio/transcriptions",
            files={"file": ("dialogue.ogg", audio, "audio/ogg")},
            data={"model": "whisper-1", "response_format": "diarized_json"},
            timeout=300,
        )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["task"] == "transcribe" and body["text"] and body["duration"] > 20
    segments = body["segments"]
    assert {s["type"] for s in segments} == {"transcript.text.segment"}
    assert {s["speaker"] for s in segments} == {"Speaker 1", "Speaker 2"}
    assert all(s["start"] < s["end"] and s["text"] for s in segments)
