"""Clips of a diarized transcript keep to one speaker's complete turn where they can.

A turn is a run of pieces (`pipeline.clips.transcript`) of one speaker with nobody else's in
between. With speakers:

- Candidates: every turn whose length fits the window range (60-140% of `clip_duration`)
  is a candidate of its own, and a window mostly inside such a turn (half its length or
  more) snaps to the turn's start and end.
- Score: a `speaker_turn` component (weight `W_TURN`, beside `pipeline.clips.score`'s):
  1.0 for one speaker's complete turn, 0.5 for one speaker's turn cut at one end, 0.3 at
  both, 0.4 for complete turns of several speakers and 0.1 for speakers mixed and cut. The
  reason then opens with "Speaker 2's complete turn".
- Each clip lists the speakers heard in it, in order (`speakers`).

A transcript without speakers gets none of this: its candidates and scores are unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.clips.score import WEIGHTS
from pipeline.clips.transcript import Track

W_TURN = 0.25
COMPLETE, CUT_ONCE, CUT_TWICE, EXCHANGE, MIXED = 1.0, 0.5, 0.3, 0.4, 0.1
SNAP_SHARE = 0.5  # a window this much inside a fitting turn becomes that turn

Rated = tuple[float, dict[str, float], str]


def diarized(track: Track) -> bool:
    return any(p.speaker for p in track.pieces)


def turns(track: Track) -> list[tuple[int, int]]:
    """(first, last) piece of every turn, in order; pieces without a speaker are no turn."""
    found: list[tuple[int, int]] = []
    for n, piece in enumerate(track.pieces):
        if not piece.speaker:
            continue
        if found and found[-1][1] == n - 1 and track.pieces[n - 1].speaker == piece.speaker:
            found[-1] = (found[-1][0], n)
        else:
            found.append((n, n))
    return found


def turn_windows(
    track: Track, windows: Sequence[tuple[int, int]], shortest: float, longest: float
) -> list[tuple[int, int]]:
    """`windows` snapped to the turns that fit [shortest, longest] seconds, and those turns
    too; `windows` as they are without speakers."""
    if not diarized(track):
        return list(windows)
    fitting = [t for t in turns(track) if shortest <= track.length(*t) <= longest]
    snapped = [_snapped(track, w, fitting) for w in windows]
    return list(dict.fromkeys([*snapped, *fitting]))


def _snapped(
    track: Track, window: tuple[int, int], fitting: list[tuple[int, int]]
) -> tuple[int, int]:
    start, end = track.pieces[window[0]].start, track.pieces[window[1]].end
    for turn in fitting:
        inside = min(end, track.pieces[turn[1]].end) - max(start, track.pieces[turn[0]].start)
        if inside >= SNAP_SHARE * max(end - start, 1e-6):
            return turn
    return window


def heard(track: Track, first: int | None, last: int | None) -> list[str] | None:
    """The speakers of pieces first..last in order of speech; None without speakers."""
    if not diarized(track) or first is None or last is None:
        return None
    return list(dict.fromkeys(p.speaker for p in track.pieces[first : last + 1] if p.speaker))


def inside(track: Track, start: float, end: float) -> tuple[int, int] | tuple[None, None]:
    """The first and last piece whose middle lies in [start, end] (a custom range)."""
    found = [n for n, p in enumerate(track.pieces) if start <= (p.start + p.end) / 2 <= end]
    return (found[0], found[-1]) if found else (None, None)


def turn_fit(track: Track, first: int, last: int) -> tuple[float, str]:
    """How well pieces first..last keep to turns: (value in [0, 1], phrase for the reason)."""
    pieces = track.pieces
    speakers = heard(track, first, last) or []
    opens = first == 0 or pieces[first - 1].speaker != pieces[first].speaker
    closes = last == len(pieces) - 1 or pieces[last + 1].speaker != pieces[last].speaker
    if len(speakers) == 1 and pieces[first].speaker == pieces[last].speaker:
        if opens and closes:
            return COMPLETE, f"{speakers[0]}'s complete turn"
        return (CUT_ONCE if opens or closes else CUT_TWICE), f"part of {speakers[0]}'s turn"
    if opens and closes:
        return EXCHANGE, f"complete turns of {len(speakers)} speakers"
    return MIXED, f"{len(speakers)} speakers, turns cut"


def with_turns(track: Track, rated: Rated, first: int | None, last: int | None) -> Rated:
    """`rated` (`score_clip`'s) with the `speaker_turn` component re-weighted in; `rated`
    itself without speakers or pieces."""
    if not diarized(track) or first is None or last is None:
        return rated
    score, components, reason = rated
    value, phrase = turn_fit(track, first, last)
    parts = {k: v for k, v in components.items() if k in WEIGHTS}
    total = sum(WEIGHTS[k] for k in parts) + W_TURN
    weighted = (sum(WEIGHTS[k] * v for k, v in parts.items()) + W_TURN * value) / total
    confidence = components.get("speech_confidence", 1.0)
    score = round(min(1.0, max(0.0, weighted * confidence)), 4)
    if value == COMPLETE:
        reason = f"{phrase}; {reason}"
    return score, {**components, "speaker_turn": value}, reason
