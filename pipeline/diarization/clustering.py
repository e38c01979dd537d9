"""Grouping window embeddings by speaker, and how many speakers there are.

Agglomerative clustering (average linkage, cosine distance: one tree, cut at every count in
the allowed range); the count kept is the one whose clusters are best separated (highest
silhouette). One speaker is the answer when even the best split is poor. Measured with
bench/diarize.py's voices: splitting one voice scores 0.14 to 0.33 (0.18 on
tests/assets/speech_en.ogg), two or three voices at their true count 0.46 to 0.55 (0.55 on
tests/assets/dialogue_en.ogg). A split that leaves a cluster of a single window is not
counted: one odd window (a cough, a word cut short) is no speaker, and such splits score
high (0.32 for a single voice's 38 windows split 37 + 1).
"""

from __future__ import annotations

import numpy as np

DEFAULT_MIN_SPEAKERS = 1
DEFAULT_MAX_SPEAKERS = 8
# Below this best silhouette the windows are taken for a single voice
MIN_SILHOUETTE = 0.35
MIN_CLUSTER_WINDOWS = 2  # an estimated count needs this many windows in every cluster
# Clustering costs memory and time in the square of the windows (2 h of speech: 9,600
# windows, 740 MB of distances): past this many, an evenly spread sample of them is
# clustered and every window joins the nearest cluster centre.
MAX_CLUSTERED = 1500


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
    if len(embeddings) <= MAX_CLUSTERED:
        return _cluster(embeddings, low, high)
    sample = np.linspace(0, len(embeddings) - 1, MAX_CLUSTERED).round().astype(int)
    labels = _cluster(embeddings[sample], low, high)
    centres = np.stack(
        [embeddings[sample][labels == k].mean(axis=0) for k in range(labels.max() + 1)]
    )
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    return np.asarray(np.argmax(embeddings @ centres.T, axis=1), int)


def _cluster(embeddings: np.ndarray, low: int, high: int) -> np.ndarray:
    """One average-linkage tree (cosine distances), cut at each allowed count."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import pdist, squareform

    count = len(embeddings)
    high = min(high, count)
    low = min(low, high)
    if high <= 1:
        return np.zeros(count, int)
    condensed = np.clip(pdist(embeddings, "cosine"), 0.0, None)
    tree = linkage(condensed, method="average")

    def cut(k: int) -> np.ndarray:
        found = fcluster(tree, k, criterion="maxclust")
        return np.asarray(np.unique(found, return_inverse=True)[1], int)

    candidates = range(max(low, 2), min(high, count - 1) + 1)  # a silhouette needs k < rows
    if low == high or not candidates:
        return cut(low)
    distances = squareform(condensed)
    best_labels, best_score = cut(low), -1.0
    for k in candidates:
        labels = cut(k)
        if np.bincount(labels).min() < MIN_CLUSTER_WINDOWS:
            continue
        score = _silhouette(distances, labels)
        if score > best_score:
            best_labels, best_score = labels, score
    if low <= 1 and best_score < MIN_SILHOUETTE:
        return np.zeros(count, int)
    return best_labels


def _silhouette(distances: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.metrics import silhouette_score

    if not 2 <= len(set(labels.tolist())) < len(labels):
        return -1.0
    return float(silhouette_score(distances, labels, metric="precomputed"))
