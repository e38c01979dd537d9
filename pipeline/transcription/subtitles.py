"""Transcript artifacts: SRT, WebVTT, plain text and JSON.

Cue text is wrapped at word boundaries to `max_line_chars`; a segment that needs more than
`max_lines` lines becomes several consecutive cues, split at word timestamps when the
segment has them and in proportion to the text length otherwise. The cues of a segment
span exactly its start and end.

A diarized transcript (segments or words carrying `speaker`) labels each cue with its
speaker: SRT with a `Speaker 1: ` prefix, WebVTT with a voice span (`<v Speaker 1>`). A cue
never holds two speakers: a segment whose words change speaker is cut there first. The
plain text then has one paragraph per speaker turn. Without speakers nothing changes.
"""

from __future__ import annotations

import itertools
import json
import os
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline.results import Segment, TranscriptResult, Word

MAX_LINE_CHARS = 42
MIN_LABELLED_CHARS = 12  # the narrowest wrap beside a speaker label
MAX_LINES = 2
ARTIFACT_STEM = "transcript"


@dataclass(frozen=True)
class Cue:
    start_s: float
    end_s: float
    lines: tuple[str, ...]
    speaker: str | None = None


@dataclass(frozen=True)
class _Token:
    text: str
    start_s: float | None  # None without word timestamps


def format_timestamp(seconds: float, decimal_marker: str = ",") -> str:
    """HH:MM:SS,mmm (SRT) or, with ".", HH:MM:SS.mmm (WebVTT)."""
    total_ms = max(0, round(seconds * 1000))
    hours, rest = divmod(total_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal_marker}{millis:03d}"


def _tokens(segment: Segment) -> list[_Token]:
    if segment.words:
        tokens: list[_Token] = []
        for word in segment.words:
            text = word.word.strip()
            if not text:
                continue
            # Whisper marks a new word with a leading space; anything else (CJK, split
            # punctuation) continues the previous token
            if tokens and not word.word[:1].isspace():
                tokens[-1] = _Token(tokens[-1].text + text, tokens[-1].start_s)
            else:
                tokens.append(_Token(text, word.start_s))
        if tokens:
            return tokens
    return [_Token(text, None) for text in segment.text.split()]


def _split_long(text: str, max_chars: int) -> list[str]:
    return [text[i : i + max_chars] for i in range(0, len(text), max_chars)]


def _wrap(tokens: Sequence[_Token], max_chars: int) -> list[list[_Token]]:
    """Greedy wrap at word boundaries; a word longer than a line is cut into pieces."""
    lines: list[list[_Token]] = []
    current: list[_Token] = []
    width = 0
    for token in tokens:
        pieces = (
            [
                _Token(piece, token.start_s if i == 0 else None)
                for i, piece in enumerate(_split_long(token.text, max_chars))
            ]
            if len(token.text) > max_chars
            else [token]
        )
        for piece in pieces:
            needed = len(piece.text) + (1 if current else 0)
            if current and width + needed > max_chars:
                lines.append(current)
                current, width = [], 0
                needed = len(piece.text)
            current.append(piece)
            width += needed
    if current:
        lines.append(current)
    return lines


def segment_cues(
    segment: Segment, max_line_chars: int = MAX_LINE_CHARS, max_lines: int = MAX_LINES
) -> list[Cue]:
    """The cues showing one segment, in order, together spanning start_s..end_s."""
    if max_line_chars < 1 or max_lines < 1:
        raise ValueError("max_line_chars and max_lines must be at least 1")
    lines = _wrap(_tokens(segment), max_line_chars)
    if not lines:
        return []
    groups = [lines[i : i + max_lines] for i in range(0, len(lines), max_lines)]
    start_s, end_s = segment.start_s, max(segment.end_s, segment.start_s)
    boundaries = [start_s]
    total_chars = sum(len(token.text) for group in groups for line in group for token in line)
    chars_before = 0
    for previous, group in itertools.pairwise(groups):
        chars_before += sum(len(token.text) for line in previous for token in line)
        first_word_start_s = group[0][0].start_s
        if first_word_start_s is not None:
            boundary = first_word_start_s
        else:
            boundary = start_s + (end_s - start_s) * chars_before / max(total_chars, 1)
        boundaries.append(min(max(boundary, boundaries[-1]), end_s))
    boundaries.append(end_s)
    return [
        Cue(
            start_s=boundaries[i],
            end_s=boundaries[i + 1],
            lines=tuple(" ".join(token.text for token in line) for line in group),
        )
        for i, group in enumerate(groups)
    ]


def speaker_runs(segment: Segment) -> list[Segment]:
    """`segment` cut where its words change speaker (a word without one keeps the one
    before it), each part labelled; the segment itself when it has one speaker."""
    runs: list[list[Word]] = []
    speakers: list[str | None] = []
    for word in segment.words:
        speaker = word.speaker or (speakers[-1] if speakers else segment.speaker)
        if runs and speaker == speakers[-1]:
            runs[-1].append(word)
        else:
            runs.append([word])
            speakers.append(speaker)
    if len(runs) <= 1:
        return [segment if not speakers else replace(segment, speaker=speakers[0])]
    edges = [segment.start_s, *(run[0].start_s for run in runs[1:]), segment.end_s]
    return [
        replace(
            segment,
            start_s=max(edges[i], segment.start_s) if i else segment.start_s,
            end_s=edges[i + 1],
            text="".join(w.word for w in run),
            words=tuple(run),
            speaker=speakers[i],
        )
        for i, run in enumerate(runs)
    ]


def cues(
    segments: Iterable[Segment], max_line_chars: int = MAX_LINE_CHARS, max_lines: int = MAX_LINES
) -> list[Cue]:
    """The cues of all segments, in order; each labelled with its speaker when known."""
    out: list[Cue] = []
    for segment in segments:
        for part in speaker_runs(segment):
            # the "Speaker 1: " prefix shares the first line: every line leaves room for it
            width = max_line_chars - len(f"{part.speaker}: ") if part.speaker else max_line_chars
            for cue in segment_cues(part, max(width, MIN_LABELLED_CHARS), max_lines):
                out.append(replace(cue, speaker=part.speaker) if part.speaker else cue)
    return out


def has_speakers(segments: Iterable[Segment]) -> bool:
    """Whether any segment or word carries a speaker label (a diarized transcript)."""
    return any(s.speaker or any(w.speaker for w in s.words) for s in segments)


def _srt_text(line: str) -> str:
    return line.replace("-->", "->")  # the one sequence an SRT parser cannot take in text


def _vtt_text(line: str) -> str:
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_srt(
    segments: Iterable[Segment], max_line_chars: int = MAX_LINE_CHARS, max_lines: int = MAX_LINES
) -> str:
    """SubRip: numbered cues from 1, `HH:MM:SS,mmm --> HH:MM:SS,mmm`, a blank line after each."""
    blocks = []
    for number, cue in enumerate(cues(segments, max_line_chars, max_lines), start=1):
        timing = f"{format_timestamp(cue.start_s)} --> {format_timestamp(cue.end_s)}"
        text = "\n".join(_srt_text(line) for line in cue.lines)
        if cue.speaker:
            text = f"{_srt_text(cue.speaker)}: {text}"
        blocks.append(f"{number}\n{timing}\n{text}\n")
    return "\n".join(blocks)


def to_vtt(
    segments: Iterable[Segment], max_line_chars: int = MAX_LINE_CHARS, max_lines: int = MAX_LINES
) -> str:
    """WebVTT: the `WEBVTT` header, then cues timed `HH:MM:SS.mmm --> HH:MM:SS.mmm`."""
    blocks = ["WEBVTT\n"]
    for cue in cues(segments, max_line_chars, max_lines):
        timing = f"{format_timestamp(cue.start_s, '.')} --> {format_timestamp(cue.end_s, '.')}"
        text = "\n".join(_vtt_text(line) for line in cue.lines)
        if cue.speaker:  # a voice span; its annotation escaped like text
            text = f"<v {_vtt_text(cue.speaker)}>{text}"
        blocks.append(f"{timing}\n{text}\n")
    return "\n".join(blocks)


def to_txt(result: TranscriptResult) -> str:
    """The transcript, one segment per line; diarized, one paragraph per speaker turn
    (`Speaker 1: ...`, the segments of a turn joined, a blank line between turns)."""
    if has_speakers(result.segments):
        return _turns_txt(result.segments)
    lines = [segment.text.strip() for segment in result.segments if segment.text.strip()]
    return "\n".join(lines) + "\n" if lines else ""


def _turns_txt(segments: Iterable[Segment]) -> str:
    turns: list[tuple[str | None, list[str]]] = []
    for part in (run for segment in segments for run in speaker_runs(segment)):
        text = part.text.strip()
        if not text:
            continue
        if turns and turns[-1][0] == part.speaker:
            turns[-1][1].append(text)
        else:
            turns.append((part.speaker, [text]))
    paragraphs = [
        f"{speaker}: {' '.join(texts)}" if speaker else " ".join(texts) for speaker, texts in turns
    ]
    return "\n\n".join(paragraphs) + "\n" if paragraphs else ""


def to_json(result: TranscriptResult) -> str:
    return json.dumps(result.to_dict(), ensure_ascii=False, indent=2) + "\n"


def write_subtitles(
    result: TranscriptResult,
    dest_dir: str | os.PathLike[str],
    max_line_chars: int = MAX_LINE_CHARS,
    max_lines: int = MAX_LINES,
) -> dict[str, Path]:
    """Write transcript.json/.srt/.vtt/.txt into dest_dir; returns {"json": path, ...}.

    Each file is written under a temporary name and renamed, so a reader never sees half of
    one.
    """
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    contents = {
        "json": to_json(result),
        "srt": to_srt(result.segments, max_line_chars, max_lines),
        "vtt": to_vtt(result.segments, max_line_chars, max_lines),
        "txt": to_txt(result),
    }
    paths: dict[str, Path] = {}
    for suffix, text in contents.items():
        final = dest / f"{ARTIFACT_STEM}.{suffix}"
        partial = dest / f".{ARTIFACT_STEM}-{uuid.uuid4().hex[:8]}.{suffix}.part"
        try:
            partial.write_text(text, encoding="utf-8")
            partial.replace(final)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        paths[suffix] = final
    return paths
