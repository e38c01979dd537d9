"""Job languages: codes normalised to Whisper's, unknown ones refused with a 422 naming
`options.language`, and a non-English language refused with an English-only model: at
submission (422) when the model's name says so, in the engine (`invalid_options`, before
any audio is decoded) when only the loaded model does."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from faster_whisper.tokenizer import _LANGUAGE_CODES

from deployments.api import create_app
from pipeline.errors import TranscriptionError
from pipeline.options import TranscribeOptions, stage_options
from pipeline.transcription.whisper_engines import FasterWhisperEngine
from pipeline.transcription.whisper_models import english_only
from pipeline.types import CancelToken
from storage.db import create_db_engine, init_db
from storage.languages import WHISPER_LANGUAGES, normalise_language
from storage.repository import JobRepository
from storage.schemas import ProcessingOptions
from tests.unit.test_api import NEW, make_services


def test_the_table_is_whispers_own_list() -> None:
    assert frozenset(_LANGUAGE_CODES) == WHISPER_LANGUAGES


@pytest.mark.parametrize(
    ("given", "code"),
    [
        ("en", "en"), ("EN", "en"), (" eng ", "en"), ("en-US", "en"),
        ("pt-BR", "pt"), ("por", "pt"), ("ger", "de"), ("deu", "de"), ("fre", "fr"),
        ("fra", "fr"), ("chi", "zh"), ("zho", "zh"), ("cmn", "zh"), ("zh-Hant-TW", "zh"),
        ("nb", "no"), ("nob", "no"), ("iw", "he"), ("jv", "jw"), ("jav", "jw"),
        ("haw", "haw"), ("yue", "yue"), ("sr-Latn-RS", "sr"), ("fil", "tl"),
    ],
)  # fmt: skip
def test_codes_normalise_to_whispers(given: str, code: str) -> None:
    assert normalise_language(given) == code
    assert ProcessingOptions(language=given).language == code


@pytest.mark.parametrize(
    "given", ["xx", "english", "e1", "", "en--US", "en_US", "pt-", "tlh", "qaa"]
)
def test_other_values_are_refused(given: str) -> None:
    with pytest.raises(ValueError, match=r"options\.language .* is not a language Whisper"):
        normalise_language(given)


def test_model_names_that_say_english_only() -> None:
    assert english_only("tiny.en") and english_only("Systran/faster-whisper-base.en")
    assert english_only("/models/small.en/")
    assert not english_only("base") and not english_only("large-v3")
    assert not english_only("/models/en")


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'vpa.db'}")
    init_db(engine)
    return TestClient(create_app(make_services(tmp_path, JobRepository(engine))))


def post(client: TestClient, **options: Any) -> Any:
    return client.post("/api/v1/jobs/", json={**NEW, "options": options})


def test_the_api_stores_the_normalised_code(client: TestClient) -> None:
    created = post(client, language="pt-BR", model_size="small")
    assert created.status_code == 201, created.text
    job = created.json()
    assert job["options"]["language"] == "pt"  # the requested language, as Whisper's code
    assert job["language"] is None  # the detected one: known once transcribed
    assert stage_options(job["options"]).transcribe.language == "pt"


@pytest.mark.parametrize("given", ["xx", "english", "e1"])
def test_the_api_refuses_an_unknown_language(client: TestClient, given: str) -> None:
    refused = post(client, language=given)
    assert refused.status_code == 422, refused.text
    (error,) = refused.json()["detail"]
    assert error["loc"] == ["body", "options", "language"]
    assert f"options.language {given!r}" in error["msg"]


def test_the_api_refuses_a_language_the_model_cannot_transcribe(client: TestClient) -> None:
    # the server's WHISPER_MODEL (tiny.en) is English-only
    refused = post(client, language="deu")
    assert refused.status_code == 422 and refused.json()["code"] == "invalid_options"
    detail = refused.json()["detail"]
    assert "options.language 'de'" in detail and "tiny.en (WHISPER_MODEL)" in detail
    chosen = post(client, language="de", model_size="base.en")
    assert chosen.status_code == 422 and "base.en (options.model_size)" in chosen.json()["detail"]
    bulk = client.post("/api/v1/jobs/bulk", json={"jobs": [{**NEW, "options": {"language": "fr"}}]})
    assert bulk.json()["results"][0]["status_code"] == 422
    fine: list[dict[str, Any]] = [{"language": "en"}, {"language": "eng"}, {}]
    for options in [*fine, {"language": "de", "model_size": "base"}]:
        assert post(client, **options).status_code == 201, options
    # translating needs a multilingual model too
    translate = post(client, task="translate")
    assert translate.status_code == 422 and translate.json()["code"] == "invalid_options"
    assert 'options.task "translate"' in translate.json()["detail"]
    assert "tiny.en (WHISPER_MODEL)" in translate.json()["detail"]
    assert post(client, task="translate", model_size="base").status_code == 201
    # no model reads the language of an audio_extraction job: nothing to refuse
    audio_only = {**NEW, "job_type": "audio_extraction", "options": {"language": "de"}}
    assert client.post("/api/v1/jobs/", json=audio_only).status_code == 201


def test_the_openai_route_refuses_it_before_storing_the_file(
    client: TestClient, tmp_path: Path
) -> None:
    refused = client.post(
        "/v1/audio/transcriptions",
        files={"file": ("a.wav", b"RIFF0000WAVE")},
        data={"model": "whisper-1", "language": "de"},
    )
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["code"] == "invalid_options" and "tiny.en" in error["message"]
    stored = tmp_path / "a"  # the artifact store of make_services
    assert not stored.exists() or not [p for p in stored.rglob("*") if p.is_file()]


def test_the_engine_refuses_before_decoding(speech_sample: Any) -> None:
    """A model whose name does not say English-only reaches the engine: the loaded model
    refuses, before any audio is read."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    engine = FasterWhisperEngine("tiny.en")
    seen: list[float] = []
    options = TranscribeOptions(language="de")
    with pytest.raises(TranscriptionError) as caught:
        engine.transcribe(speech_sample.path, options, lambda f, _m: seen.append(f), CancelToken())
    assert caught.value.code == "invalid_options" and not caught.value.retryable
    assert "options.language 'de'" in caught.value.message and "tiny.en" in caught.value.message
    assert seen == []
    old = TranscribeOptions(language="eng")  # as a job stored by an older version may hold
    with pytest.raises(TranscriptionError) as caught:
        engine.transcribe(speech_sample.path, old, lambda f, _m: seen.append(f), CancelToken())
    assert caught.value.code == "invalid_options" and "'eng'" in caught.value.message
