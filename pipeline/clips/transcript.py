"""A transcript as the sentences and silences a clip is cut from.

`transcript_pieces` cuts the transcript where a clip may start or end: each segment after
every word ending with . ? or ! (by word times), a segment without words whole. A `Track`
holds those pieces in time order with the silence around each, so a clip from one piece
to another takes up to `pad_s` of silence at each end: never into a neighbouring word,
below 0 or past the end of the media.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

_TERMINALS = (".", "?", "!", "…")
_CLOSERS = "\"')]\u00bb\u201d\u2019"  # quotes and brackets after the full stop
_ABBREVIATIONS = frozenset({"mr.", "mrs.", "ms.", "dr.", "prof.", "st.", "vs.", "e.g.", "i.e."})


class Sentence(NamedTuple):
    """A sentence, or the piece of one inside a single transcript segment. Seconds."""

    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Piece:
    """A sentence, or the part of one inside a single segment: from its first word's start
    to its last word's end. Clips start and end only at the edges of pieces."""

    start: float
    end: float
    text: str
    words: int
    no_speech_prob: float
    timed: tuple[tuple[float, float, str], ...] = ()  # (start, end, word); () without times
    speaker: str | None = None  # its segment's, in a diarized transcript

    def timed_words(self) -> list[tuple[float, float, str]]:
        """(start, end, word): the word times, or the words spread evenly without them."""
        if self.timed:
            return list(self.timed)
        words = self.text.split()
        step = (self.end - self.start) / max(len(words), 1)
        return [
            (self.start + k * step, self.start + (k + 1) * step, w) for k, w in enumerate(words)
        ]


def transcript_pieces(segments: Sequence[Mapping[str, Any]]) -> list[Piece]:
    """The transcript cut into pieces in time order: each segment split after every word
    that ends a sentence (by word times), a segment without words whole. Segments are
    sorted first; empty ones are skipped."""
    pieces: list[Piece] = []
    ordered = sorted(
        (s for s in segments if isinstance(s, Mapping)),
        key=lambda s: (_num(s.get("start")), _num(s.get("end"))),
    )
    for seg in ordered:
        no_speech = min(1.0, max(0.0, _num(seg.get("no_speech_prob"))))
        speaker = str(seg["speaker"]) if seg.get("speaker") else None
        words = _words(seg.get("words"))
        if not words:
            text = " ".join(str(seg.get("text") or "").split())
            start, end = _num(seg.get("start")), _num(seg.get("end"))
            if text:
                pieces.append(
                    Piece(start, max(start, end), text, len(text.split()), no_speech, (), speaker)
                )
            continue
        run: list[tuple[float, float, str]] = []
        for n, word in enumerate(words):
            run.append(word)
            if ends_sentence(word[2]) or n == len(words) - 1:
                text = " ".join(w for _, _, w in run)
                piece = Piece(run[0][0], run[-1][1], text, len(run), no_speech, tuple(run), speaker)
                pieces.append(piece)
                run = []
    pieces.sort(key=lambda p: (p.start, p.end))
    return pieces


def _words(raw: Any) -> list[tuple[float, float, str]]:
    words = []
    for w in raw or []:
        if not isinstance(w, Mapping):
            continue
        text = str(w.get("word") or "").strip()
        start = _num(w.get("start"))
        if text:
            words.append((start, max(start, _num(w.get("end"), start)), text))
    words.sort(key=lambda w: w[0])
    return words


def ends_sentence(text: str) -> bool:
    """Whether text ends a sentence: . ? ! or an ellipsis, before closing quotes."""
    tail = text.rstrip().rstrip(_CLOSERS)
    if not tail.endswith(_TERMINALS):
        return False
    return tail.rsplit(maxsplit=1)[-1].lower() not in _ABBREVIATIONS


def is_question(text: str) -> bool:
    return text.rstrip().rstrip(_CLOSERS).endswith("?")


def sentence_boundaries(segments: Sequence[Mapping[str, Any]]) -> list[Sentence]:
    """The transcript as sentences (start, end, text) in time order: each segment split
    after every word that ends with . ? or ! (by word times); one per segment without
    words. A sentence that runs across two segments gives one piece in each."""
    return [Sentence(p.start, p.end, p.text) for p in transcript_pieces(segments)]


class Track:
    """The pieces in time order, with the silence around each for padding."""

    def __init__(self, pieces: list[Piece], duration_s: float | None, pad_s: float) -> None:
        if duration_s is not None and math.isfinite(duration_s) and duration_s > 0:
            self.duration = float(duration_s)
            pieces = [p for p in pieces if p.start < self.duration]  # speech past the end
        else:
            self.duration = max((p.end for p in pieces), default=0.0)
        self.pieces = pieces
        self.pad_s = max(0.0, pad_s)
        self.sentences = [Sentence(p.start, p.end, p.text) for p in pieces]
        self.starts = [p.start for p in pieces]
        # Where the speech before piece i ends, and where the speech after piece j starts:
        # running extremes, since overlapping segments can put an earlier word later.
        self.before: list[float] = []
        latest = 0.0
        for p in pieces:
            self.before.append(latest)
            latest = max(latest, p.end)
        self.after: list[float] = [0.0] * len(pieces)
        earliest = math.inf
        for n in range(len(pieces) - 1, -1, -1):
            self.after[n] = earliest
            earliest = min(earliest, pieces[n].start)

    @property
    def speech_start(self) -> float:
        return self.pieces[0].start

    @property
    def speech_end(self) -> float:
        return max(p.end for p in self.pieces)

    def length(self, first: int, last: int) -> float:
        return self.pieces[last].end - self.pieces[first].start

    def bounds(self, first: int, last: int) -> tuple[float, float]:
        """The clip from piece `first` to piece `last`, padded into the silence around it."""
        a, b = self.pieces[first].start, self.pieces[last].end
        floor = min(a, self.before[first])  # overlapping speech before: no pad
        ceiling = max(b, min(self.after[last], self.duration))
        start = _within(a - self.pad_s, floor, a)
        end = _within(b + self.pad_s, b, ceiling)
        return start, max(start, min(end, self.duration))  # the media ends where it ends

    def no_speech_prob(
        self, start: float, end: float, first: int | None = None, last: int | None = None
    ) -> float:
        """Whisper's mean no_speech_prob over the words of pieces first..last, or without
        them of the pieces whose middle lies in [start, end]."""
        if first is None or last is None:
            inside = [p for p in self.pieces if start <= (p.start + p.end) / 2 <= end]
        else:
            inside = self.pieces[first : last + 1]
        words = sum(p.words for p in inside)
        return sum(p.no_speech_prob * p.words for p in inside) / words if words else 0.0

    def text_between(self, start: float, end: float) -> str:
        """The words (pieces without word times) whose middle lies in [start, end]."""
        out = []
        for p in self.pieces:
            if p.end < start or p.start > end:
                continue
            if start <= p.start and p.end <= end:
                out.append(p.text)
                continue
            out += [w for a, b, w in p.timed_words() if start <= (a + b) / 2 <= end]
        return " ".join(out)


def _within(value: float, lo: float, hi: float) -> float:
    """value to the millisecond, kept inside [lo, hi]: rounding must not cut a word."""
    return min(max(round(value, 3), lo), hi)


def _num(value: Any, default: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return default
    return float(value)
