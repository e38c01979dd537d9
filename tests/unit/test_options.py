"""A job's stored options become the stage option groups once (`pipeline.options`)."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from pydantic import ValidationError

from pipeline.options import (
    AnalyzeOptions,
    AudioOptions,
    ClipOptions,
    ClipRange,
    StageOptions,
    TranscribeOptions,
    stage_options,
)
from storage.schemas import ProcessingOptions

# One value per ProcessingOptions field, different from its default.
CHANGED: dict[str, Any] = {
    "audio_format": "mp3",
    "audio_quality": "high",
    "language": "de",
    "model_size": "base",
    "clip_duration": 20.0,
    "overlap_duration": 1.0,
    "max_clips": 3,
    "sentiment_analysis": False,
    "topic_modeling": False,
    "keyword_extraction": False,
    "summary_sentences": 5,
    "output_format": "webm",
    "resolution": "720p",
    "min_confidence": 0.3,
    "word_timestamps": False,
    "vad_filter": False,
    "transcription_preset": "fast",
    "beam_size": 3,
    "temperature_fallback": False,
    "temperature": 0.4,
    "task": "translate",
    "initial_prompt": "Kenobi",
    "segments": [{"start": 1.0, "end": 4.5, "title": "Intro"}, {"start": 6.0, "end": 9.0}],
    "aspect_ratio": "9:16",
    "aspect_mode": "blur",
    "burn_captions": True,
    "fast_cut": False,
    "diarization": True,
    "num_speakers": 3,
    "min_speakers": 2,
    "max_speakers": 4,
}
# The speaker counts need diarization on: each is changed on top of it
NEEDS = {f"{which}_speakers": {"diarization": True} for which in ("num", "min", "max")}


def test_defaults_are_the_dataclass_defaults() -> None:
    assert stage_options(ProcessingOptions().model_dump()) == StageOptions()
    assert stage_options({}) == StageOptions()  # a job stored before options existed


def test_every_option_reaches_its_stage() -> None:
    assert set(CHANGED) == set(ProcessingOptions.model_fields), "a new option needs a stage"
    opts = stage_options(ProcessingOptions(**CHANGED).model_dump())
    assert opts.audio == AudioOptions(audio_format="mp3", audio_quality="high")
    assert opts.transcribe == TranscribeOptions(
        language="de",
        model="base",
        word_timestamps=False,
        vad_filter=False,
        beam_size=3,
        temperature=(0.4,),
        task="translate",
        initial_prompt="Kenobi",
        diarization=True,
        num_speakers=3,
        min_speakers=2,
        max_speakers=4,
    )
    assert opts.analyze == AnalyzeOptions(
        sentiment_analysis=False,
        topic_modeling=False,
        keyword_extraction=False,
        min_confidence=0.3,
        summary_sentences=5,
        language="de",
    )
    assert opts.clips == ClipOptions(
        clip_duration_s=20.0,
        overlap_duration_s=1.0,
        max_clips=3,
        min_confidence=0.3,
        ranges=(ClipRange(1.0, 4.5, "Intro"), ClipRange(6.0, 9.0, None)),
        output_format="webm",
        resolution="720p",
        aspect_ratio="9:16",
        aspect_mode="blur",
        burn_captions=True,
        fast_cut=False,
    )


@pytest.mark.parametrize("name", sorted(CHANGED))
def test_each_option_changes_the_stage_options(name: str) -> None:
    """No option is dropped on the way: changing any one of them changes what a stage gets."""
    base = NEEDS.get(name, {})
    changed = ProcessingOptions(**base, **{name: CHANGED[name]}).model_dump()
    assert stage_options(changed) != stage_options(ProcessingOptions(**base).model_dump())


def test_stage_options_survive_pickling() -> None:
    """They cross Ray task and Serve handle boundaries."""
    opts = stage_options(ProcessingOptions(**CHANGED).model_dump())
    assert pickle.loads(pickle.dumps(opts)) == opts


def test_transcription_presets_choose_the_beam() -> None:
    """accurate (the default) decodes with a beam of 5, fast greedily; an explicit beam_size
    wins over either, and the stored options say which beam the job used."""
    assert ProcessingOptions().model_dump()["beam_size"] == 5
    assert ProcessingOptions().transcription_preset == "accurate"
    fast = ProcessingOptions(transcription_preset="fast").model_dump()
    assert fast["beam_size"] == 1
    assert stage_options(fast).transcribe.beam_size == 1
    assert ProcessingOptions(transcription_preset="fast", beam_size=4).beam_size == 4
    assert ProcessingOptions(beam_size=2).beam_size == 2
    # a job stored before presets existed keeps the beam it was stored with
    assert stage_options({"beam_size": 1}).transcribe.beam_size == 1
    with pytest.raises(ValidationError, match="transcription_preset"):
        ProcessingOptions(transcription_preset="slow")


def test_beam_size_is_bounded() -> None:
    with pytest.raises(ValidationError, match="beam_size"):
        ProcessingOptions(beam_size=0)


@pytest.mark.parametrize("count", [0, 51, 2.5])
def test_summary_sentences_is_bounded(count: float) -> None:
    with pytest.raises(ValidationError, match="summary_sentences"):
        ProcessingOptions(summary_sentences=count)
