"""From speech regions to speaker turns: the windows the encoder sees, and the labelled
stretches of time their clusters give.

A window never crosses a pause (a region is speech without a pause of PAUSE_S), so a turn
that changes speaker at a pause - the usual case - changes exactly there; inside a long
region, windows overlap by half and each 10 ms frame takes the label of the window whose
centre is nearest, so a change without a pause is placed within about a quarter window.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.diarization.audio import FRAME_S

WINDOW_FRAMES = 150  # 1.5 s: long enough for a stable d-vector, short enough for a reply
HOP_FRAMES = 75  # half a window
MIN_WINDOW_FRAMES = 30  # a shorter region is not embedded: it takes its neighbours' label
PAUSE_S = 0.25


@dataclass(frozen=True)
class Window:
    start: int  # mel frame, inclusive
    stop: int  # mel frame, exclusive
    region: int  # index of its speech region

    @property
    def centre(self) -> float:
        return (self.start + self.stop) / 2


@dataclass(frozen=True)
class Turn:
    start_s: float
    end_s: float
    label: int  # cluster label


def plan_windows(regions: Sequence[tuple[int, int]]) -> list[Window]:
    """Windows of WINDOW_FRAMES every HOP_FRAMES inside each region, the last one ending
    with the region; a region shorter than a window is one window; shorter than
    MIN_WINDOW_FRAMES, none."""
    windows: list[Window] = []
    for index, (start, stop) in enumerate(regions):
        if stop - start < MIN_WINDOW_FRAMES:
            continue
        if stop - start <= WINDOW_FRAMES:
            windows.append(Window(start, stop, index))
            continue
        first = start
        while first + WINDOW_FRAMES < stop:
            windows.append(Window(first, first + WINDOW_FRAMES, index))
            first += HOP_FRAMES
        windows.append(Window(stop - WINDOW_FRAMES, stop, index))
    return windows


def smooth(windows: Sequence[Window], labels: np.ndarray) -> np.ndarray:
    """Labels with short flips undone: a window inside a region whose two neighbours in
    that region agree with each other takes their label."""
    smoothed = labels.copy()
    for i in range(1, len(windows) - 1):
        before, after = windows[i - 1], windows[i + 1]
        same_region = before.region == windows[i].region == after.region
        if same_region and labels[i - 1] == labels[i + 1] != labels[i]:
            smoothed[i] = labels[i - 1]
    return smoothed


def label_turns(
    regions: Sequence[tuple[int, int]], windows: Sequence[Window], labels: np.ndarray
) -> list[Turn]:
    """The turns of every region, in time order: each frame labelled by the nearest window
    of its region (by centre), or, in a region without windows, by the nearest window at
    all; runs of one label are one turn."""
    if not windows:
        return []
    centres = np.array([window.centre for window in windows])
    region_of = np.array([window.region for window in windows])
    turns: list[Turn] = []
    for index, (start, stop) in enumerate(regions):
        own = np.flatnonzero(region_of == index)
        candidates = own if own.size else np.arange(len(windows))
        frames = np.arange(start, stop) + 0.5
        nearest = candidates[np.argmin(np.abs(frames[:, None] - centres[candidates]), axis=1)]
        frame_labels = labels[nearest]
        changes = np.flatnonzero(np.diff(frame_labels)) + 1
        bounds = [0, *changes.tolist(), len(frame_labels)]
        for first, last in itertools.pairwise(bounds):
            turns.append(
                Turn((start + first) * FRAME_S, (start + last) * FRAME_S, int(frame_labels[first]))
            )
    return turns
