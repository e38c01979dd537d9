"""What the stages produce: frozen dataclasses with their JSON shape. A leaf module: it
imports nothing from the rest of the pipeline, so every sub-package can use it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.options import AudioFormat


@dataclass(frozen=True)
class FetchResult:
    path: str
    title: str | None
    duration_s: float | None
    size_bytes: int
    extractor: str | None = None
    webpage_url: str | None = None


@dataclass(frozen=True)
class AudioResult:
    path: str
    audio_format: AudioFormat
    duration_s: float
    size_bytes: int
    sample_rate_hz: int
    channels: int
    bitrate_kbps: int | None


@dataclass(frozen=True)
class Word:
    start_s: float
    end_s: float
    word: str  # as Whisper emits it: usually with its leading space
    probability: float
    speaker: str | None = None  # "Speaker 1", ... when the job asked for diarization

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "start": round(self.start_s, 3),
            "end": round(self.end_s, 3),
            "word": self.word,
            "probability": round(self.probability, 4),
        }
        if self.speaker is not None:
            data["speaker"] = self.speaker
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Word:
        return cls(
            start_s=float(data["start"]),
            end_s=float(data["end"]),
            word=str(data["word"]),
            probability=float(data["probability"]),
            speaker=data.get("speaker"),
        )


@dataclass(frozen=True)
class Segment:
    id: int
    start_s: float
    end_s: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    words: tuple[Word, ...] = ()
    speaker: str | None = None  # the speaker of most of its words (diarized jobs)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "start": round(self.start_s, 3),
            "end": round(self.end_s, 3),
            "text": self.text,
            "avg_logprob": round(self.avg_logprob, 4),
            "no_speech_prob": round(self.no_speech_prob, 4),
            "compression_ratio": round(self.compression_ratio, 4),
            "words": [word.to_dict() for word in self.words],
        }
        if self.speaker is not None:
            data["speaker"] = self.speaker
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Segment:
        return cls(
            id=int(data["id"]),
            start_s=float(data["start"]),
            end_s=float(data["end"]),
            text=str(data["text"]),
            avg_logprob=float(data["avg_logprob"]),
            no_speech_prob=float(data["no_speech_prob"]),
            compression_ratio=float(data.get("compression_ratio", 0.0)),
            words=tuple(Word.from_dict(word) for word in data.get("words") or ()),
            speaker=data.get("speaker"),
        )


@dataclass(frozen=True)
class Speaker:
    """One diarized speaker's share of the audio: `talk_time_s` is the time inside its
    turns, a turn is a stretch of speech by it with nobody else speaking in between."""

    speaker: str  # "Speaker 1", "Speaker 2", ... numbered in order of first speech
    talk_time_s: float
    turns: int
    words: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "speaker": self.speaker,
            "talk_time": round(self.talk_time_s, 3),
            "turns": self.turns,
            "words": self.words,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Speaker:
        return cls(
            speaker=str(data["speaker"]),
            talk_time_s=float(data["talk_time"]),
            turns=int(data["turns"]),
            words=int(data["words"]),
        )


@dataclass(frozen=True)
class TranscriptResult:
    text: str
    segments: tuple[Segment, ...]
    language: str
    language_probability: float
    duration_s: float
    # Diarized jobs only (options.diarization): one entry per speaker, in label order
    speakers: tuple[Speaker, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "text": self.text,
            "language": self.language,
            "language_probability": round(self.language_probability, 4),
            "duration": round(self.duration_s, 3),
            "segments": [segment.to_dict() for segment in self.segments],
        }
        if self.speakers is not None:
            data["speakers"] = [speaker.to_dict() for speaker in self.speakers]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TranscriptResult:
        """Rebuild a result from `to_dict()` output (a checkpointed stage result)."""
        return cls(
            text=str(data["text"]),
            segments=tuple(Segment.from_dict(segment) for segment in data["segments"]),
            language=str(data["language"]),
            language_probability=float(data["language_probability"]),
            duration_s=float(data["duration"]),
            speakers=(
                None
                if data.get("speakers") is None
                else tuple(Speaker.from_dict(speaker) for speaker in data["speakers"])
            ),
        )
