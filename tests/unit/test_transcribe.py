"""Transcription with the real bundled tiny.en model on committed speech, and the model cache.

The model loads once for the module; the speech clip (23 s) is transcribed once and shared.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline.errors import MediaError, PipelineError, StageCancelled, TranscriptionError
from pipeline.media.audio_windows import SAMPLE_RATE_HZ, iter_audio_windows
from pipeline.options import TranscribeOptions
from pipeline.results import Segment, TranscriptResult, Word
from pipeline.transcription.cache import ModelCache, load_engine
from pipeline.transcription.engine import TranscriptionEngine, keep_segment, transcribe_audio
from pipeline.transcription.whisper_engines import FasterWhisperEngine, OpenAIWhisperEngine
from pipeline.transcription.whisper_models import resolve_faster_whisper_model
from pipeline.types import CancelToken
from tests.fixtures.speech import SpeechSample, normalise_words, word_error_rate

MAX_WER = 0.15


class Progress:
    def __init__(self) -> None:
        self.calls: list[tuple[float, str]] = []

    def __call__(self, fraction: float, message: str) -> None:
        self.calls.append((fraction, message))

    @property
    def fractions(self) -> list[float]:
        return [fraction for fraction, _ in self.calls]


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def engine() -> FasterWhisperEngine:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return FasterWhisperEngine("tiny.en")


@dataclass
class Transcribed:
    result: TranscriptResult
    progress: Progress = field(default_factory=Progress)


@pytest.fixture(scope="module")
def transcribed(engine: FasterWhisperEngine, speech_sample: SpeechSample) -> Transcribed:
    progress = Progress()
    result = transcribe_audio(
        speech_sample.path, engine, TranscribeOptions(), progress, CancelToken()
    )
    return Transcribed(result, progress)


# ----------------------------------------------------------------------------- speech


def test_word_error_rate_on_speech(transcribed: Transcribed, speech_sample: SpeechSample) -> None:
    result = transcribed.result
    assert word_error_rate(speech_sample.text, result.text) < MAX_WER, result.text
    assert result.text == " ".join(segment.text for segment in result.segments)
    assert result.duration_s == pytest.approx(speech_sample.duration_s, abs=0.2)


def test_language_is_detected_with_a_probability(transcribed: Transcribed) -> None:
    # tiny.en is English-only: faster-whisper reports "en" with certainty
    assert transcribed.result.language == "en"
    assert 0.0 < transcribed.result.language_probability <= 1.0


def test_segments_and_word_timestamps_are_ordered(transcribed: Transcribed) -> None:
    segments = transcribed.result.segments
    assert len(segments) >= 3
    assert [segment.id for segment in segments] == list(range(len(segments)))
    previous_end = 0.0
    for segment in segments:
        assert previous_end - 0.01 <= segment.start_s < segment.end_s
        assert segment.end_s <= transcribed.result.duration_s + 0.01
        assert segment.words, "word timestamps are on by default"
        starts = [word.start_s for word in segment.words]
        assert starts == sorted(starts)
        for word in segment.words:
            assert segment.start_s - 0.01 <= word.start_s <= word.end_s <= segment.end_s + 0.01
            assert 0.0 <= word.probability <= 1.0
        words_text = "".join(word.word for word in segment.words)
        assert normalise_words(words_text) == normalise_words(segment.text)
        previous_end = segment.end_s


def test_progress_rises_once_per_segment_and_ends_at_one(transcribed: Transcribed) -> None:
    fractions = transcribed.progress.fractions
    assert fractions == sorted(fractions)
    assert fractions[-1] == 1.0
    assert all(0.0 <= fraction < 1.0 for fraction in fractions[:-1])
    assert len(fractions) >= len(transcribed.result.segments) + 1
    assert "s of audio" in transcribed.progress.calls[0][1]


def test_json_shape(transcribed: Transcribed) -> None:
    data = transcribed.result.to_dict()
    assert set(data) == {"text", "segments", "language", "language_probability", "duration"}
    segment = data["segments"][0]
    assert set(segment) == {
        "id", "start", "end", "text", "avg_logprob", "no_speech_prob", "compression_ratio",
        "words",
    }  # fmt: skip
    assert set(segment["words"][0]) == {"start", "end", "word", "probability"}
    again = TranscriptResult.from_dict(data)
    assert again.to_dict() == data


def test_without_word_timestamps(engine: FasterWhisperEngine, speech_sample: SpeechSample) -> None:
    options = TranscribeOptions(word_timestamps=False, language="en", vad_filter=False)
    result = engine.transcribe(speech_sample.path, options, Progress(), CancelToken())
    assert word_error_rate(speech_sample.text, result.text) < MAX_WER
    assert all(segment.words == () for segment in result.segments)


def test_short_windows_keep_words_whole(
    engine: FasterWhisperEngine, speech_sample: SpeechSample, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Long inputs are read window by window; cuts fall in pauses, so the text survives."""
    monkeypatch.setattr(engine, "window_s", 9.0)
    progress = Progress()
    result = engine.transcribe(speech_sample.path, TranscribeOptions(), progress, CancelToken())
    assert word_error_rate(speech_sample.text, result.text) < MAX_WER, result.text
    starts = [segment.start_s for segment in result.segments]
    assert starts == sorted(starts)
    assert result.segments[-1].end_s > 18.0  # offsets of later windows are added
    assert progress.fractions == sorted(progress.fractions)


def test_audio_windows_cut_in_pauses(speech_sample: SpeechSample) -> None:
    windows = list(iter_audio_windows(speech_sample.path, window_s=6.0, search_s=2.0))
    assert len(windows) >= 4
    offset = 0.0
    for window in windows:
        assert window.offset_s == pytest.approx(offset)
        assert window.duration_s <= 6.0
        offset += window.duration_s
    assert offset == pytest.approx(speech_sample.duration_s, abs=0.2)
    whole = np.concatenate([window.samples for window in windows])
    loudness = float(np.sqrt(np.mean(np.square(whole))))
    for window in windows[:-1]:
        # the 50 ms around each cut are much quieter than the speech overall
        cut = int((window.offset_s + window.duration_s) * SAMPLE_RATE_HZ)
        around = whole[cut - 400 : cut + 400]
        assert float(np.sqrt(np.mean(np.square(around)))) < loudness / 4


# ----------------------------------------------------------------------------- cancel


def test_cancel_stops_promptly(engine: FasterWhisperEngine, speech_sample: SpeechSample) -> None:
    """Cancelled at its first progress report, the engine stops at its next check: no more
    segments decoded (at most the report that closes the current audio window)."""
    cancel = CancelToken()
    reports: list[float] = []

    def progress(fraction: float, message: str) -> None:
        reports.append(fraction)
        cancel.cancel()

    with pytest.raises(StageCancelled):
        engine.transcribe(speech_sample.path, TranscribeOptions(vad_filter=False), progress, cancel)
    assert reports, "progress was never reported"
    assert len(reports) <= 2, reports


def test_cancel_from_another_thread(
    engine: FasterWhisperEngine, speech_sample: SpeechSample
) -> None:
    """Another thread cancels while the engine works: its first progress report waits until
    the cancel has been made, so the transcription cannot finish first, whatever the speed."""
    cancel = CancelToken()
    working, cancelled = threading.Event(), threading.Event()

    def progress(fraction: float, message: str) -> None:
        working.set()
        cancelled.wait(60)

    def canceller() -> None:
        if working.wait(60):
            cancel.cancel()
        cancelled.set()

    thread = threading.Thread(target=canceller)
    thread.start()
    try:
        with pytest.raises(StageCancelled):
            engine.transcribe(
                speech_sample.path,
                TranscribeOptions(vad_filter=False, beam_size=5),
                progress,
                cancel,
            )
    finally:
        cancelled.set()
        thread.join(60)
    assert working.is_set()


def test_cancelled_before_start(engine: FasterWhisperEngine, speech_sample: SpeechSample) -> None:
    cancel = CancelToken()
    cancel.cancel()
    progress = Progress()
    with pytest.raises(StageCancelled):
        transcribe_audio(speech_sample.path, engine, TranscribeOptions(), progress, cancel)
    assert progress.calls == []


# ----------------------------------------------------------------------------- non-speech


@pytest.mark.parametrize("fixture_name", ["silence_audio", "noise_audio", "music_audio"])
def test_non_speech_gives_no_text(
    engine: FasterWhisperEngine, fixture_name: str, request: pytest.FixtureRequest
) -> None:
    audio: Path = request.getfixturevalue(fixture_name)
    progress = Progress()
    result = engine.transcribe(audio, TranscribeOptions(), progress, CancelToken())
    assert len(normalise_words(result.text)) <= 2, result.text
    assert result.duration_s == pytest.approx(20.0, abs=0.1)
    assert progress.fractions[-1] == 1.0


@pytest.mark.parametrize("fixture_name", ["silence_audio", "tone_audio"])
def test_guards_without_voice_activity_filter(
    engine: FasterWhisperEngine, fixture_name: str, request: pytest.FixtureRequest
) -> None:
    """With VAD off the decoder sees the whole signal; on 20 s of silence tiny.en says "you"
    and on a steady tone "Thanks for watching!" and the like (the temperature fallback
    samples, so the words vary from run to run): the segment guards drop them."""
    audio: Path = request.getfixturevalue(fixture_name)
    result = engine.transcribe(
        audio, TranscribeOptions(vad_filter=False), Progress(), CancelToken()
    )
    assert len(normalise_words(result.text)) <= 2, result.text


def _segment(**overrides: Any) -> Segment:
    fields: dict[str, Any] = {
        "id": 0,
        "start_s": 0.0,
        "end_s": 2.0,
        "text": "Hello there.",
        "avg_logprob": -0.3,
        "no_speech_prob": 0.1,
        "compression_ratio": 1.2,
        "words": (Word(0.0, 0.8, " Hello", 0.9), Word(0.9, 2.0, " there.", 0.8)),
    }
    fields.update(overrides)
    return Segment(**fields)


def test_keep_segment_rules() -> None:
    options = TranscribeOptions()
    unsure_words = (Word(0.0, 1.0, " you", 0.15),)
    assert keep_segment(_segment(), options)
    assert not keep_segment(_segment(text="  "), options)
    # Whisper's own rule: silent window and a low log probability
    assert not keep_segment(_segment(no_speech_prob=0.9, avg_logprob=-1.5), options)
    # a repetition loop
    assert not keep_segment(_segment(compression_ratio=3.1), options)
    # silent window, confident enough decode, but unsure words
    assert not keep_segment(_segment(no_speech_prob=0.94, words=unsure_words), options)
    assert keep_segment(_segment(no_speech_prob=0.94, words=()), options)  # no words to judge
    # every temperature failed, however sure the words look
    assert not keep_segment(_segment(avg_logprob=-1.3), options)
    assert not keep_segment(_segment(avg_logprob=-1.8, words=()), options)
    assert not keep_segment(_segment(avg_logprob=float("nan")), options)
    # confident speech in a window the model found mostly silent is kept
    assert keep_segment(_segment(no_speech_prob=0.7), options)
    # thresholds switched off
    off = TranscribeOptions(
        no_speech_threshold=None, log_prob_threshold=None, compression_ratio_threshold=None
    )
    assert keep_segment(_segment(no_speech_prob=0.99, avg_logprob=-3.0, compression_ratio=9), off)


def test_options_validation() -> None:
    assert TranscribeOptions(temperature=[0.0, 0.5]).temperature == (0.0, 0.5)  # type: ignore[arg-type]
    assert TranscribeOptions(temperature=0.3).temperature == (0.3,)  # type: ignore[arg-type]
    assert TranscribeOptions(language=" EN ").language == "en"
    with pytest.raises(ValueError):
        TranscribeOptions(beam_size=0)
    with pytest.raises(ValueError):
        TranscribeOptions(temperature=())


# ----------------------------------------------------------------------------- errors


def test_missing_audio_file(engine: FasterWhisperEngine, tmp_path: Path) -> None:
    with pytest.raises(MediaError) as caught:
        engine.transcribe(tmp_path / "nope.wav", TranscribeOptions(), Progress(), CancelToken())
    assert caught.value.code == "file_missing"


def test_not_audio(engine: FasterWhisperEngine, tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(os.urandom(4096))
    with pytest.raises(MediaError):
        engine.transcribe(bad, TranscribeOptions(), Progress(), CancelToken())


@pytest.mark.parametrize(
    "model",
    ["base", "large-v3", "distil-small.en", "Systran/faster-whisper-small", "no-such-size"],
)
def test_model_not_available_offline(model: str, tmp_path: Path) -> None:
    # Offline: it fails at once with a clear reason (a network wait would hit the test timeout).
    with pytest.raises(PipelineError) as caught:
        FasterWhisperEngine(model, download_root=str(tmp_path / "hub"))
    assert caught.value.code == "model_unavailable"
    assert model in caught.value.message


def test_model_directory_missing_or_invalid(tmp_path: Path) -> None:
    for model, hint in [
        (str(tmp_path / "missing"), "does not exist"),
        (str(tmp_path), "model.bin"),
        ("./models/whisper-small-ct2", "does not exist"),
    ]:
        with pytest.raises(TranscriptionError) as caught:
            FasterWhisperEngine(model)
        assert caught.value.code == "model_unavailable"
        assert hint in caught.value.message
        assert not caught.value.retryable


def test_corrupt_model_directory(tmp_path: Path) -> None:
    bundled = Path(resolve_faster_whisper_model("tiny.en"))
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copy(bundled / name, broken / name)
    (broken / "model.bin").write_bytes(b"not a model")
    with pytest.raises(TranscriptionError) as caught:
        FasterWhisperEngine(str(broken))
    assert caught.value.code == "model_unavailable"


def test_size_name_loads_from_the_hub_cache(tmp_path: Path) -> None:
    """A size name resolves through the Hugging Face cache, as after a download."""
    bundled = Path(resolve_faster_whisper_model("tiny.en"))
    repo = tmp_path / "hub" / "models--Systran--faster-whisper-base.en"
    snapshot = repo / "snapshots" / "0123456789abcdef"
    snapshot.mkdir(parents=True)
    for file in bundled.iterdir():
        (snapshot / file.name).symlink_to(file)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123456789abcdef")
    loaded = FasterWhisperEngine("base.en", download_root=str(tmp_path / "hub"))
    assert Path(loaded.model_path) == snapshot
    assert loaded.compute_type == "int8"


def test_model_directory_loads(engine: FasterWhisperEngine, speech_sample: SpeechSample) -> None:
    by_path = FasterWhisperEngine(engine.model_path, compute_type="float32")
    assert by_path.model == engine.model_path
    result = by_path.transcribe(
        speech_sample.path, TranscribeOptions(language="en"), Progress(), CancelToken()
    )
    assert word_error_rate(speech_sample.text, result.text) < MAX_WER


def test_unavailable_gpu_is_a_clear_error() -> None:
    import ctranslate2

    if ctranslate2.get_cuda_device_count() > 0:  # a GPU machine: CUDA must then work
        engine = FasterWhisperEngine("tiny.en", device="cuda")
        assert (engine.device, engine.compute_type) == ("cuda", "float16")
        return
    with pytest.raises(TranscriptionError) as caught:
        FasterWhisperEngine("tiny.en", device="cuda")
    assert caught.value.code == "device_unavailable"


# ----------------------------------------------------------------------------- cache


class FakeEngine:
    name = "fake"

    def __init__(self, model: str) -> None:
        self.model = model

    def transcribe(self, *args: object) -> TranscriptResult:
        raise NotImplementedError


def test_cache_loads_each_model_once_under_concurrency() -> None:
    loads: list[str] = []
    lock = threading.Lock()

    def loader(engine: str, model: str, device: str, compute_type: str | None) -> FakeEngine:
        time.sleep(0.2)
        with lock:
            loads.append(model)
        return FakeEngine(model)

    cache = ModelCache(max_models=2, loader=loader)
    results: list[TranscriptionEngine] = []

    def worker(model: str) -> None:
        results.append(cache.get("faster-whisper", model))

    threads = [threading.Thread(target=worker, args=(m,)) for m in ["a", "a", "b", "a", "b"]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(loads) == ["a", "b"]
    assert len({id(engine) for engine in results}) == 2


def test_cache_evicts_least_recently_used() -> None:
    loads: list[str] = []

    def loader(engine: str, model: str, device: str, compute_type: str | None) -> FakeEngine:
        loads.append(model)
        return FakeEngine(model)

    cache = ModelCache(max_models=2, loader=loader)
    a = cache.get("faster-whisper", "a")
    cache.get("faster-whisper", "b")
    assert cache.get("faster-whisper", "a") is a  # a is now the most recent
    cache.get("faster-whisper", "c")  # evicts b
    assert [key[1] for key in cache.loaded()] == ["a", "c"]
    cache.get("faster-whisper", "b")
    assert loads == ["a", "b", "c", "b"]
    cache.get("faster-whisper", "a", "cpu", "float32")  # another compute type: another model
    assert loads[-1] == "a"


def test_cache_does_not_remember_failures() -> None:
    attempts: list[str] = []

    def loader(engine: str, model: str, device: str, compute_type: str | None) -> FakeEngine:
        attempts.append(model)
        if len(attempts) == 1:
            raise TranscriptionError("not yet", code="model_unavailable")
        return FakeEngine(model)

    cache = ModelCache(loader=loader)
    with pytest.raises(TranscriptionError):
        cache.get("faster-whisper", "a")
    assert cache.get("faster-whisper", "a").model == "a"
    assert attempts == ["a", "a"]


def test_cache_with_real_engine(speech_sample: SpeechSample) -> None:
    cache = ModelCache(max_models=1)
    loaded = cache.get("faster-whisper", "tiny.en", "cpu")
    assert isinstance(loaded, FasterWhisperEngine)
    assert cache.get("faster-whisper", "tiny.en", "cpu") is loaded
    with pytest.raises(TranscriptionError) as caught:
        cache.get("whisper-cpp", "tiny.en")
    assert caught.value.code == "engine_unavailable"
    assert cache.loaded() == [("faster-whisper", "tiny.en", "cpu", None)]


# ----------------------------------------------------------------------------- openai-whisper


def test_openai_whisper_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "whisper", None)  # import whisper -> ImportError
    with pytest.raises(TranscriptionError) as caught:
        load_engine("openai-whisper", "tiny.en")
    assert caught.value.code == "engine_unavailable"
    assert "pip install openai-whisper" in caught.value.message


@pytest.fixture(scope="module")
def whisper_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A multilingual Whisper with random weights and tiny dimensions (15 MB)."""
    import whisper  # installed by `make test` (requirements-openai-whisper.txt)

    assert whisper.load_model
    from dataclasses import asdict

    import torch
    from whisper.model import ModelDimensions, Whisper

    torch.manual_seed(0)
    dims = ModelDimensions(
        n_mels=80,
        n_audio_ctx=1500,
        n_audio_state=64,
        n_audio_head=2,
        n_audio_layer=2,
        n_vocab=51865,
        n_text_ctx=448,
        n_text_state=64,
        n_text_head=2,
        n_text_layer=2,
    )
    model = Whisper(dims)
    with torch.no_grad():  # some parameters start as torch.empty: give every one a value
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.02)
    path = tmp_path_factory.mktemp("whisper") / "tiny-random.pt"
    torch.save({"dims": asdict(dims), "model_state_dict": model.state_dict()}, path)
    yield path


def test_openai_whisper_loads_a_checkpoint_and_transcribes(
    whisper_checkpoint: Path, speech_sample: SpeechSample
) -> None:
    loaded = load_engine("openai-whisper", str(whisper_checkpoint))
    assert isinstance(loaded, OpenAIWhisperEngine)
    # random weights: the text is garbage, so switch the guards off to see it come through
    raw = TranscribeOptions(
        word_timestamps=False,
        temperature=(0.0,),
        no_speech_threshold=None,
        log_prob_threshold=None,
        compression_ratio_threshold=None,
    )
    progress = Progress()
    result = transcribe_audio(speech_sample.path, loaded, raw, progress, CancelToken())
    assert isinstance(result, TranscriptResult)
    assert result.segments and result.text
    assert result.language and 0.0 < result.language_probability <= 1.0  # detected
    assert result.duration_s == pytest.approx(speech_sample.duration_s, abs=0.2)
    assert progress.fractions == sorted(progress.fractions) and progress.fractions[-1] == 1.0
    # the default guards drop random-weight babble (a repetition loop)
    options = TranscribeOptions()
    assert not [
        s for s in result.segments if s.compression_ratio > 2.4 and keep_segment(s, options)
    ]


def test_a_language_asked_for_is_decoded_in_and_the_spoken_one_reported(
    whisper_checkpoint: Path, speech_sample: SpeechSample, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job keeps them apart: the text is decoded in the language asked for, the
    result's `language` is what the (multilingual) model detected."""
    loaded = OpenAIWhisperEngine(str(whisper_checkpoint))
    first = next(iter_audio_windows(speech_sample.path, loaded.window_s))
    spoken, probability = loaded._detect_language(first.samples)
    asked = "fr" if spoken == "de" else "de"
    decoded_in: list[str] = []
    real = loaded._model.transcribe

    def watched(*args: Any, **kwargs: Any) -> Any:
        decoded_in.append(kwargs["language"])
        return real(*args, **kwargs)

    monkeypatch.setattr(loaded._model, "transcribe", watched)
    options = TranscribeOptions(language=asked, word_timestamps=False, temperature=(0.0,))
    result = loaded.transcribe(speech_sample.path, options, Progress(), CancelToken())
    assert decoded_in and set(decoded_in) == {asked}
    assert (result.language, result.language_probability) == (spoken, pytest.approx(probability))


def test_openai_whisper_cancel(whisper_checkpoint: Path, speech_sample: SpeechSample) -> None:
    loaded = OpenAIWhisperEngine(str(whisper_checkpoint))
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(StageCancelled):
        loaded.transcribe(speech_sample.path, TranscribeOptions(), Progress(), cancel)


def test_openai_whisper_missing_checkpoints(whisper_checkpoint: Path, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    cases: list[tuple[str, dict[str, Any]]] = [
        (str(tmp_path / "missing.pt"), {}),
        ("no-such-model", {}),
        ("tiny.en", {"download_root": str(tmp_path / "cache")}),  # offline, not downloaded
        (str(corrupt), {}),
    ]
    for checkpoint, kwargs in cases:
        with pytest.raises(TranscriptionError) as caught:
            OpenAIWhisperEngine(checkpoint, **kwargs)
        assert caught.value.code == "model_unavailable", checkpoint
