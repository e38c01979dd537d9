"""Speakers onto the transcript: every word gets the speaker whose turns overlap it most,
segments are split where the speaker changes between words, and the speakers are named
"Speaker 1", "Speaker 2", ... in order of first speech, with their talk time, turns and
words counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from pipeline.diarization.turns import Turn
from pipeline.results import Segment, Speaker, Word


def speaker_name(number: int) -> str:
    return f"Speaker {number}"


def label_of(start_s: float, end_s: float, turns: Sequence[Turn]) -> int:
    """The label of the turns that overlap [start_s, end_s] most (summed per label); with
    no overlap, the label of the nearest turn. `turns` must not be empty."""
    starts = np.array([turn.start_s for turn in turns])
    ends = np.array([turn.end_s for turn in turns])
    labels = np.array([turn.label for turn in turns])
    overlap = np.clip(np.minimum(ends, end_s) - np.maximum(starts, start_s), 0.0, None)
    if overlap.max() > 0:
        totals: dict[int, float] = {}
        for label, amount in zip(labels.tolist(), overlap.tolist(), strict=True):
            totals[label] = totals.get(label, 0.0) + amount
        return max(totals, key=lambda label: totals[label])
    distance = np.maximum(starts - end_s, 0.0) + np.maximum(start_s - ends, 0.0)
    return int(labels[int(np.argmin(distance))])


def names_by_first_speech(
    segments: Sequence[Segment], word_labels: Sequence[Sequence[int]], segment_labels: Sequence[int]
) -> dict[int, str]:
    """Cluster label -> "Speaker n", numbered in the order the labels first speak in the
    transcript (segments and words are in time order)."""
    names: dict[int, str] = {}
    for segment, words, label in zip(segments, word_labels, segment_labels, strict=True):
        for each in words if segment.words else [label]:
            names.setdefault(each, speaker_name(len(names) + 1))
    return names


def split_segment(segment: Segment, labels: Sequence[str]) -> list[Segment]:
    """`segment` cut where the speaker changes between its words (`labels`, one per word):
    each piece keeps the segment's scores, its text rebuilt from its words. The pieces' ids
    are placeholders (renumbered by the caller)."""
    pieces: list[Segment] = []
    first = 0
    for index in range(1, len(labels) + 1):
        if index < len(labels) and labels[index] == labels[first]:
            continue
        words = tuple(replace(word, speaker=labels[first]) for word in segment.words[first:index])
        pieces.append(
            replace(
                segment,
                start_s=segment.start_s if first == 0 else words[0].start_s,
                end_s=segment.end_s if index == len(labels) else words[-1].end_s,
                text="".join(word.word for word in words).strip(),
                words=words,
                speaker=labels[first],
            )
        )
        first = index
    return pieces


def summarize(
    turns: Sequence[Turn], names: dict[int, str], words: Sequence[Word]
) -> tuple[Speaker, ...]:
    """One Speaker per name, in name order: its talk time (the time inside its turns), its
    turns (stretches of its turns with nobody else's turn in between) and its words."""
    talk = dict.fromkeys(names.values(), 0.0)
    stretches = dict.fromkeys(names.values(), 0)
    previous: str | None = None
    for turn in turns:
        name = names.get(turn.label)
        if name is None:
            continue
        talk[name] += turn.end_s - turn.start_s
        if name != previous:
            stretches[name] += 1
        previous = name
    counts = dict.fromkeys(names.values(), 0)
    for word in words:
        if word.speaker in counts:
            counts[word.speaker] += 1
    ordered = sorted(names.values(), key=lambda name: int(name.rsplit(" ", 1)[1]))
    return tuple(Speaker(name, talk[name], stretches[name], counts[name]) for name in ordered)
