"""Speaker diarization end to end: one full_processing job with `diarization: true` on a
video whose sound is the committed two-voice dialogue (tests/assets/dialogue_en.*, six
turns), through the real Transcriber (Whisper + the resemblyzer encoder), Analyzer and
clips stage: labels on words and segments, the job's speaker summary, voice tags and
prefixes in the subtitle and text files, per-speaker analysis, clips on one speaker's turn."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

import pytest

from pipeline.media.probe import probe
from tests.fixtures.speech import ASSETS_DIR, SpeechSample, make_speech_video
from tests.integration.conftest import VpaApp

DIALOGUE = ASSETS_DIR / "dialogue_en.ogg"
TURNS = json.loads((ASSETS_DIR / "dialogue_en.json").read_text(encoding="utf-8"))["turns"]
OPTIONS = {
    "diarization": True,
    "clip_duration": 4.0,
    "overlap_duration": 0.5,
    "max_clips": 3,
    "min_confidence": 0.0,
}


@pytest.fixture(scope="module")
def done(models_app: VpaApp, media_server: Any, tmp_path_factory: Any) -> dict[str, Any]:
    """The finished diarized job (one per module: every test reads it)."""
    text = " ".join(turn["text"] for turn in TURNS)
    sample = SpeechSample(DIALOGUE, text, probe(DIALOGUE).duration_s or 26.0)
    video = make_speech_video(tmp_path_factory.mktemp("dialogue") / "d.mp4", sample, gop=10)
    job = models_app.submit(
        str(media_server.add_file(video)), job_type="full_processing", options=OPTIONS
    )
    finished = models_app.wait(job["id"], timeout_s=300)
    assert finished["status"] == "completed", finished
    return finished


@pytest.fixture(scope="module")
def files(models_app: VpaApp, done: dict[str, Any]) -> dict[str, str]:
    listed = models_app.client.get(f"/api/v1/jobs/{done['id']}/artifacts").json()
    kinds = ("subtitles_srt", "subtitles_vtt", "transcript_txt", "transcript_json")
    return {
        a["kind"]: models_app.client.get(a["download_url"]).text
        for a in listed
        if a["kind"] in kinds
    }


def _turn_labels(done: dict[str, Any]) -> list[str]:
    """Per reference turn, the label most of its words carry (asserting that most do)."""
    words = [w for s in done["segments"] for w in s["words"]]
    labels = []
    for turn in TURNS:
        inside = [
            w["speaker"]
            for w in words
            if turn["start"] <= (w["start"] + w["end"]) / 2 <= turn["end"]
        ]
        assert inside, turn
        label, count = Counter(inside).most_common(1)[0]
        assert count >= 0.8 * len(inside), (turn, inside)
        labels.append(label)
    return labels


def test_each_turn_gets_one_speaker_and_the_voices_differ(done: dict[str, Any]) -> None:
    labels = _turn_labels(done)
    by_voice: dict[str, set[str]] = {}
    for turn, label in zip(TURNS, labels, strict=True):
        by_voice.setdefault(turn["speaker"], set()).add(label)
    assert all(len(found) == 1 for found in by_voice.values()), by_voice
    assert by_voice["A"] != by_voice["B"]
    assert labels[0] == "Speaker 1"  # numbered in order of first speech
    segments = done["segments"]
    assert all(s["speaker"] in {"Speaker 1", "Speaker 2"} for s in segments)
    # a segment never mixes speakers: its words all carry its label
    assert all(w["speaker"] == s["speaker"] for s in segments for w in s["words"])


def test_the_job_sums_up_each_speaker(done: dict[str, Any]) -> None:
    speakers = {s["speaker"]: s for s in done["speakers"]}
    assert set(speakers) == {"Speaker 1", "Speaker 2"}
    words = Counter(w["speaker"] for s in done["segments"] for w in s["words"])
    for label, summary in speakers.items():
        assert summary["words"] == words[label]
        assert summary["turns"] >= 3  # each voice speaks three times
        assert 0 < summary["talk_time"] < done["duration"]
    reference = sum(t["end"] - t["start"] for t in TURNS)
    total = sum(s["talk_time"] for s in speakers.values())
    assert total == pytest.approx(reference, rel=0.35)


def test_subtitles_and_text_name_the_speakers(files: dict[str, str]) -> None:
    vtt = files["subtitles_vtt"]
    assert "<v Speaker 1>" in vtt and "<v Speaker 2>" in vtt
    cue_texts = [block.split("\n", 2)[2] for block in files["subtitles_srt"].strip().split("\n\n")]
    assert all(re.match(r"Speaker [12]: \S", text) for text in cue_texts), cue_texts
    paragraphs = files["transcript_txt"].strip().split("\n\n")
    assert all(re.match(r"Speaker [12]: \S", p) for p in paragraphs), paragraphs
    assert len(paragraphs) >= len(TURNS) - 1  # one paragraph per turn (a short one may merge)
    assert json.loads(files["transcript_json"])["speakers"]


def test_analysis_per_speaker(done: dict[str, Any]) -> None:
    per_speaker = {s["speaker"]: s for s in done["analysis_results"]["speakers"]}
    assert set(per_speaker) == {"Speaker 1", "Speaker 2"}
    for summary in per_speaker.values():
        assert summary["sentiment"] in {"positive", "negative", "neutral", "mixed"}
        assert isinstance(summary["keywords"], list)
    assert sum(s["talk_share"] for s in per_speaker.values()) == pytest.approx(1.0, abs=0.01)
    # the same figures as the job's own speaker summary
    for summary in done["speakers"]:
        mine = per_speaker[summary["speaker"]]
        assert (mine["talk_time"], mine["turns"], mine["words"]) == (
            summary["talk_time"],
            summary["turns"],
            summary["words"],
        )


def test_clips_keep_to_one_speakers_turn(done: dict[str, Any]) -> None:
    clips = done["generated_clips"]
    assert clips
    for clip in clips:
        assert len(clip["speakers"]) == 1, clip
        assert "complete turn" in clip["reason"], clip
        own = [s for s in done["segments"] if s["start"] < clip["end"] and s["end"] > clip["start"]]
        assert {s["speaker"] for s in own} == set(clip["speakers"]), (clip, own)
