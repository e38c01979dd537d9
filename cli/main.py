"""`vpa`: the commands (typer). Each one is a few calls of `VpaClient` and a table."""

from __future__ import annotations

import json
import signal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from cli.client import DEFAULT_URL, Target, VpaClient
from cli.download import download as download_artifacts
from cli.errors import exit_code_for, guarded, print_error
from cli.follow import follow as follow_socket
from cli.keys import keys_app
from cli.options import is_url, local_file, parse_options
from cli.progress import JobProgress
from cli.render import job_details, jobs_table, status_text

app = typer.Typer(
    name="vpa",
    help="The vpa video processing service from the command line.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(keys_app, name="keys")

JobId = Annotated[str, typer.Argument(help="the job's id", show_default=False)]


def out() -> Console:
    return Console()


def target_of(ctx: typer.Context) -> Target:
    target: Target = ctx.ensure_object(Target)
    return target


@app.callback()
def main(
    ctx: typer.Context,
    url: Annotated[
        str, typer.Option("--url", envvar="VPA_URL", help="where vpa serves its API")
    ] = DEFAULT_URL,
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", envvar="VPA_API_KEY", help="sent as Authorization: Bearer"),
    ] = None,
) -> None:
    if not url.lower().startswith(("http://", "https://")):
        raise typer.BadParameter(f"{url!r} is not an http(s):// URL", param_hint="'--url'")
    ctx.obj = Target(url.rstrip("/"), api_key or None)


@app.command()
@guarded
def submit(
    ctx: typer.Context,
    source: Annotated[
        str, typer.Argument(help="a media URL, or a local file to upload", show_default=False)
    ],
    job_type: Annotated[
        str,
        typer.Option(
            "--type",
            "-t",
            help="audio_extraction, transcription, analysis, clip_generation or full_processing",
        ),
    ] = "audio_extraction",
    option: Annotated[
        list[str] | None,
        typer.Option("--option", "-o", help="a job option, key=value (value as JSON if it is)"),
    ] = None,
    priority: Annotated[int | None, typer.Option(help="0-10 (the server's default: 5)")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="then follow it")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="print only the job id")] = False,
) -> None:
    """Create a job on a URL, or on a local file (uploaded first)."""
    options = parse_options(option)  # a usage error before anything is sent
    path = None if is_url(source) else local_file(source)
    target = target_of(ctx)
    with VpaClient(target) as client:
        url = source.strip() if path is None else str(client.upload(path)["url"])
        body: dict[str, Any] = {"youtube_url": url, "job_type": job_type, "options": options}
        if priority is not None:
            body["priority"] = priority
        job = client.create_job(body)
        if quiet:
            typer.echo(job["id"])
        else:
            out().print(
                Text.assemble("job ", (str(job["id"]), "bold"), " ", status_text(job["status"]))
            )
        if follow:
            raise typer.Exit(_follow(client, str(job["id"])))


def _follow(client: VpaClient, job_id: str) -> int:
    """Progress bars until the job ends; its exit code (0: it completed)."""
    job = client.job(job_id)  # an unknown job or a refused key: the API's own message
    console = out()
    with JobProgress(console) as view:
        state = follow_socket(client.target, str(job["id"]), view.update)
    final = state.job or job
    status = final.get("status")
    if status == "completed":
        console.print(Text.assemble("job ", str(final["id"]), " ", status_text(status)))
    else:
        reason = f"{final.get('error_code') or status}: {final.get('error_message') or ''}"
        print_error(f"job {final['id']} {status} ({reason.strip()})")
    return exit_code_for(status)


@app.command("follow")
@guarded
def follow_command(ctx: typer.Context, job_id: JobId) -> None:
    """Live progress of a job until it ends: exit 0 if it completed, 1 if not."""
    with VpaClient(target_of(ctx)) as client:
        raise typer.Exit(_follow(client, job_id))


class Status(StrEnum):
    pending = "pending"
    queued = "queued"
    processing = "processing"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"


@app.command()
@guarded
def jobs(
    ctx: typer.Context,
    status: Annotated[Status | None, typer.Option("--status", "-s")] = None,
    job_type: Annotated[str | None, typer.Option("--type", "-t")] = None,
    limit: Annotated[int, typer.Option(help="1-100")] = 20,
) -> None:
    """The latest jobs (the API key's own; every job for the admin)."""
    params: dict[str, Any] = {"limit": limit}
    if status is not None:
        params["status_filter"] = status.value
    if job_type:
        params["job_type"] = job_type
    with VpaClient(target_of(ctx)) as client:
        page = client.list_jobs(params)
    out().print(jobs_table(page["data"], page.get("count")))


@app.command()
@guarded
def show(ctx: typer.Context, job_id: JobId) -> None:
    """A job: status, progress, stages, error, artifacts and their download links."""
    target = target_of(ctx)
    with VpaClient(target) as client:
        job = client.job(job_id)
        artifacts = client.artifacts(job_id)
    out().print(job_details(job, artifacts, target.url))


def _command(ctx: typer.Context, job_id: str, verb: str) -> None:
    with VpaClient(target_of(ctx)) as client:
        job = client.command(job_id, verb)
    out().print(Text.assemble("job ", str(job["id"]), " ", status_text(job.get("status"))))


@app.command()
@guarded
def cancel(ctx: typer.Context, job_id: JobId) -> None:
    """Cancel a job (a running stage is interrupted)."""
    _command(ctx, job_id, "cancel")


@app.command()
@guarded
def retry(ctx: typer.Context, job_id: JobId) -> None:
    """Queue a failed or cancelled job again, after its last completed stage."""
    _command(ctx, job_id, "retry")


@app.command()
@guarded
def delete(ctx: typer.Context, job_id: JobId) -> None:
    """Delete a finished job and its artifacts."""
    with VpaClient(target_of(ctx)) as client:
        answer = client.delete(job_id)
    out().print(str(answer.get("message") or f"job {job_id} deleted"))


@app.command()
@guarded
def download(
    ctx: typer.Context,
    job_id: JobId,
    kind: Annotated[
        list[str] | None, typer.Option("--kind", "-k", help="only artifacts of this kind")
    ] = None,
    directory: Annotated[Path, typer.Option("--dir", "-d", help="where to save them")] = Path(),
) -> None:
    """Save a job's artifacts under a directory, by their names."""
    console = out()
    with VpaClient(target_of(ctx)) as client:
        saved = download_artifacts(client, job_id, set(kind or ()), directory, console)
    for path in saved:
        console.print(str(path), markup=False, highlight=False)


class Format(StrEnum):
    srt = "srt"
    vtt = "vtt"
    txt = "txt"
    json = "json"
    verbose_json = "verbose_json"
    diarized_json = "diarized_json"


@app.command()
@guarded
def transcribe(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, show_default=False)],
    fmt: Annotated[Format, typer.Option("--format", "-f")] = Format.txt,
    language: Annotated[str | None, typer.Option(help="e.g. en; default: detected")] = None,
    diarize: Annotated[
        bool, typer.Option("--diarize", help="Tell the speakers apart (Speaker 1, ...)")
    ] = False,
) -> None:
    """Transcribe a local file in one call (OpenAI-compatible route) to stdout."""
    response_format = "text" if fmt is Format.txt else fmt.value
    with VpaClient(target_of(ctx)) as client:
        text = client.transcribe(file, response_format, language, diarize=diarize)
    if fmt in (Format.json, Format.verbose_json, Format.diarized_json):
        text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    typer.echo(text.rstrip("\n"))


def run() -> None:
    """The `vpa` console script. Ctrl-C always interrupts (exit 130), even when vpa was
    started with SIGINT ignored (as a shell without job control starts `cmd &`)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    app(prog_name="vpa")
