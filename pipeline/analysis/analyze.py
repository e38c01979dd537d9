"""Stage 4: analyse a transcript: sentiment, topics, keywords, entities, summary, chapters.

Plain code, no Ray: `analyze(text, segments, options, models)` with models from
`pipeline.analysis.nlp_models.load_models`, loaded once per process. How each part works:

- Sentences come from spaCy's parser, or a punctuation regex for a language without a
  spaCy pipeline (see `pipeline.analysis.transcript_text`).
- Every sentence is embedded once (MiniLM, mean pooling, unit length); the document vector is
  the word-weighted mean of its sentence vectors, a chapter's the same over its sentences.
- Sentiment: each sentence gets a compound polarity in [-1, 1] (VADER or a transformers
  model); `sentiment_score` is their word-weighted mean and `sentiment_label` gives the
  label, "mixed" included. The timeline scores each transcript segment on its own.
- Topics: `pipeline.analysis.taxonomy` scores a vector against every label. A label's confidence is
  the document's, or, when higher, that of the chapters it tops, scaled down while those
  cover under 15% of the words: a video that spends a third of its time on each of three
  subjects gets all three.
- Keywords: `pipeline.analysis.keywords` (frequent noun phrases without unsure, temporal and
  generic words, ranked by MMR, phrases before their words). `keyword_scores` hold each
  keyword's similarity to the document.
- Summary: `pipeline.analysis.summary` (each chapter's central sentences, shared out by length).
- Speakers (diarized transcripts): `pipeline.analysis.speakers`, each speaker's talk time,
  turns, sentiment and keywords over their own text.
- Chapters: `chapter_starts` (TextTiling over sentence embeddings). A chapter's title is its
  most central keyword candidate, else its best topic, else its opening words; its summary is
  its most central sentence.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from pipeline.analysis import transcript_text as tt
from pipeline.analysis.keywords import Candidates, unsure_words, without_words
from pipeline.analysis.language_support import unsupported_parts
from pipeline.analysis.nlp_models import NlpModels
from pipeline.analysis.polarity import SentimentLabel, sentiment_label
from pipeline.analysis.speakers import SpeakerSummary, speaker_analysis
from pipeline.analysis.summary import summarise
from pipeline.analysis.taxonomy import calibrate
from pipeline.options import AnalyzeOptions
from pipeline.types import ProgressCallback

SEGMENT_POLARITY = 0.05  # a segment is one short text: VADER's threshold

MAX_ENTITIES = 50
CHAPTER_TOPIC_MIN_SHARE = 0.15
# A change of subject gives depths of 0.9-1.3 with MiniLM; new wording on one subject < 0.5.
CHAPTER_MIN_DEPTH = 0.5


@dataclass(frozen=True)
class SentimentPoint:
    start: float
    end: float
    score: float
    label: SentimentLabel


@dataclass(frozen=True)
class Entity:
    text: str
    label: str  # spaCy's entity label: PERSON, ORG, GPE, DATE, MONEY, ...
    count: int


@dataclass(frozen=True)
class Chapter:
    start: float | None  # seconds; None when the transcript came without segments
    end: float | None
    title: str
    summary: str


@dataclass(frozen=True)
class AnalysisResult:
    """`to_dict()` is what the job stores as `analysis_results`. A part switched off or
    skipped keeps its keys with empty values (None, [], {}) and says why in `notes`; a part
    the transcript's language rules out is also in `skipped` ({"part", "reason"})."""

    sentiment: SentimentLabel | None = None
    topics: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    sentiment_score: float | None = None
    sentiment_timeline: list[SentimentPoint] = field(default_factory=list)
    topic_scores: dict[str, float] = field(default_factory=dict)
    keyword_scores: dict[str, float] = field(default_factory=dict)
    entities: list[Entity] = field(default_factory=list)
    summary: str = ""
    chapters: list[Chapter] = field(default_factory=list)
    word_count: int = 0
    speaking_rate_wpm: float | None = None
    language: str | None = None
    notes: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    speakers: list[SpeakerSummary] | None = None  # diarized transcripts only

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.speakers is None:
            del data["speakers"]  # an undiarized transcript's results stay as they were
        return data


def analyze(
    text: str,
    segments: Sequence[Mapping[str, Any]],
    options: AnalyzeOptions,
    models: NlpModels,
    *,
    detected_language: str | None = None,
    progress: ProgressCallback | None = None,
) -> AnalysisResult:
    """Analyse a transcript. `segments` ({start, end, text} dicts) give the sentiment timeline,
    chapter times and speaking rate. `options.language` wins over `detected_language`."""
    report = progress or (lambda _f, _m: None)
    if not text.strip():
        text = " ".join(str(s.get("text") or "").strip() for s in segments).strip()
    words = len(text.split())
    language, note = tt.resolve_language(options.language or detected_language, text)
    notes = [note] if note else []
    rate = tt.speaking_rate_wpm(words, segments)
    if rate is None and words:
        notes.append("speaking rate unknown: no timed segments")
    if not words:
        notes.append("nothing to analyse: the transcript is empty")
        return AnalysisResult(speaking_rate_wpm=rate, language=language, notes=notes)

    skipped = unsupported_parts(models, language, options, notes)
    gone = {skip["part"] for skip in skipped}
    parsed = _parsed(models, text, language, notes)
    sentences = [text[a:b] for a, b in parsed.spans]
    weights = np.array([len(s.split()) for s in sentences], np.float32)
    report(0.3, f"parsed {len(sentences)} sentences")

    unsure = unsure_words(segments)  # words Whisper was unsure of: kept out of both
    vectors = models.embedder.embed(without_words(sentences, unsure))
    doc_vec = _unit(weights @ vectors)
    bounds = [*chapter_starts(vectors), len(sentences)]
    ranges = list(itertools.pairwise(bounds))
    chapter_vecs = np.stack([_unit(weights[a:b] @ vectors[a:b]) for a, b in ranges])
    shares = np.array([weights[a:b].sum() for a, b in ranges]) / weights.sum()
    topic_conf, chapter_conf = _topic_confidences(models, doc_vec, chapter_vecs, shares)
    report(0.6, "embedded sentences")

    result: dict[str, Any] = {}
    if options.topic_modeling and "topics" not in gone:
        result.update(_pick_topics(models, topic_conf, options, notes))
    elif not options.topic_modeling:
        notes.append("topic modeling switched off (options.topic_modeling=false)")

    candidates = Candidates.empty(vectors.shape[1])
    if not options.keyword_extraction:
        notes.append("keyword extraction switched off (options.keyword_extraction=false)")
    elif "keywords" not in gone:
        candidates = Candidates.of(models, parsed, segments)
        result.update(candidates.keywords(doc_vec, options.max_keywords))
    report(0.8, "topics and keywords")

    if options.sentiment_analysis and "sentiment" not in gone:
        result.update(_sentiment(models, sentences, weights, segments))
    elif not options.sentiment_analysis:
        notes.append("sentiment analysis switched off (options.sentiment_analysis=false)")
    times = tt.TimeMap(text, segments)
    title_floor = options.min_confidence if "topics" not in gone else np.inf  # topic titles
    each = zip(ranges, chapter_vecs, chapter_conf, strict=True)
    chapters = [_chapter(models, candidates, sentences, parsed.spans, vectors, span, vecs, conf,
                         title_floor, times) for span, vecs, conf in each]  # fmt: skip
    return AnalysisResult(
        entities=_entities(parsed.entities),
        summary=summarise(sentences, vectors, weights, ranges, options.summary_sentences, unsure),
        chapters=chapters,
        word_count=words,
        speaking_rate_wpm=rate,
        language=language,
        notes=notes,
        skipped=skipped,
        speakers=speaker_analysis(models, segments, options, language, gone),
        **result,
    )


def _chapter(
    models: NlpModels,
    candidates: Candidates,
    sentences: list[str],
    spans: list[tt.Span],
    vectors: np.ndarray,
    span: tuple[int, int],
    chapter_vec: np.ndarray,
    confidences: np.ndarray,
    title_floor: float,
    times: tt.TimeMap,
) -> Chapter:
    """Sentences `span` as a chapter: its times, a title (a keyword phrase within it, else
    its topic when confident enough, else its opening words) and its central sentence."""
    a, b = span
    central = a + int(np.argmax(vectors[a:b] @ chapter_vec))
    title = candidates.title_within(a, b, chapter_vec)
    if title is None and confidences.max() >= title_floor:
        title = models.topics[int(np.argmax(confidences))].label.capitalize()
    start, end = times.at(spans[a][0]), times.at(spans[b - 1][1])
    return Chapter(start, end, title or _opening(sentences[a]), sentences[central])


def _parsed(models: NlpModels, text: str, language: str | None, notes: list[str]) -> tt.ParsedText:
    """Sentences, entities and noun phrases by spaCy; sentences alone where the language
    has no pipeline."""
    nlp = models.spacy_for(language)
    if nlp is not None:
        return tt.parse(nlp, text)
    notes.append(f"no spaCy pipeline for language {language!r}: sentences split on punctuation")
    return tt.ParsedText(tt.split_sentences(text))


def chapter_starts(vectors: np.ndarray) -> list[int]:
    """Indices of the sentences that open a chapter (0 always).

    TextTiling on embeddings: at each gap between sentences, the cosine between the mean
    vectors of the `w` sentences before and after it; a gap's depth is how far that
    similarity dips below the nearest peaks on both sides. Gaps deeper than both
    CHAPTER_MIN_DEPTH and the mean depth plus one standard deviation become boundaries,
    deepest first, at least `min_len` sentences from each other and from the ends.
    """
    n = len(vectors)
    min_len = max(3, n // 30)
    if n < 2 * min_len:
        return [0]
    w = min(max(3, n // 25), 10)
    cum = np.vstack([np.zeros((1, vectors.shape[1])), np.cumsum(vectors, 0, dtype=np.float64)])
    sims = np.empty(n - 1)
    for g in range(1, n):
        left, right = cum[g] - cum[max(0, g - w)], cum[min(n, g + w)] - cum[g]
        sims[g - 1] = left @ right / max(np.linalg.norm(left) * np.linalg.norm(right), 1e-9)
    depth = np.zeros(n - 1)
    for i in range(n - 1):
        lo = hi = i
        while lo > 0 and sims[lo - 1] >= sims[lo]:
            lo -= 1
        while hi < n - 2 and sims[hi + 1] >= sims[hi]:
            hi += 1
        depth[i] = sims[lo] + sims[hi] - 2 * sims[i]
    cutoff = max(CHAPTER_MIN_DEPTH, float(depth.mean() + depth.std()))
    starts = [0]
    for i in np.argsort(-depth, kind="stable"):
        if depth[i] < cutoff:
            break
        g = int(i) + 1
        if min_len <= g <= n - min_len and all(abs(g - s) >= min_len for s in starts[1:]):
            starts.append(g)
    return sorted(starts)


def _topic_confidences(
    models: NlpModels, doc_vec: np.ndarray, chapter_vecs: np.ndarray, shares: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(confidence per label, confidence per chapter and label); see the module docstring."""
    conf = calibrate(models.topic_embeddings @ doc_vec)
    chapter_conf = calibrate(chapter_vecs @ models.topic_embeddings.T)
    tops = chapter_conf.argmax(axis=1)
    for label in set(tops.tolist()):
        mine = tops == label
        coverage = float(shares[mine].sum())
        support = float((chapter_conf[mine, label] * shares[mine]).sum()) / coverage
        scaled = support * min(1.0, coverage / CHAPTER_TOPIC_MIN_SHARE)
        conf[label] = max(conf[label], scaled)
    return conf, chapter_conf


def _pick_topics(
    models: NlpModels, conf: np.ndarray, options: AnalyzeOptions, notes: list[str]
) -> dict[str, Any]:
    order = [int(i) for i in np.argsort(-conf, kind="stable")]
    picked = [i for i in order if conf[i] >= options.min_confidence][: options.max_topics]
    if not picked:
        notes.append(
            f"no topic reached min_confidence {options.min_confidence} "
            f"(best: {models.topics[order[0]].label} at {conf[order[0]]:.2f})"
        )
    return {
        "topics": [models.topics[i].label for i in picked],
        "topic_scores": {models.topics[i].label: round(float(conf[i]), 4) for i in picked},
    }


def _sentiment(
    models: NlpModels,
    sentences: list[str],
    weights: np.ndarray,
    segments: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    scorer = models.sentiment
    timed = [s for s in segments if str(s.get("text") or "").strip()]
    scores = scorer.score(sentences + [str(s["text"]).strip() for s in timed])
    label, score = sentiment_label(scores[: len(sentences)], weights)
    timeline = []
    for seg, value in zip(timed, scores[len(sentences) :], strict=True):
        seg_label: SentimentLabel = "neutral"
        if abs(value) >= SEGMENT_POLARITY:
            seg_label = "positive" if value > 0 else "negative"
        start, end = float(seg.get("start", 0.0)), float(seg.get("end", 0.0))
        timeline.append(SentimentPoint(start, end, round(value, 4), seg_label))
    return {"sentiment": label, "sentiment_score": round(score, 4), "sentiment_timeline": timeline}


def _entities(found: list[tuple[str, str]]) -> list[Entity]:
    ranked = sorted(Counter(found).items(), key=lambda item: (-item[1], item[0][0].lower()))
    return [Entity(text, label, n) for (text, label), n in ranked[:MAX_ENTITIES]]


def _opening(sentence: str, words: int = 6) -> str:
    head = sentence.split()
    return " ".join(head[:words]) + (" ..." if len(head) > words else "")


def _unit(vector: np.ndarray) -> np.ndarray:
    return np.asarray(vector / max(float(np.linalg.norm(vector)), 1e-9), np.float32)
