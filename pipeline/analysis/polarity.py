"""Sentiment labels: a document's (or a speaker's) label from its sentences' compound
polarities, as `analysis_results.sentiment` and each speaker's `sentiment` give it."""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

SentimentLabel = Literal["positive", "negative", "neutral", "mixed"]

# A sentence is "clearly" positive or negative past this compound.
CLEAR_POLARITY = 0.3
# The document leans one way when its mean compound is past this. VADER's own +-0.05 is for
# a single text; on a mean it would call a neutral explainer with one upbeat word positive.
DOCUMENT_POLARITY = 0.15
# "mixed": this share of sentences clearly each way, and a mean within MIXED_MAX_SCORE.
MIXED_MIN_SHARE = 0.2
MIXED_MAX_SCORE = 0.3


def sentiment_label(
    compounds: npt.ArrayLike, weights: npt.ArrayLike
) -> tuple[SentimentLabel, float]:
    """Label a document from its sentences' compounds; return (label, word-weighted mean).

    mixed: at least 20% of the sentences are clearly positive (compound >= 0.3) and at least
    20% clearly negative (<= -0.3), while the mean stays within +-0.3 (neither side wins).
    Otherwise positive when the mean is >= 0.15, negative when <= -0.15, else neutral.
    """
    c, w = np.asarray(compounds, np.float64), np.asarray(weights, np.float64)
    if not len(c):
        return "neutral", 0.0
    score = float(np.clip((c * w).sum() / max(w.sum(), 1e-9), -1.0, 1.0))
    positive, negative = float((c >= CLEAR_POLARITY).mean()), float((c <= -CLEAR_POLARITY).mean())
    if min(positive, negative) >= MIXED_MIN_SHARE and abs(score) < MIXED_MAX_SCORE:
        return "mixed", score
    if score >= DOCUMENT_POLARITY:
        return "positive", score
    if score <= -DOCUMENT_POLARITY:
        return "negative", score
    return "neutral", score
