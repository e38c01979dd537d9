"""Speech to text: the engine protocol, the guards that drop invented segments and refuse
options the model cannot honour, and the `transcribe_audio` entry point. The engines
(`whisper_engines`) implement the protocol; `cache` loads them; results and options are in
`pipeline.results` / `pipeline.options`."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal, Protocol

from pipeline.errors import StageCancelled, TranscriptionError
from pipeline.options import TranscribeOptions
from pipeline.results import Segment, TranscriptResult
from pipeline.transcription.repetition import collapse_repeats
from pipeline.types import CancelToken, ProgressCallback

Device = Literal["cpu", "cuda"]
EngineName = Literal["faster-whisper", "openai-whisper"]
ENGINE_NAMES: tuple[EngineName, ...] = ("faster-whisper", "openai-whisper")

# A segment whose words average below this probability, in a window the model calls silent,
# is invented text (Whisper's classic "you" on silence).
MIN_MEAN_WORD_PROBABILITY = 0.5


def keep_segment(segment: Segment, options: TranscribeOptions) -> bool:
    """False for segments that are most likely invented on silence, music or noise.

    - A decode whose average log probability stays under `log_prob_threshold` after the
      whole temperature fallback. Whisper keeps these unless the window also looks silent;
      we drop them: on a steady tone tiny.en then "hears" "Thanks for watching!" or
      "Beep, beep" in about one run out of five (the fallback samples), while on speech it
      clears the threshold easily (about -0.4 on the test clip).
    - A repetition loop that survived the fallback (compression ratio over its threshold).
    - Low word confidence in a window the model itself calls silent (its "you" on silence).
    """
    if not segment.text.strip() or not math.isfinite(segment.avg_logprob):
        return False
    if options.log_prob_threshold is not None and segment.avg_logprob < options.log_prob_threshold:
        return False
    if (
        options.compression_ratio_threshold is not None
        and segment.compression_ratio > options.compression_ratio_threshold
    ):
        return False
    silent = (
        options.no_speech_threshold is not None
        and segment.no_speech_prob > options.no_speech_threshold
    )
    if silent and segment.words:
        mean_probability = sum(word.probability for word in segment.words) / len(segment.words)
        if mean_probability < MIN_MEAN_WORD_PROBABILITY:
            return False
    return True


def check_options(model: str, multilingual: bool, options: TranscribeOptions) -> None:
    """An English-only model can neither translate nor transcribe another language (Whisper
    would silently transcribe as English): the job fails before any audio is decoded. So
    does a code Whisper does not know (a job stored before codes were normalised: "eng")."""
    from faster_whisper.tokenizer import _LANGUAGE_CODES  # Whisper's own list

    if options.language is not None and options.language not in _LANGUAGE_CODES:
        raise TranscriptionError(
            f"options.language {options.language!r} is not a code Whisper knows "
            '(ISO 639-1 such as "en" or "pt")',
            code="invalid_options",
        )
    if multilingual:
        return
    if options.task == "translate":
        raise TranscriptionError(
            f"translation needs a multilingual Whisper model; {model} is English-only",
            code="invalid_options",
        )
    if options.language not in (None, "en"):
        raise TranscriptionError(
            f"options.language {options.language!r} needs a multilingual Whisper model; "
            f"{model} is English-only",
            code="invalid_options",
        )


class TranscriptionEngine(Protocol):
    """A loaded Whisper model. Thread-safe: one engine serves concurrent jobs."""

    name: str
    model: str

    def transcribe(
        self,
        audio_path: Path,
        options: TranscribeOptions,
        progress: ProgressCallback,
        cancel: CancelToken,
    ) -> TranscriptResult: ...


def transcribe_audio(
    audio_path: str | Path,
    engine: TranscriptionEngine,
    options: TranscribeOptions,
    progress: ProgressCallback,
    cancel: CancelToken,
) -> TranscriptResult:
    """Transcribe the audio file with a loaded engine.

    Progress is the share of audio seconds transcribed; it reaches 1.0 at the end.
    Repetition loops are cut down (`pipeline.transcription.repetition`).
    Raises MediaError (missing or unreadable audio), TranscriptionError or StageCancelled.
    """
    if cancel.cancelled:
        raise StageCancelled("Cancelled before transcription started")
    return collapse_repeats(engine.transcribe(Path(audio_path), options, progress, cancel))
