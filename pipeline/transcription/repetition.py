"""The repetition guard: Whisper's loops ("Thank you. Thank you. Thank you. ...") cut down.

Whisper sometimes decodes noise or music inside speech as one phrase over and over. The
engines already decode such a window again, hotter (the temperature fallback, while the
compression ratio is over its threshold), and drop a segment that stays over it
(`engine.keep_segment`). A loop spread over several short segments, each of which
compresses fine on its own, gets past both; `collapse_repeats` catches it.

The rule, deterministic: over the words of the whole transcript in order, across segment
boundaries, a phrase of 1 to `MAX_PHRASE_WORDS` words said more than `MAX_REPEATS` times in
a row keeps its first `MAX_REPEATS` copies. Words compare case- and punctuation-blind. A
segment that loses words is rebuilt from the words left (its times shrink to theirs); a
segment that loses all its words is dropped; segments are numbered again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from pipeline.results import Segment, TranscriptResult, Word

MAX_REPEATS = 2
MAX_PHRASE_WORDS = 40
_NOT_WORD = re.compile(r"[^\w']+")


@dataclass(frozen=True)
class _Token:
    segment: int
    key: str


def _tokens(segment: Segment) -> list[str]:
    """The segment's words as text: its timed words, else its text split on spaces."""
    if segment.words:
        return [word.word for word in segment.words]
    return segment.text.split()


def _key(token: str) -> str:
    return _NOT_WORD.sub("", token.lower()) or token.strip()


def repeated_copies(keys: list[str]) -> set[int]:
    """Indices of `keys` that repeat a phrase past `MAX_REPEATS` copies in a row."""
    dropped: set[int] = set()
    i = 0
    while i < len(keys):
        step = 1
        for n in range(1, MAX_PHRASE_WORDS + 1):
            if i + (MAX_REPEATS + 1) * n > len(keys):
                break
            if keys[i + n] != keys[i]:  # cheap test before comparing whole phrases
                continue
            phrase, count = keys[i : i + n], 1
            while keys[i + count * n : i + (count + 1) * n] == phrase:
                count += 1
            if count > MAX_REPEATS:
                dropped.update(range(i + MAX_REPEATS * n, i + count * n))
                step = count * n
                break
        i += step
    return dropped


def _rebuilt(segment: Segment, kept: list[bool]) -> Segment | None:
    """`segment` with only the kept words, or None when none is kept."""
    if all(kept):
        return segment
    if not any(kept):
        return None
    if not segment.words:
        text = " ".join(t for t, keep in zip(segment.text.split(), kept, strict=True) if keep)
        return replace(segment, text=text)
    words: tuple[Word, ...] = tuple(w for w, keep in zip(segment.words, kept, strict=True) if keep)
    return replace(
        segment,
        text="".join(word.word for word in words).strip(),
        words=words,
        start_s=words[0].start_s,
        end_s=words[-1].end_s,
    )


def collapse_repeats(result: TranscriptResult) -> TranscriptResult:
    """`result` without repetition loops (see the module docstring); the same object when
    nothing repeats past `MAX_REPEATS`."""
    tokens = [
        _Token(index, _key(token))
        for index, segment in enumerate(result.segments)
        for token in _tokens(segment)
    ]
    dropped = repeated_copies([token.key for token in tokens])
    if not dropped:
        return result
    kept: list[list[bool]] = [[] for _ in result.segments]
    for position, token in enumerate(tokens):
        kept[token.segment].append(position not in dropped)
    segments: list[Segment] = []
    for segment, keep in zip(result.segments, kept, strict=True):
        rebuilt = _rebuilt(segment, keep)
        if rebuilt is not None:
            segments.append(replace(rebuilt, id=len(segments)))
    return replace(
        result,
        segments=tuple(segments),
        text=" ".join(segment.text for segment in segments),
    )
