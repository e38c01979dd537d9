"""What a stage takes and gives back: plain dataclasses shared by the stage functions, the
Ray task that runs them and the coordinator that persists their checkpoints."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pipeline.errors import MediaError, PipelineError
from pipeline.options import AnalyzeOptions, FetchOptions, StageOptions, TranscribeOptions
from pipeline.types import CancelToken, ProgressCallback


@dataclass(frozen=True)
class StageInput:
    """One stage's input. `work_dir` is a scratch directory on the node running the stage:
    the stage's input files (earlier stages' outputs) are there when it starts, and it
    writes its outputs there; the stage task moves them into the artifact store."""

    job_id: str
    url: str
    options: StageOptions
    work_dir: str
    checkpoints: dict[str, dict[str, Any]]
    fetch_options: FetchOptions = field(default_factory=FetchOptions)
    job_type: str = ""
    # The source already on this node (an upload, `upload://<id>`, staged in from the
    # artifact store): the fetch stage checks it instead of downloading `url`.
    local_source: str | None = None


@dataclass(frozen=True)
class ArtifactSpec:
    kind: str
    path: str  # absolute path of the file inside the stage's work dir
    format: str
    duration_s: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    id: str | None = None  # a UUID chosen by the stage, when a job field must refer to it
    # set once the file is in the artifact store (by the stage task, on the stage's node)
    key: str | None = None
    size_bytes: int | None = None


@dataclass(frozen=True)
class StageOutput:
    checkpoint: dict[str, Any]
    artifacts: list[ArtifactSpec] = field(default_factory=list)
    job_fields: dict[str, Any] = field(default_factory=dict)
    node_id: str | None = None  # the Ray node that ran the stage (set by the stage task)
    # bytes this stage moved from and into the artifact store over the network (0 where
    # the store is a local directory: links and renames move nothing)
    bytes_in: int = 0
    bytes_out: int = 0
    # what the stage measured, for vpa's metrics (actors/metrics.py records it):
    # "clip_cut": [method, seconds] per clip cut
    figures: dict[str, list[Any]] = field(default_factory=dict)


class ModelServices(Protocol):
    """The model deployments, as the stages see them (Serve handles in production)."""

    def transcribe(
        self,
        audio_key: str,
        options: TranscribeOptions,
        progress: ProgressCallback,
        cancel: CancelToken,
    ) -> dict[str, Any]: ...

    def analyze(
        self,
        text: str,
        segments: list[dict[str, Any]],
        options: AnalyzeOptions,
        language: str | None,
        progress: ProgressCallback,
        cancel: CancelToken,
    ) -> dict[str, Any]: ...


def checkpoint_name(inp: StageInput, stage: str) -> str:
    """The file name of a completed stage's output (its key in the store is
    `<job id>/<name>`)."""
    try:
        return str(inp.checkpoints[stage]["file"])
    except KeyError as exc:
        raise PipelineError(f"stage {stage!r} has no checkpoint to resume from") from exc


def checkpoint_key(inp: StageInput, stage: str) -> str:
    """The artifact store key of a completed stage's output."""
    return f"{inp.job_id}/{checkpoint_name(inp, stage)}"


def checkpoint_file(inp: StageInput, stage: str) -> Path:
    """The completed stage's output in this stage's work dir (the stage task put it there)."""
    name = checkpoint_name(inp, stage)
    path = Path(inp.work_dir) / name
    if not path.is_file():
        raise MediaError(f"the {stage} output {name!r} is missing from the artifact store")
    return path
