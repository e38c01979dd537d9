"""Grouping window embeddings by speaker, and how many speakers there are.

Agglomerative clustering (average linkage, cosine distance) for every count in the
allowed range; the count kept is the one whose clusters are best separated (highest
silhouette). One speaker is the answer when even the best split is poor: the silhouette of
two or more clusters of one voice stays low (0.18 on tests/assets/speech_en.ogg), where
two voices score far higher (0.55 on tests/assets/dialogue_en.ogg).
"""

from __future__ import annotations

import numpy as np

DEFAULT_MIN_SPEAKERS = 1
DEFAULT_MAX_SPEAKERS = 8
# Below this best silhouette the windows are taken for a single voice
MIN_SILHOUETTE = 0.3


def speaker_bounds(
    num_speakers: int | None, min_speakers: int | None, max_speakers: int | None
) -> tuple[int, int]:
    """The (low, high) speaker counts allowed: num_speakers fixes both."""
    if num_speakers is not None:
        return max(num_speakers, 1), max(num_speakers, 1)
    low = max(min_speakers or DEFAULT_MIN_SPEAKERS, 1)
    high = max(max_speakers or DEFAULT_MAX_SPEAKERS, low)
    return low, high


def cluster_embeddings(embeddings: np.ndarray, low: int, high: int) -> np.ndarray:
    """A cluster label 0..k-1 per embedding row, with low <= k <= high where there are
    enough rows (never more clusters than rows)."""
    count = len(embeddings)
    if count == 0:
        return np.zeros(0, int)
    high = min(high, count)
    low = min(low, high)
    if high <= 1:
        return np.zeros(count, int)
    if low == high:
        return _agglomerative(embeddings, low)
    candidates = range(max(low, 2), min(high, count - 1) + 1)  # a silhouette needs k < rows
    if not candidates:
        return _agglomerative(embeddings, low)
    best_labels, best_score = np.zeros(count, int), -1.0
    for k in candidates:
        labels = _agglomerative(embeddings, k)
        score = _silhouette(embeddings, labels)
        if score > best_score:
            best_labels, best_score = labels, score
    if low <= 1 and best_score < MIN_SILHOUETTE:
        return np.zeros(count, int)
    return best_labels


def _agglomerative(embeddings: np.ndarray, k: int) -> np.ndarray:
    from sklearn.cluster import AgglomerativeClustering

    if k <= 1:
        return np.zeros(len(embeddings), int)
    model = AgglomerativeClustering(n_clusters=k, metric="cosine", linkage="average")
    return np.asarray(model.fit_predict(embeddings), int)


def _silhouette(embeddings: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.metrics import silhouette_score

    if len(set(labels.tolist())) < 2:
        return -1.0
    return float(silhouette_score(embeddings, labels, metric="cosine"))
