"""The `vpa` command-line client against the real service (API keys on): most commands
in-process through typer's CliRunner, exit codes and Ctrl-C through real processes
(`python -m cli`), and the follower's resumption after a dropped socket on the real one."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result
from websockets.exceptions import ConnectionClosedOK

from cli.client import Target
from cli.follow import FollowState, Socket, follow, open_socket
from cli.main import app as cli_app
from tests.fixtures.media import MediaServer, SampleMedia
from tests.integration.conftest import MODELS_ADMIN_KEY, VpaApp

ROOT = Path(__file__).resolve().parents[2]
ADMIN = MODELS_ADMIN_KEY
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture(scope="module")
def app(models_app: VpaApp) -> VpaApp:
    return models_app  # keys on (MODELS_ADMIN_KEY): its client sends the admin key


def vpa(app: VpaApp, *args: str, key: str | None = ADMIN) -> Result:
    """`vpa ARGS` in this process, against `app`, with `key` (None: none)."""
    env = {"VPA_URL": app.base_url, "VPA_API_KEY": key or "", "COLUMNS": "200"}
    return CliRunner().invoke(cli_app, list(args), env=env)


def vpa_process(app: VpaApp, *args: str) -> subprocess.Popen[str]:
    """`python -m cli ARGS`: a real process, as a shell runs `vpa ARGS`."""
    env = {**os.environ, "VPA_URL": app.base_url, "VPA_API_KEY": ADMIN, "COLUMNS": "200"}
    return subprocess.Popen(
        [sys.executable, "-m", "cli", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err


def test_submit_follow_show_jobs_download_delete(
    app: VpaApp, sample_media: SampleMedia, tmp_path: Path
) -> None:
    result = vpa(app, "submit", sample_media.clip, "--follow", "-q")
    assert result.exit_code == 0, result.output
    job_id = result.stdout.splitlines()[0]
    assert UUID_RE.fullmatch(job_id)
    assert f"job {job_id} completed" in result.stdout
    for bar in ("job completed", "fetch", "audio"):  # the job's bar and each stage's
        assert re.search(rf"^\s*{bar}\s+━+\s+100%$", result.stdout, re.MULTILINE), bar

    shown = vpa(app, "show", job_id)
    assert shown.exit_code == 0, shown.output
    artifacts = app.client.get(f"/api/v1/jobs/{job_id}/artifacts").json()
    audio = next(a for a in artifacts if a["kind"] == "audio")
    assert "completed" in shown.stdout and "100%" in shown.stdout
    assert f"{app.base_url}{audio['download_url']}" in shown.stdout

    listed = vpa(app, "jobs", "--status", "completed")
    assert listed.exit_code == 0 and job_id in listed.stdout
    assert job_id not in vpa(app, "jobs", "--status", "failed").stdout

    saved = vpa(app, "download", job_id, "--kind", "audio", "-d", str(tmp_path / "out"))
    assert saved.exit_code == 0, saved.output
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == [audio["filename"]]  # that kind only, by its name, no .part left
    expected = app.client.get(audio["download_url"]).content
    assert (tmp_path / "out" / audio["filename"]).read_bytes() == expected

    assert vpa(app, "delete", job_id).exit_code == 0
    gone = vpa(app, "show", job_id)
    assert gone.exit_code == 1 and f"Job {job_id} not found" in gone.stderr


def test_submit_a_local_file_uploads_it(app: VpaApp, sample_media: SampleMedia) -> None:
    clip = sample_media.path("clip.mp4")
    code, out, err = finished(
        vpa_process(app, "submit", str(clip), "-o", "audio_format=mp3", "-o",
                    "audio_quality=low", "--priority", "7", "--follow", "-q")
    )  # fmt: skip
    assert code == 0, err
    job = app.job(out.splitlines()[0])
    assert job["status"] == "completed" and job["youtube_url"].startswith("upload://")
    assert job["options"]["audio_format"] == "mp3" and job["priority"] == 7
    kinds = {a["kind"]: a for a in app.client.get(f"/api/v1/jobs/{job['id']}/artifacts").json()}
    assert kinds["audio"]["filename"].endswith(".mp3")


def test_a_failed_job_exits_1_with_its_reason(app: VpaApp, sample_media: SampleMedia) -> None:
    code, out, err = finished(vpa_process(app, "submit", sample_media.not_media, "-f", "-q"))
    assert code == 1
    job_id = out.splitlines()[0]
    assert f"job {job_id} failed (not_media:" in err
    again = vpa(app, "follow", job_id)  # an ended job: its end at once
    assert again.exit_code == 1 and "not_media" in again.stderr
    retried = vpa(app, "retry", job_id)
    assert retried.exit_code == 0 and re.search(r"queued|processing|failed", retried.stdout)
    assert app.wait(job_id)["error_code"] == "not_media"


def test_usage_and_api_errors(app: VpaApp, sample_media: SampleMedia, tmp_path: Path) -> None:
    bad_option = vpa(app, "submit", sample_media.clip, "-o", "max_clips")
    assert bad_option.exit_code == 2 and "key=value" in bad_option.output
    assert vpa(app, "submit", sample_media.clip, "--no-such-option").exit_code == 2
    assert vpa(app, "submit", str(tmp_path / "missing.mp4")).exit_code == 2
    refused = vpa(app, "submit", sample_media.clip, "-o", "max_clips=1000")
    assert refused.exit_code == 1 and "max_clips" in refused.stderr  # the server's 422
    unknown = str(uuid.uuid4())
    missing = vpa(app, "show", unknown)
    assert missing.exit_code == 1 and f"404: Job {unknown} not found" in missing.stderr
    assert vpa(app, "follow", unknown).exit_code == 1
    anonymous = vpa(app, "jobs", key=None)
    assert anonymous.exit_code == 1 and "401: an API key is required" in anonymous.stderr
    assert "Traceback" not in anonymous.output
    closed = vpa(app, "--url", "http://127.0.0.1:9", "jobs")
    assert closed.exit_code == 1
    assert "cannot reach vpa at http://127.0.0.1:9" in closed.stderr


def test_keys_create_list_revoke(app: VpaApp) -> None:
    made = vpa(app, "keys", "create", "cli runner", "--rate-limit", "5", "-q")
    assert made.exit_code == 0, made.output
    key = made.stdout.strip()
    assert key.startswith("vpa_")
    assert vpa(app, "jobs", key=key).exit_code == 0
    listed = vpa(app, "keys", "list")
    assert listed.exit_code == 0 and "cli runner" in listed.stdout
    key_id = next(
        k["id"] for k in app.client.get("/api/v1/keys").json() if k["name"] == "cli runner"
    )
    not_admin = vpa(app, "keys", "list", key=key)
    assert not_admin.exit_code == 1 and "403: only the admin key" in not_admin.stderr
    revoked = vpa(app, "keys", "revoke", key_id)
    assert revoked.exit_code == 0 and "revoked" in revoked.stdout
    refused = vpa(app, "jobs", key=key)
    assert refused.exit_code == 1 and "401: the API key is not valid" in refused.stderr


def _socket_count(app: VpaApp, job_id: str) -> int:
    status = app.client.get("/connections/status").json()
    return int(status["this_replica"]["jobs"].get(job_id, 0))


def test_ctrl_c_exits_130_then_cancel_retry(
    app: VpaApp, media_server: MediaServer, sample_media: SampleMedia
) -> None:
    hold = media_server.hold("clip.mp4")  # the download cannot end until released
    job_id = app.submit(hold.url)["id"]
    try:
        app.wait(job_id, {"processing"})
        follower = vpa_process(app, "follow", job_id)
        deadline = time.monotonic() + 60
        while _socket_count(app, job_id) < 1 and follower.poll() is None:
            assert time.monotonic() < deadline, "vpa follow did not open the job's socket"
            time.sleep(0.1)
        follower.send_signal(signal.SIGINT)
        code, _, err = finished(follower)
        assert code == 130 and "interrupted" in err and "Traceback" not in err

        cancelled = vpa(app, "cancel", job_id)
        assert cancelled.exit_code == 0 and "cancelled" in cancelled.stdout
        assert app.job(job_id)["status"] == "cancelled"
        hold.release()
        assert vpa(app, "retry", job_id).exit_code == 0
        assert app.wait(job_id)["status"] == "completed"
    finally:
        hold.release()
        app.wait(job_id)


class CutShort:
    """A real socket the client closes after `n` messages, or after `idle_s` without one:
    a dropped connection, whether or not the job has news."""

    def __init__(self, socket: Any, n: int, idle_s: float = 0.5) -> None:
        self.socket, self.n, self.idle_s = socket, n, idle_s

    @property
    def close_code(self) -> int | None:
        code: int | None = self.socket.close_code
        return code

    def __iter__(self) -> Iterator[str | bytes]:
        for _ in range(self.n):
            try:
                yield self.socket.recv(timeout=self.idle_s)
            except TimeoutError:
                break
            except ConnectionClosedOK:
                return
        self.socket.close()


def test_follow_resumes_after_each_drop_with_nothing_missed_or_repeated(
    app: VpaApp, media_server: MediaServer, sample_media: SampleMedia
) -> None:
    hold = media_server.hold("clip.mp4")  # clip.mp4: made by sample_media
    job_id = app.submit(hold.url)["id"]
    urls: list[str] = []

    @contextmanager
    def dropping(url: str, headers: dict[str, str]) -> Iterator[Socket]:
        urls.append(url)
        with open_socket(url, headers) as socket:
            yield CutShort(socket, 2)

    first_seq: list[int | None] = []

    def on_message(state: FollowState, _note: str | None) -> None:
        if not first_seq:
            first_seq.append(state.last_seq)  # the first initial_status: the job so far
        if len(urls) >= 3:
            hold.release()  # the job goes on only once the socket has dropped twice

    try:
        state = follow(Target(app.base_url, ADMIN), job_id, on_message, connect=dropping)
    finally:
        hold.release()
    assert state.status == "completed" and state.finished
    seqs = [e["seq"] for e in app.events(job_id)]
    start = first_seq[0]
    assert start is not None
    assert state.seen == [s for s in seqs if s > start]  # each once, in order, none missed
    assert len(urls) >= 3 and "after_seq" not in urls[0]
    resumed = [int(u.rsplit("after_seq=", 1)[1]) for u in urls[1:]]
    assert resumed == sorted(resumed) and resumed[-1] <= state.seen[-1]
