"""The Transcriber deployment: Whisper behind Ray Serve, autoscaled, on GPUs when asked.

Each replica keeps an LRU of loaded models (`pipeline.transcription.engine.ModelCache`), so several
models are served at once and a model loads once per replica, never per job. Requests
stream progress (the share of audio seconds transcribed) and then the transcript. A job
that asks for diarization is diarized here too, after its transcription, on the same local
audio file (`pipeline.diarization`; its speaker encoder loads once per replica, on the
first such job).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import ray
from ray import serve

from actors import metrics
from config.logging import LogConfig, bind_job, setup_logging
from deployments.model_calls import replica_info, resolve_device, stream_work
from pipeline.diarization.diarize import diarize
from pipeline.diarization.encoder import load_encoder
from pipeline.errors import MediaError
from pipeline.options import TranscribeOptions
from pipeline.transcription.cache import ModelCache, load_engine
from pipeline.transcription.engine import Device, transcribe_audio
from pipeline.types import CancelToken, ProgressCallback, share_of
from storage.stores import StorageConfig, node_scratch, open_store, staged_file

log = logging.getLogger("vpa.transcriber")
# A diarized job's progress: transcription up to this share, diarization after it
# (bench/diarize.py: diarization takes a fraction of transcription's time with tiny.en)
TRANSCRIPTION_SHARE = 0.8


@serve.deployment(
    name="Transcriber",
    ray_actor_options={"num_cpus": 0.5},
    max_ongoing_requests=4,
    # Scale out quickly (a transcription queue builds fast), scale in slowly (loading a
    # model costs seconds). serve_config.yaml sets the bounds for a real cluster.
    autoscaling_config={
        "min_replicas": 1,
        "max_replicas": 2,
        "target_ongoing_requests": 2,
        "upscale_delay_s": 5,
        "downscale_delay_s": 120,
    },
    health_check_period_s=10,
)
class Transcriber:
    def __init__(
        self,
        engine: str = "faster-whisper",
        model: str = "tiny.en",
        device: str = "cpu",
        max_models: int = 2,
        concurrency: int = 4,
        *,
        storage: StorageConfig,
        logs: LogConfig | None = None,
    ) -> None:
        if logs is not None:
            setup_logging(logs, role="transcriber", required=False)
        # Audio arrives as an artifact store key, read from the store on this replica's
        # node (downloaded into its scratch directory when the store is object storage).
        self._storage = storage
        self._store = open_store(storage)
        self._engine_name = engine
        self._default_model = model
        self._device: Device = "cuda" if resolve_device(device) == "cuda" else "cpu"
        # Concurrent requests share one model (CTranslate2 workers): bench/transcribe.py
        # measured 1.45x the sequential throughput for 4 jobs, the same as faster-whisper's
        # batched pipeline (1.01x of it) at half its memory.
        workers = max(concurrency, 1)
        self._cache = ModelCache(
            max_models=max_models,
            loader=lambda e, m, d, c: load_engine(e, m, d, c, num_workers=workers),
        )
        try:  # load the default model once, at start, not on the first job
            self._cache.get(engine, model, self._device)
        except Exception:
            log.exception("default model %s could not be loaded; jobs will report why", model)

    async def transcribe(
        self, audio_key: str, options: TranscribeOptions, job_id: str | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Transcribe the audio stored under `audio_key` in the artifact store, with
        `options.model` (None: this replica's default model)."""
        bind_job(job_id)  # this request's lines (its worker thread's too) carry the job id
        name = options.model or self._default_model

        def work(progress: ProgressCallback, cancel: CancelToken) -> dict[str, Any]:
            engine = self._cache.get(self._engine_name, name, self._device)
            with self._audio_file(audio_key) as (path, downloaded):
                started = time.monotonic()
                share = TRANSCRIPTION_SHARE if options.diarization else 1.0
                result = transcribe_audio(
                    str(path), engine, options, share_of(progress, 0.0, share), cancel
                )
                metrics.transcribed(time.monotonic() - started, result.duration_s)
                if options.diarization:  # same audio file, same replica (docs/architecture.md)
                    encoder = load_encoder(self._device)
                    diarizing = share_of(progress, share, 1.0)
                    result = diarize(path, result, options, encoder, diarizing, cancel)
            return {**result.to_dict(), "audio_bytes_read": downloaded}

        async for item in stream_work(work):
            yield item

    @contextlib.contextmanager
    def _audio_file(self, key: str) -> Iterator[tuple[Path, int]]:
        """The audio as a local file, and the bytes downloaded to get it."""
        node = ray.get_runtime_context().get_node_id()
        scratch = node_scratch(self._storage, node) / "transcriber"
        try:
            with staged_file(self._store, key, scratch) as path:
                yield path, path.stat().st_size if self._store.remote else 0
        except FileNotFoundError as exc:
            raise MediaError(f"the audio {key!r} is missing from the artifact store") from exc

    def info(self) -> dict[str, Any]:
        return {
            **replica_info(),
            "engine": self._engine_name,
            "default_model": self._default_model,
            "device": self._device,
            "loaded": self._cache.loaded(),
        }
