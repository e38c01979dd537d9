"""Which parts of the analysis a transcript's language allows.

The bundled models are English: VADER's lexicon (sentiment), the spaCy pipeline (keywords
are its noun phrases, entities its named entities) and the MiniLM sentence encoder the
topic labels are matched with. On another language they give wrong results rather than
none (VADER scores unknown words neutral; MiniLM matches German words to English labels by
their spelling), so those parts are skipped, each with the reason, in the analysis's
`skipped`. Sentences, the summary and chapters are extractive (the transcript's own
sentences) and are kept. A model configured instead (a multilingual sentiment model or
sentence encoder, another spaCy pipeline) lifts the part it serves.
"""

from __future__ import annotations

from pipeline.analysis.nlp_models import NlpModels
from pipeline.options import AnalyzeOptions


def _only(languages: frozenset[str] | list[str]) -> str:
    return ", ".join(sorted(languages))


def unsupported_parts(
    models: NlpModels, language: str | None, options: AnalyzeOptions, notes: list[str]
) -> list[dict[str, str]]:
    """[{"part", "reason"}] for each part switched on that the models cannot do in
    `language` ("und": not known, and not English by the look of it); each also added to
    `notes` ("sentiment skipped: <reason>")."""
    shown = language or "not known"
    skipped: list[dict[str, str]] = []
    scorer = models.sentiment
    scored = scorer.languages
    if options.sentiment_analysis and scored is not None and language not in scored:
        reason = f"the sentiment model ({scorer.name}) is {_only(scored)}-only"
        skipped.append({"part": "sentiment", "reason": f"{reason}; the transcript is {shown}"})
    if models.spacy_for(language) is None:
        have = _only(list(models.spacy_pipelines)) or "none"
        reason = f"they come from spaCy, whose pipelines here are {have}"
        if options.keyword_extraction:
            skipped.append({"part": "keywords", "reason": f"{reason}; the transcript is {shown}"})
        skipped.append({"part": "entities", "reason": f"{reason}; the transcript is {shown}"})
    encoder = models.embedder.languages
    if options.topic_modeling and encoder is not None and language not in encoder:
        reason = f"topic labels are matched by a sentence encoder that is {_only(encoder)}-only"
        skipped.append({"part": "topics", "reason": f"{reason}; the transcript is {shown}"})
    notes += [f"{skip['part']} skipped: {skip['reason']}" for skip in skipped]
    return skipped
