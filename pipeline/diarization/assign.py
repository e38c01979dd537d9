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


class TurnIndex:
    """The turns (in time order, not overlapping, as `turns.label_turns` makes them) as
    arrays, for labelling thousands of words without scanning every turn for each."""

    def __init__(self, turns: Sequence[Turn]) -> None:
        if not turns:
            raise ValueError("no turns to label with")
        self.starts = np.array([turn.start_s for turn in turns])
        self.ends = np.array([turn.end_s for turn in turns])
        self.labels = np.array([turn.label for turn in turns])

    def label_of(self, start_s: float, end_s: float) -> int:
        """The label of the turns that overlap [start_s, end_s] most (summed per label);
        with no overlap, the label of the nearest turn."""
        first = int(np.searchsorted(self.ends, start_s, side="right"))
        last = int(np.searchsorted(self.starts, end_s, side="left"))
        totals: dict[int, float] = {}
        for i in range(first, last):
            amount = min(self.ends[i], end_s) - max(self.starts[i], start_s)
            if amount > 0:
                label = int(self.labels[i])
                totals[label] = totals.get(label, 0.0) + float(amount)
        if totals:
            return max(totals, key=lambda label: totals[label])
        near = [i for i in (first - 1, first) if 0 <= i < len(self.labels)]
        gaps = [max(self.starts[i] - end_s, start_s - self.ends[i], 0.0) for i in near]
        return int(self.labels[near[int(np.argmin(gaps))]])


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
    """One Speaker per name, in `names`' order (Speaker 1, 2, ...): its talk time (the
    time inside its turns), its turns (stretches of its turns with nobody else's turn in
    between) and its words."""
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
    # names_by_first_speech numbers the names in the order it makes them
    return tuple(Speaker(n, talk[n], stretches[n], counts[n]) for n in names.values())
