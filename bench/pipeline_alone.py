"""The full_processing stages alone, for bench/full_job.py: each stage called in this process
with `pipeline.stages.run_stage`, in order, each consuming the previous one's checkpoint,
with the models loaded once before timing: what the service's figures are compared with."""

from __future__ import annotations

import dataclasses
import gc
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import log
from bench.cpu import CpuSnapshot, CpuUse


class LocalModels:
    """`ModelServices` in this process, doing per call what the Transcriber and Analyzer
    deployments do per request (same option mapping, same engine settings), with the
    models loaded once, here, before anything is timed."""

    def __init__(self, settings: Any) -> None:
        from pipeline.analysis.nlp_models import load_models
        from pipeline.transcription.cache import load_engine

        self.work_dir = Path(".")  # where the stages run (set by run_alone)
        t0 = time.perf_counter()
        # As deployments.transcriber.Transcriber: its ModelCache loader, 4 workers per model.
        self.engine = load_engine(
            settings.whisper_engine, settings.whisper_model, "cpu", None, num_workers=4
        )
        self.whisper_load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        self.nlp = load_models(
            spacy_model=settings.spacy_model,
            sentiment_model=settings.sentiment_model,
            device="cpu",
        )
        self.nlp_load_s = time.perf_counter() - t0

    def transcribe(
        self, audio_key: str, options: Any, progress: Any, cancel: Any
    ) -> dict[str, Any]:
        from pipeline.transcription.engine import transcribe_audio

        # The stages name the audio by its store key (<job id>/<file>); alone, every stage
        # works in one directory, where the file is.
        audio_path = str(self.work_dir / Path(audio_key).name)
        result = transcribe_audio(audio_path, self.engine, options, progress, cancel)
        return result.to_dict()

    def analyze(
        self,
        text: str,
        segments: list[dict[str, Any]],
        options: Any,
        language: str | None,
        progress: Any,
        cancel: Any,
    ) -> dict[str, Any]:
        from deployments.analyzer import analyze_transcript

        return analyze_transcript(self.nlp, text, segments, options, language, progress)


@dataclasses.dataclass
class AloneRun:
    timings: dict[str, float]
    load_note: str
    results: dict[str, Any]
    cpu: CpuUse
    first_progress: dict[str, float]  # per stage: seconds from its start to its first report


def run_alone(
    url: str, job_type: str, options: dict[str, Any], work_dir: Path, settings: Any
) -> AloneRun:
    from pipeline.options import FetchOptions, stage_options
    from pipeline.stages import STAGE_CHAINS, StageInput, run_stage
    from pipeline.types import CancelToken

    log("stages alone: loading the models ...")
    models = LocalModels(settings)
    models.work_dir = work_dir
    load_note = (
        f"models loaded before timing: {settings.whisper_engine} {settings.whisper_model} "
        f"in {models.whisper_load_s:.1f} s, spaCy {settings.spacy_model} + embeddings + "
        f"sentiment in {models.nlp_load_s:.1f} s"
    )
    job_id = str(uuid.uuid4())
    fetch_options = FetchOptions(
        allow_private_urls=True,
        max_download_bytes=settings.max_download_bytes,
        max_media_duration_s=settings.max_media_duration_s,
    )
    checkpoints: dict[str, dict[str, Any]] = {}
    timings: dict[str, float] = {}
    results: dict[str, Any] = {}
    first_progress: dict[str, float] = {}
    cpu0, t_all = CpuSnapshot.take(), time.perf_counter()
    for stage in STAGE_CHAINS[job_type]:
        inp = StageInput(
            job_id=job_id,
            url=url,
            options=stage_options(options),
            work_dir=str(work_dir),
            checkpoints=dict(checkpoints),
            fetch_options=fetch_options,
            job_type=job_type,
        )
        t0 = time.perf_counter()

        def progress(fraction: float, message: str, stage: str = stage, t0: float = t0) -> None:
            first_progress.setdefault(stage, time.perf_counter() - t0)

        output = run_stage(stage, inp, progress, CancelToken(), models)
        timings[stage] = time.perf_counter() - t0
        checkpoints[stage] = output.checkpoint
        results.update(output.job_fields)
        log(f"  {stage}: {timings[stage]:.2f} s")
    cpu = CpuUse.between(cpu0, CpuSnapshot.take(), time.perf_counter() - t_all)
    del models
    gc.collect()
    return AloneRun(timings, load_note, results, cpu, first_progress)
