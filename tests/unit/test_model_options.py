"""Job options reach the model engines as the engines' own option objects."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from deployments.analyzer import analyze_options
from deployments.transcriber import transcribe_options
from storage.schemas import ProcessingOptions


def test_transcription_options_map_to_the_engine() -> None:
    job = ProcessingOptions(
        language="de",
        beam_size=5,
        vad_filter=False,
        word_timestamps=False,
        temperature_fallback=False,
    ).model_dump()
    opts = transcribe_options(job)
    assert (opts.language, opts.beam_size, opts.vad_filter, opts.word_timestamps) == (
        "de",
        5,
        False,
        False,
    )
    assert tuple(opts.temperature) == (0.0,)
    defaults = transcribe_options(ProcessingOptions().model_dump())
    assert defaults.language is None and defaults.beam_size == 1 and len(defaults.temperature) > 1


def test_analysis_options_map_and_fall_back_to_the_detected_language() -> None:
    opts = analyze_options(
        ProcessingOptions(topic_modeling=False, min_confidence=0.3).model_dump(), "fr"
    )
    assert (opts.topic_modeling, opts.sentiment_analysis, opts.min_confidence) == (False, True, 0.3)
    assert opts.language == "fr"


def test_beam_size_is_bounded() -> None:
    with pytest.raises(ValidationError, match="beam_size"):
        ProcessingOptions(beam_size=0)
