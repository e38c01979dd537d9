"""A transcript as text for the analysis stage: sentences, noun phrases, entities, times.

Sentences are character spans into the transcript text, so that any of them can be placed
in time through the transcription's segments (`TimeMap`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Span = tuple[int, int]  # [start, end) character offsets

# Unpunctuated speech can come out as one endless "sentence": cut those into pieces.
MAX_SENTENCE_WORDS = 60
SENTENCE_PIECE_WORDS = 30
# nlp.pipe gets the text in chunks of about this size, cut at sentence ends.
SPACY_CHUNK_CHARS = 4000
MAX_PHRASE_TOKENS = 4
SKIPPED_ENTITY_LABELS = frozenset({"CARDINAL", "ORDINAL"})  # bare numbers are noise here
# Tokens spaCy tags as times and amounts ("three weeks", "last night", "ten percent") are
# never part of a keyword: they say when or how much, not what the video is about.
QUANTITY_ENTITY_LABELS = frozenset(
    {"DATE", "TIME", "CARDINAL", "ORDINAL", "QUANTITY", "PERCENT", "MONEY"}
)

_STRIP_POS = frozenset({"DET", "PRON", "PUNCT", "NUM", "SYM", "CCONJ", "ADP", "PART", "SPACE"})
_SENTENCE_END = re.compile(r"[.!?\u3002\uff01\uff1f\u2026]+[\"'\u201d)\]]*\s+|\n+")
_LANGUAGE_NAMES = {"english": "en", "spanish": "es", "french": "fr", "german": "de",
                   "italian": "it", "portuguese": "pt", "dutch": "nl", "russian": "ru",
                   "chinese": "zh", "japanese": "ja"}  # fmt: skip
_ENGLISH_FUNCTION_WORDS = frozenset({
    "the", "a", "an", "and", "or", "but", "of", "to", "in", "on", "at", "for", "with", "is",
    "are", "was", "were", "be", "been", "it", "this", "that", "i", "you", "we", "they", "he",
    "she", "not", "have", "has", "do", "does", "so", "what", "there",
})  # fmt: skip


@dataclass
class ParsedText:
    """Sentences, and what spaCy found in them (nothing when the text had no spaCy pass)."""

    spans: list[Span]
    phrases: list[tuple[str, str, int]] = field(default_factory=list)  # key, display, sentence
    entities: list[tuple[str, str]] = field(default_factory=list)  # text, label


def split_sentences(text: str) -> list[Span]:
    """Sentence spans by punctuation, for languages without a spaCy pipeline."""
    spans, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        spans.append((start, m.end()))
        start = m.end()
    spans.append((start, len(text)))
    return _split_long(text, [s for s in (_strip(text, a, b) for a, b in spans) if s[1] > s[0]])


def parse(nlp: Any, text: str) -> ParsedText:
    """Sentences, noun phrases and entities from a spaCy pipeline, run in bounded chunks."""
    chunks: list[Span] = []
    pieces = split_sentences(text)
    chunk_start = pieces[0][0] if pieces else 0
    for a, _ in pieces:
        if a - chunk_start > SPACY_CHUNK_CHARS:
            chunks.append((chunk_start, a))
            chunk_start = a
    chunks.append((chunk_start, len(text)))
    parsed = ParsedText(spans=[])
    for (offset, _), doc in zip(chunks, nlp.pipe(text[a:b] for a, b in chunks), strict=True):
        first = len(parsed.spans)
        spans = [(offset + s.start_char, offset + s.end_char) for s in doc.sents]
        parsed.spans.extend(_split_long(text, [s for s in spans if text[s[0] : s[1]].strip()]))
        ends = [b for _, b in parsed.spans[first:]]
        for chunk in doc.noun_chunks:
            phrase = noun_phrase(chunk)
            if phrase is not None:
                sentence = first + int(np.searchsorted(ends, offset + chunk.start_char, "right"))
                parsed.phrases.append((*phrase, min(sentence, len(parsed.spans) - 1)))
        parsed.entities.extend(
            (" ".join(e.text.split()), e.label_)
            for e in doc.ents
            if e.label_ not in SKIPPED_ENTITY_LABELS
        )
    return parsed


def noun_phrase(chunk: Any) -> tuple[str, str] | None:
    """(lemma key, display form) of a spaCy noun chunk without its leading determiners,
    pronouns, numbers and stop words; None when no content noun is left. Tokens inside
    a time or quantity entity (`QUANTITY_ENTITY_LABELS`) are dropped first."""
    toks = [t for t in chunk if t.ent_type_ not in QUANTITY_ENTITY_LABELS]
    while toks and (toks[0].pos_ in _STRIP_POS or toks[0].is_stop or toks[0].like_num):
        toks.pop(0)
    while toks and (toks[-1].pos_ in _STRIP_POS or toks[-1].is_stop):
        toks.pop()
    if not toks or len(toks) > MAX_PHRASE_TOKENS:
        return None
    if not any(t.pos_ in ("NOUN", "PROPN") and t.is_alpha for t in toks):
        return None
    key = " ".join(t.lemma_.lower() for t in toks)
    display = "".join((t.text if t.pos_ == "PROPN" else t.lower_) + t.whitespace_ for t in toks)
    return (key, display.strip()) if len(key) >= 3 else None


def keyword_candidates(parsed: ParsedText, limit: int) -> tuple[list[str], list[set[int]]]:
    """The `limit` most frequent phrases (merged by lemma; ties in order of appearance):
    each one's most common display form and the sentences it occurs in."""
    counts: Counter[str] = Counter(key for key, _, _ in parsed.phrases)
    keys = [k for k, _ in counts.most_common(limit)]
    displays: dict[str, Counter[str]] = {k: Counter() for k in keys}
    sentences: dict[str, set[int]] = {k: set() for k in keys}
    for key, display, sentence in parsed.phrases:
        if key in displays:
            displays[key][display] += 1
            sentences[key].add(sentence)
    return [displays[k].most_common(1)[0][0] for k in keys], [sentences[k] for k in keys]


class TimeMap:
    """Character offset in the text -> seconds: each segment's text is found in order, and
    times are interpolated inside and between segments."""

    def __init__(self, text: str, segments: Sequence[Mapping[str, Any]]) -> None:
        self.chars: list[float] = []
        self.times: list[float] = []
        cursor = 0
        for seg in segments:
            seg_text = str(seg.get("text") or "").strip()
            pos = text.find(seg_text, cursor) if seg_text else -1
            if pos >= 0:
                cursor = pos + len(seg_text)
                self.chars += [pos, cursor]
                self.times += [float(seg.get("start", 0.0)), float(seg.get("end", 0.0))]
        if not self.chars and segments:  # the text and segments disagree: spread time evenly
            self.chars = [0, len(text)]
            self.times = [float(segments[0].get("start", 0.0)), float(segments[-1].get("end", 0))]

    def at(self, char: int) -> float | None:
        """Seconds at this character, or None when there were no segments."""
        if not self.chars:
            return None
        return round(float(np.interp(char, self.chars, self.times)), 3)


def resolve_language(code: str | None, text: str) -> tuple[str | None, str | None]:
    """(ISO 639-1 code, note). A given code is normalised ("en-US", "English" -> "en").
    Without one, a text of 20+ words where under 8% are common English function words
    (English speech runs at 30-50%) is "und" (undetermined); otherwise "en"."""
    if code:
        code = code.strip().lower().replace("_", "-")
        return _LANGUAGE_NAMES.get(code, code).split("-")[0] or None, None
    words = re.findall(r"\w+", text.lower())[:2000]
    if len(words) >= 20 and sum(w in _ENGLISH_FUNCTION_WORDS for w in words) < 0.08 * len(words):
        return "und", "language not given and the text does not look English: treated as 'und'"
    return ("en" if words else None), None


def speaking_rate_wpm(words: int, segments: Sequence[Mapping[str, Any]]) -> float | None:
    """Words per minute of speech: the summed duration of segments that hold text, so
    pauses between segments don't count. None without timed segments."""
    speech_s = sum(
        max(0.0, float(s.get("end", 0.0)) - float(s.get("start", 0.0)))
        for s in segments
        if str(s.get("text") or "").strip()
    )
    return round(words / (speech_s / 60.0), 1) if speech_s >= 1.0 else None


def _strip(text: str, a: int, b: int) -> Span:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    return a, b


def _split_long(text: str, spans: list[Span]) -> list[Span]:
    out = []
    for a, b in spans:
        words = list(re.finditer(r"\S+", text[a:b]))
        if len(words) <= MAX_SENTENCE_WORDS:
            out.append((a, b))
            continue
        for i in range(0, len(words), SENTENCE_PIECE_WORDS):
            piece = words[i : i + SENTENCE_PIECE_WORDS]
            out.append((a + piece[0].start(), a + piece[-1].end()))
    return out
