"""Clips of a diarized transcript keep to one speaker's complete turn
(pipeline/clips/turns.py): whole turns as candidates, windows snapped to them, a
`speaker_turn` score component, the reason saying so, each clip's `speakers`; without
speakers the selection is the same as before."""

from __future__ import annotations

import copy
from typing import Any

from pipeline.clips.cutting import CutResult
from pipeline.clips.select import SelectOptions, custom_clips, select_clips
from pipeline.clips.stage import _clip_entry
from pipeline.options import ClipRange
from tests.unit.test_clip_select import (
    ANALYSIS,
    BLAND,
    HIGHLIGHT,
    assert_clean_cuts,
    assert_well_formed,
    make_segments,
    timeline,
)

S1, S2 = "Speaker 1", "Speaker 2"
# (speaker, sentences): turns of 4-6 sentences, about 20-32 s each at 2.5 words/s
TURNS = [
    (S1, BLAND[0:5]),
    (S2, HIGHLIGHT[0:4]),
    (S1, BLAND[2:8]),
    (S2, HIGHLIGHT[1:5] + BLAND[0:1]),
    (S1, BLAND[1:6]),
    (S2, BLAND[3:8]),
    (S1, HIGHLIGHT[0:3] + BLAND[5:7]),
]


def dialogue() -> tuple[list[dict[str, Any]], list[tuple[str, float, float]]]:
    """One segment per sentence, labelled by turn; and (speaker, start, end) per turn."""
    sentences = [s for _, group in TURNS for s in group]
    segments = make_segments(sentences)
    labels = [speaker for speaker, group in TURNS for _ in group]
    turns: list[tuple[str, float, float]] = []
    for seg, speaker in zip(segments, labels, strict=True):
        seg["speaker"] = speaker
        for word in seg["words"]:
            word["speaker"] = speaker
        if turns and turns[-1][0] == speaker:
            turns[-1] = (speaker, turns[-1][1], seg["end"])
        else:
            turns.append((speaker, seg["start"], seg["end"]))
    return segments, turns


def unlabelled(segments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    plain = copy.deepcopy(segments)
    for seg in plain:
        del seg["speaker"]
        for word in seg["words"]:
            del word["speaker"]
    return plain


def analysis_of(segments: list[dict[str, Any]]) -> dict[str, Any]:
    return dict(ANALYSIS, sentiment_timeline=timeline(segments, HIGHLIGHT))


def test_chosen_clips_are_whole_turns_of_one_speaker() -> None:
    segments, turns = dialogue()
    duration = segments[-1]["end"] + 1.0
    options = SelectOptions(clip_duration=30.0, max_clips=4, min_confidence=0.0)
    clips = select_clips(segments, analysis_of(segments), options, duration)
    assert len(clips) == 4
    assert_well_formed(clips)
    assert_clean_cuts(clips, segments, options.pad_s, duration)
    for clip in clips:
        assert clip.speakers is not None and len(clip.speakers) == 1, clip
        # starts at the turn's first word and ends at its last, less/plus the pad
        speaker, start, end = min(turns, key=lambda t: abs(t[1] - clip.start))
        assert start - options.pad_s - 1e-9 <= clip.start <= start
        assert end <= clip.end <= end + options.pad_s + 1e-9
        assert clip.speakers == [speaker]
        assert clip.components["speaker_turn"] == 1.0
        assert clip.reason.startswith(f"{speaker}'s complete turn")
        assert clip.to_dict()["speakers"] == [speaker]


def test_a_complete_turn_outscores_a_cut_or_mixed_range() -> None:
    segments, turns = dialogue()
    analysis = analysis_of(segments)
    speaker, start, end = turns[1]
    assert speaker == S2
    shift = 6.0  # about one sentence
    ranges = [
        ClipRange(start, end),  # the turn
        ClipRange(start + shift, end + shift),  # its end cut off, the next turn's start in
        ClipRange(start - shift, end - shift),  # the turn before's end, this one cut
        ClipRange(start + shift, end),  # part of the turn, one speaker
    ]
    whole, later, earlier, part = custom_clips(ranges, segments, analysis, None)
    assert whole.components["speaker_turn"] == 1.0 and whole.speakers == [S2]
    assert later.speakers == [S2, S1] and earlier.speakers == [S1, S2]
    assert part.speakers == [S2] and part.components["speaker_turn"] < 1.0
    for other in (later, earlier, part):
        assert other.components["speaker_turn"] < whole.components["speaker_turn"]
        assert not other.reason.startswith(S2)
    assert whole.score > max(later.score, earlier.score)
    assert whole.reason.startswith("Speaker 2's complete turn")


def test_without_speakers_the_selection_is_unchanged() -> None:
    segments, _ = dialogue()
    plain = unlabelled(segments)
    duration = segments[-1]["end"] + 1.0
    options = SelectOptions(clip_duration=30.0, max_clips=4, min_confidence=0.0)
    clips = select_clips(plain, analysis_of(plain), options, duration)
    assert clips and all(c.speakers is None for c in clips)
    assert all("speaker_turn" not in c.components and "turn" not in c.reason for c in clips)
    assert all("speakers" not in c.to_dict() for c in clips)
    # the same transcript diarized chooses other cuts (the turns')
    diarized = select_clips(segments, analysis_of(segments), options, duration)
    assert [(c.start, c.end) for c in diarized] != [(c.start, c.end) for c in clips]


def test_the_clip_record_lists_its_speakers() -> None:
    segments, _ = dialogue()
    options = SelectOptions(clip_duration=30.0, max_clips=1, min_confidence=0.0)
    (plan,) = select_clips(segments, analysis_of(segments), options, None)
    cut = CutResult("c.mp4", plan.start, plan.end, plan.end - plan.start, 640, 360, 25.0,
                    "smart", 1000)  # fmt: skip
    entry = _clip_entry(0, plan, cut, {"clip": "x"})
    assert entry["speakers"] == plan.speakers and len(entry["speakers"]) == 1
    plain = unlabelled(segments)
    (plan,) = select_clips(plain, analysis_of(plain), options, None)
    assert "speakers" not in _clip_entry(0, plan, cut, {"clip": "x"})
