"""Who spoke when: the `diarize` entry point, run on a transcript and its audio file.

Steps: the audio's mel frames and speech frames (`audio`: WebRTC VAD near the transcript's
words), speech regions split at pauses, overlapping 1.5 s windows embedded by the speaker
encoder (`encoder`), clustered with the count of speakers estimated or fixed
(`clustering`), short flips smoothed and frames turned into turns (`turns`), and the turns
put onto the words and segments (`assign`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from pipeline.diarization.assign import (
    TurnIndex,
    names_by_first_speech,
    split_segment,
    summarize,
)
from pipeline.diarization.audio import (
    FRAME_S,
    SpeechSource,
    read_features,
    speech_frames,
    speech_regions,
)
from pipeline.diarization.clustering import cluster_embeddings, speaker_bounds
from pipeline.diarization.encoder import embed_windows
from pipeline.diarization.turns import PAUSE_S, Turn, label_turns, plan_windows, smooth
from pipeline.errors import StageCancelled
from pipeline.options import TranscribeOptions
from pipeline.results import Segment, TranscriptResult
from pipeline.types import CancelToken, ProgressCallback, share_of

_READ_SHARE = 0.4  # of the progress: decoding and mel frames; the rest is the encoder


def diarize(
    audio_path: str | Path,
    result: TranscriptResult,
    options: TranscribeOptions,
    encoder: Any,
    progress: ProgressCallback,
    cancel: CancelToken,
    speech_source: SpeechSource = "vad+words",
) -> TranscriptResult:
    """`result` with a speaker on every segment and word, segments split where the speaker
    changes, and the `speakers` summary. `encoder` is `encoder.load_encoder(device)`.
    A transcript without segments comes back with speakers=(). Progress goes from 0 to 1.
    Raises MediaError (missing or unreadable audio) or StageCancelled."""
    if cancel.cancelled:
        raise StageCancelled("Cancelled before diarization started")
    if not result.segments:
        progress(1.0, "diarization: no speech to diarize")
        return replace(result, speakers=())
    progress(0.0, "diarization: reading the audio")
    features = read_features(Path(audio_path), cancel)
    words = [word for segment in result.segments for word in segment.words]
    speech = speech_frames(features.speech, words, speech_source)
    regions = speech_regions(speech, round(PAUSE_S / FRAME_S))
    windows = plan_windows(regions)
    progress(_READ_SHARE, f"diarization: embedding {len(windows)} windows of speech")
    embeddings = embed_windows(
        features.mel,
        [(window.start, window.stop) for window in windows],
        encoder,
        share_of(progress, _READ_SHARE, 1.0),
        cancel,
    )
    low, high = speaker_bounds(options.num_speakers, options.min_speakers, options.max_speakers)
    labels = smooth(windows, cluster_embeddings(embeddings, low, high))
    turns = label_turns(regions, windows, labels)
    if not turns:  # no speech the encoder could use: everything is one speaker's
        turns = [Turn(0.0, max(result.duration_s, features.duration_s), 0)]
    diarized = apply_turns(result, turns)
    progress(1.0, f"diarization: {len(diarized.speakers or ())} speakers found")
    return diarized


def apply_turns(result: TranscriptResult, turns: list[Turn]) -> TranscriptResult:
    """`result` with the turns' speakers on its words and segments (split at speaker
    changes, ids renumbered in order) and the speakers summary. Turns of a cluster that
    got no word are not a speaker."""
    if not result.segments:
        return replace(result, speakers=())
    index = TurnIndex(turns)
    word_labels = [
        [index.label_of(word.start_s, word.end_s) for word in segment.words]
        for segment in result.segments
    ]
    segment_labels = [index.label_of(s.start_s, s.end_s) for s in result.segments]
    names = names_by_first_speech(result.segments, word_labels, segment_labels)
    segments: list[Segment] = []
    for segment, labels, label in zip(result.segments, word_labels, segment_labels, strict=True):
        if segment.words:
            segments += split_segment(segment, [names[each] for each in labels])
        else:
            segments.append(replace(segment, speaker=names[label]))
    segments = [replace(segment, id=index) for index, segment in enumerate(segments)]
    all_words = [word for segment in segments for word in segment.words]
    return replace(result, segments=tuple(segments), speakers=summarize(turns, names, all_words))
