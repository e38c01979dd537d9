"""The two Whisper engines: faster-whisper (CTranslate2, the default) and openai-whisper.

Both read the audio in windows of two minutes at most, cut at the quietest moment near
the window's end so no word is split (`pipeline.media.audio_windows`), and transcribe window
after window: memory stays bounded on a two-hour input (faster-whisper would otherwise
decode the whole file and its spectrogram into memory), and cancellation and progress are
checked between segments.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import StageCancelled, TranscriptionError
from pipeline.media.audio_windows import AudioWindow, audio_duration_s, iter_audio_windows
from pipeline.options import TranscribeOptions
from pipeline.results import Segment, TranscriptResult, Word
from pipeline.transcription.engine import Device, check_options, keep_segment
from pipeline.transcription.whisper_models import (
    hub_offline,
    resolve_faster_whisper_model,
    tensor_sort_warning_ignored,
    whisper_cache_dir,
)
from pipeline.types import CancelToken, ProgressCallback

# faster-whisper: its spectrogram code holds ~40 MB per minute of audio at its peak, so
# 2-minute windows keep a transcription's working memory near 100 MB whatever the length.
FASTER_WHISPER_WINDOW_S = 120.0
# openai-whisper decodes a window in one call that cannot be interrupted: one 30 s context.
OPENAI_WHISPER_WINDOW_S = 30.0
OPENAI_WHISPER_INSTALL = (
    "pip install openai-whisper==20250625 (see requirements-openai-whisper.txt)"
)


def default_cpu_threads() -> int:
    """CTranslate2 threads per model: the cores this process may use, at most 4."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


# ----------------------------------------------------------------------------- shared


class _Progress:
    """Share of audio seconds transcribed, never decreasing, 1.0 only at the very end."""

    def __init__(self, progress: ProgressCallback, duration_s: float | None) -> None:
        self._progress = progress
        self._duration_s = duration_s
        self._last = 0.0

    def at(self, seconds: float) -> None:
        total = self._duration_s
        fraction = min(seconds / total, 0.999) if total else 0.0
        if fraction < self._last:
            return
        self._last = fraction
        shown = f"/{total:.1f}" if total else ""
        self._progress(fraction, f"transcribed {seconds:.1f}{shown} s of audio")

    def done(self, duration_s: float) -> None:
        self._progress(1.0, f"transcribed {duration_s:.1f} s of audio")


def _finish(
    segments: list[Segment], language: str | None, probability: float, duration_s: float
) -> TranscriptResult:
    return TranscriptResult(
        text=" ".join(segment.text for segment in segments),
        segments=tuple(segments),
        language=language or "en",
        language_probability=probability,
        duration_s=duration_s,
    )


def _segment(
    index: int, offset_s: float, raw: dict[str, Any], words: list[dict[str, Any]] | None
) -> Segment:
    return Segment(
        id=index,
        start_s=offset_s + float(raw["start"]),
        end_s=offset_s + float(raw["end"]),
        text=str(raw["text"]).strip(),
        avg_logprob=float(raw["avg_logprob"]),
        no_speech_prob=float(raw["no_speech_prob"]),
        compression_ratio=float(raw["compression_ratio"]),
        words=tuple(
            Word(
                start_s=offset_s + float(word["start"]),
                end_s=offset_s + float(word["end"]),
                word=str(word["word"]),
                probability=float(word["probability"]),
            )
            for word in words or ()
        ),
    )


# ----------------------------------------------------------------------------- faster-whisper


class FasterWhisperEngine:
    """A Whisper model loaded in CTranslate2. Safe to call from several threads; with
    num_workers > 1 that many transcriptions run in parallel."""

    name = "faster-whisper"

    def __init__(
        self,
        model: str = "tiny.en",
        device: Device = "cpu",
        compute_type: str | None = None,
        cpu_threads: int = 0,
        *,
        num_workers: int = 1,
        batch_size: int = 0,
        download_root: str | None = None,
        local_files_only: bool | None = None,
        window_s: float = FASTER_WHISPER_WINDOW_S,
    ) -> None:
        """Load `model`. batch_size > 0 decodes each window's speech chunks in batches
        (faster-whisper's BatchedInferencePipeline; it needs VAD and skips the temperature
        fallback). Raises TranscriptionError (model_unavailable, device_unavailable)."""
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise TranscriptionError(
                "faster-whisper is not installed", code="engine_unavailable"
            ) from exc
        self.model = model
        self.device = device
        self.compute_type = compute_type or ("float16" if device == "cuda" else "int8")
        self.cpu_threads = cpu_threads or default_cpu_threads()
        self.batch_size = batch_size
        self.window_s = window_s
        self.model_path = resolve_faster_whisper_model(
            model, download_root=download_root, local_files_only=local_files_only
        )
        started = time.perf_counter()
        try:
            self._model = WhisperModel(
                self.model_path,
                device=device,
                compute_type=self.compute_type,
                cpu_threads=self.cpu_threads,
                num_workers=num_workers,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            text = str(exc)
            if device == "cuda" and ("CUDA" in text or "cuda" in text or "GPU" in text):
                raise TranscriptionError(
                    f"No usable GPU for the Whisper model: {text}", code="device_unavailable"
                ) from exc
            raise TranscriptionError(
                f"The Whisper model at {self.model_path} could not be loaded: {text}",
                code="model_unavailable",
            ) from exc
        self.load_time_s = time.perf_counter() - started
        self.multilingual = bool(self._model.model.is_multilingual)

    def transcribe(
        self,
        audio_path: Path,
        options: TranscribeOptions,
        progress: ProgressCallback,
        cancel: CancelToken,
    ) -> TranscriptResult:
        check_options(self.model, self.multilingual, options)
        report = _Progress(progress, audio_duration_s(audio_path))
        # `language` is the one spoken (detected), `options.language` the one decoded in
        language, probability = options.language, 1.0
        detected = False
        segments: list[Segment] = []
        end_s = 0.0
        for window in iter_audio_windows(audio_path, self.window_s):
            if cancel.cancelled:
                raise StageCancelled("Transcription cancelled")
            decode_in = options.language or (language if detected else None)
            pieces, info = self._start(window, options, decode_in)
            if not detected:
                language, probability = info.language, float(info.language_probability)
                if options.language and self.multilingual:  # Whisper did not detect it
                    language, probability = self._detect(window, options)
            for piece in pieces:
                if cancel.cancelled:
                    raise StageCancelled("Transcription cancelled")
                raw = {
                    "start": piece.start,
                    "end": piece.end,
                    "text": piece.text,
                    "avg_logprob": piece.avg_logprob,
                    "no_speech_prob": piece.no_speech_prob,
                    "compression_ratio": piece.compression_ratio,
                }
                words = [vars(word) for word in piece.words or ()]
                segment = _segment(len(segments), window.offset_s, raw, words)
                if keep_segment(segment, options):
                    segments.append(segment)
                    detected = True  # the language of the first window that has speech
                report.at(segment.end_s)
            end_s = window.offset_s + window.duration_s
            report.at(end_s)
        report.done(end_s)
        return _finish(segments, language, probability, end_s)

    def _detect(self, window: AudioWindow, options: TranscribeOptions) -> tuple[str, float]:
        """The language spoken in the window's first 30 s (of speech, with VAD)."""
        found, probability, _ = self._model.detect_language(
            window.samples, vad_filter=options.vad_filter
        )
        return str(found), float(probability)

    def _start(
        self, window: AudioWindow, options: TranscribeOptions, language: str | None
    ) -> tuple[Iterator[Any], Any]:
        common: dict[str, Any] = {
            "language": language,
            "beam_size": options.beam_size,
            "compression_ratio_threshold": options.compression_ratio_threshold,
            "log_prob_threshold": options.log_prob_threshold,
            "no_speech_threshold": options.no_speech_threshold,
            "word_timestamps": options.word_timestamps,
            "task": options.task,
            "initial_prompt": options.initial_prompt,
        }
        if self.batch_size > 0:
            from faster_whisper import BatchedInferencePipeline

            # a pipeline per call: it keeps per-transcription state on itself
            pieces, info = BatchedInferencePipeline(self._model).transcribe(
                window.samples,
                temperature=options.temperature[0],
                vad_filter=True,
                without_timestamps=False,
                batch_size=self.batch_size,
                **common,
            )
        else:
            pieces, info = self._model.transcribe(
                window.samples,
                temperature=list(options.temperature),
                vad_filter=options.vad_filter,
                condition_on_previous_text=options.condition_on_previous_text,
                **common,
            )
        return iter(pieces), info


# ----------------------------------------------------------------------------- openai-whisper


def _import_whisper() -> Any:
    try:
        import whisper
    except ImportError as exc:
        raise TranscriptionError(
            f"The openai-whisper engine is not installed: {OPENAI_WHISPER_INSTALL}",
            code="engine_unavailable",
        ) from exc
    if not hasattr(whisper, "load_model"):  # another package named "whisper"
        raise TranscriptionError(
            f"The installed 'whisper' module is not openai-whisper: {OPENAI_WHISPER_INSTALL}",
            code="engine_unavailable",
        )
    return whisper


class OpenAIWhisperEngine:
    """openai-whisper with a `.pt` checkpoint (a path, or a name in its download cache).

    Its decoder installs hooks on the shared model for each call, so calls are serialised.
    Voice activity filtering is not available here; the segment guards still apply.
    """

    name = "openai-whisper"

    def __init__(
        self,
        checkpoint: str,
        device: Device = "cpu",
        *,
        download_root: str | None = None,
        local_files_only: bool | None = None,
        window_s: float = OPENAI_WHISPER_WINDOW_S,
    ) -> None:
        whisper = _import_whisper()
        self._whisper = whisper
        self.model = checkpoint
        self.device = device
        self.window_s = window_s
        root = download_root or whisper_cache_dir()
        offline = hub_offline() if local_files_only is None else local_files_only
        if checkpoint in whisper._MODELS:
            cached = Path(root) / os.path.basename(whisper._MODELS[checkpoint])
            if offline and not cached.is_file():
                raise TranscriptionError(
                    f"The Whisper checkpoint {checkpoint!r} is not in {root} and downloads are "
                    "off (HF_HUB_OFFLINE); give a .pt checkpoint path instead",
                    code="model_unavailable",
                )
        elif not Path(checkpoint).expanduser().is_file():
            raise TranscriptionError(
                f"No Whisper checkpoint {checkpoint!r}: give a .pt file or one of "
                f"{', '.join(whisper.available_models())}",
                code="model_unavailable",
            )
        else:
            checkpoint = str(Path(checkpoint).expanduser())
        started = time.perf_counter()
        try:
            self._model = whisper.load_model(checkpoint, device=device, download_root=root)
        except (OSError, RuntimeError, KeyError, TypeError, ValueError) as exc:
            if device == "cuda" and "CUDA" in str(exc):
                raise TranscriptionError(
                    f"No usable GPU for the Whisper model: {exc}", code="device_unavailable"
                ) from exc
            raise TranscriptionError(
                f"The Whisper checkpoint {checkpoint} could not be loaded: {exc}",
                code="model_unavailable",
                retryable=isinstance(exc, OSError) and not offline,
            ) from exc
        except Exception as exc:  # torch's unpickler raises its own error types
            raise TranscriptionError(
                f"{checkpoint} is not a Whisper checkpoint: {exc}", code="model_unavailable"
            ) from exc
        self.load_time_s = time.perf_counter() - started
        self.multilingual = bool(self._model.is_multilingual)
        self._lock = threading.Lock()

    def transcribe(
        self,
        audio_path: Path,
        options: TranscribeOptions,
        progress: ProgressCallback,
        cancel: CancelToken,
    ) -> TranscriptResult:
        check_options(self.model, self.multilingual, options)
        report = _Progress(progress, audio_duration_s(audio_path))
        language, probability = None, 1.0  # the one spoken; options.language: decoded in
        segments: list[Segment] = []
        end_s = 0.0
        decode: dict[str, Any] = {"fp16": self.device == "cuda"}
        if options.beam_size > 1:
            decode["beam_size"] = options.beam_size
        for window in iter_audio_windows(audio_path, self.window_s):
            if cancel.cancelled:
                raise StageCancelled("Transcription cancelled")
            with self._lock, tensor_sort_warning_ignored():
                if language is None:
                    language, probability = self._detect_language(window.samples)
                result = self._model.transcribe(
                    window.samples,
                    verbose=None,
                    language=options.language or language,
                    temperature=options.temperature,
                    compression_ratio_threshold=options.compression_ratio_threshold,
                    logprob_threshold=options.log_prob_threshold,
                    no_speech_threshold=options.no_speech_threshold,
                    condition_on_previous_text=options.condition_on_previous_text,
                    word_timestamps=options.word_timestamps,
                    task=options.task,
                    initial_prompt=options.initial_prompt,
                    **decode,
                )
            for raw in result["segments"]:
                segment = _segment(len(segments), window.offset_s, raw, raw.get("words"))
                if keep_segment(segment, options):
                    segments.append(segment)
                report.at(segment.end_s)
            end_s = window.offset_s + window.duration_s
            report.at(end_s)
        report.done(end_s)
        return _finish(segments, language, probability, end_s)

    def _detect_language(self, samples: np.ndarray) -> tuple[str, float]:
        if not self._model.is_multilingual:
            return "en", 1.0
        whisper = self._whisper
        mel = whisper.log_mel_spectrogram(
            whisper.pad_or_trim(samples), n_mels=self._model.dims.n_mels
        ).to(self._model.device)
        _, probabilities = self._model.detect_language(mel)
        language = max(probabilities, key=probabilities.get)
        return str(language), float(probabilities[language])
