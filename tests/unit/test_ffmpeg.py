"""probe and run_ffmpeg against the real ffmpeg binary and generated media."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import MediaError, StageCancelled, StageTimeout
from pipeline.media.ffmpeg import ffmpeg_exe, has_encoder, probe, run_ffmpeg
from pipeline.types import CancelToken
from tests.fixtures.media import SampleMedia, make_audio_only, make_video

# 30 s of tone produced in real time (-re): an ffmpeg run that lasts as long as we want
SLOW_ARGS = ["-re", "-f", "lavfi", "-i", "sine=duration=30", "-f", "null", "-"]
REPO = Path(__file__).resolve().parents[2]


class Progress:
    def __init__(self) -> None:
        self.calls: list[tuple[float, str]] = []

    def __call__(self, fraction: float, message: str) -> None:
        self.calls.append((fraction, message))

    @property
    def fractions(self) -> list[float]:
        return [fraction for fraction, _ in self.calls]


def test_ffmpeg_binary_has_what_the_pipeline_needs() -> None:
    assert Path(ffmpeg_exe()).is_file()
    for encoder in ("libmp3lame", "flac", "pcm_s16le", "libx264", "aac"):
        assert has_encoder(encoder), encoder
    assert not has_encoder("no_such_encoder")


def test_probe_video_with_audio(sample_media: SampleMedia) -> None:
    info = probe(sample_media.path("clip.mp4"))
    assert info.has_video and info.has_audio
    assert info.duration_s == pytest.approx(1.0, abs=0.1)
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert (info.width, info.height, info.fps) == (160, 120, 25.0)
    assert (info.audio_sample_rate_hz, info.audio_channels) == (44100, 2)
    assert "mp4" in info.format_name
    assert not info.is_still_image


def test_probe_video_without_audio(sample_media: SampleMedia) -> None:
    info = probe(sample_media.path("silent.mp4"))
    assert info.has_video and not info.has_audio
    assert info.audio_codec is None and info.audio_channels is None


@pytest.mark.parametrize(("matrix", "rotation"), [("90", 90), ("-90", 270), ("180", 180)])
def test_probe_reads_the_display_rotation(tmp_path: Path, matrix: str, rotation: int) -> None:
    plain = make_video(tmp_path / "plain.mp4")
    assert probe(plain).rotation == 0
    turned = tmp_path / "turned.mp4"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-display_rotation", matrix, "-i", str(plain),
         "-c", "copy", str(turned)],
        check=True,
    )  # fmt: skip
    assert probe(turned).rotation == rotation


def test_probe_audio_only(tmp_path: Path) -> None:
    info = probe(make_audio_only(tmp_path / "a.mp3", channels=1, sample_rate_hz=22050))
    assert info.has_audio and not info.has_video
    assert (info.audio_codec, info.audio_sample_rate_hz, info.audio_channels) == ("mp3", 22050, 1)


def test_probe_other_containers(tmp_path: Path) -> None:
    info = probe(make_video(tmp_path / "v.webm", container="webm"))
    assert (info.video_codec, info.audio_codec, info.audio_channels) == ("vp8", "opus", 2)
    assert probe(make_video(tmp_path / "v.mkv", container="mkv")).format_name == "matroska,webm"


@pytest.mark.parametrize(
    ("name", "code", "words"),
    [
        ("notmedia.mp4", "not_media", "is not a video or audio file"),
        ("page.html", "not_media", "is not a video or audio file"),
        ("truncated.mp4", "corrupt_media", "truncated or corrupt"),
        ("absent.mp4", "file_missing", "does not exist"),
    ],
)
def test_probe_rejects(sample_media: SampleMedia, name: str, code: str, words: str) -> None:
    with pytest.raises(MediaError, match=words) as caught:
        probe(sample_media.path(name))
    assert caught.value.code == code
    assert not caught.value.retryable


def test_probe_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.mp4").touch()
    with pytest.raises(MediaError, match="empty") as caught:
        probe(tmp_path / "empty.mp4")
    assert caught.value.code == "not_media"


def test_probe_killed_by_a_signal_is_retryable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    killed = tmp_path / "ffmpeg"
    killed.write_text("#!/bin/sh\nkill -9 $$\n")
    killed.chmod(0o755)
    monkeypatch.setattr("pipeline.media.ffmpeg.ffmpeg_exe", lambda: str(killed))
    with pytest.raises(MediaError, match="killed by signal 9") as caught:
        probe(make_audio_only(tmp_path / "a.flac"))
    assert caught.value.code == "ffmpeg_failed" and caught.value.retryable


def _flaky_ffmpeg(tmp_path: Path, failures: int) -> tuple[Path, Path]:
    """An ffmpeg that fails `failures` times without saying why, then is the real one."""
    calls = tmp_path / "calls"
    script = tmp_path / "ffmpeg"
    script.write_text(
        "#!/bin/sh\n"
        f'echo x >> "{calls}"\n'
        f'if [ "$(wc -l < "{calls}")" -le {failures} ]; then echo "something odd" >&2; exit 1; fi\n'
        f'exec "{ffmpeg_exe()}" "$@"\n'
    )
    script.chmod(0o755)
    return script, calls


def test_probe_asks_again_when_ffmpeg_fails_without_a_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    media = make_audio_only(tmp_path / "a.flac")
    script, calls = _flaky_ffmpeg(tmp_path, failures=1)
    monkeypatch.setattr("pipeline.media.ffmpeg.ffmpeg_exe", lambda: str(script))
    assert probe(media).has_audio
    assert len(calls.read_text().splitlines()) == 2


def test_probe_failing_twice_without_a_reason_is_retryable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    media = make_audio_only(tmp_path / "a.flac")
    script, calls = _flaky_ffmpeg(tmp_path, failures=2)
    monkeypatch.setattr("pipeline.media.ffmpeg.ffmpeg_exe", lambda: str(script))
    with pytest.raises(MediaError, match=r"did not say why .*exit code 1; something odd") as caught:
        probe(media)
    assert caught.value.code == "ffmpeg_failed" and caught.value.retryable
    assert len(calls.read_text().splitlines()) == 2


def test_run_reports_increasing_progress(tmp_path: Path) -> None:
    progress = Progress()
    out = tmp_path / "tone.wav"
    args = ["-f", "lavfi", "-i", "sine=duration=3", str(out)]
    assert run_ffmpeg(args, expected_duration_s=3.0, progress=progress, cancel=None) == []
    assert out.is_file()
    assert progress.fractions == sorted(progress.fractions)
    assert progress.fractions[-1] == 1.0
    assert all(0.0 <= f <= 1.0 for f in progress.fractions)
    # the first report names the child at once, and every later one names it too
    first = re.fullmatch(r"ffmpeg pid (\d+) running", progress.calls[0][1])
    assert first is not None and progress.calls[0][0] == 0.0
    pid = first[1]
    assert all(message.endswith(f"(ffmpeg pid {pid})") for _, message in progress.calls[1:])
    assert progress.calls[-1][1].endswith(f"/3.0 s processed (ffmpeg pid {pid})")


def test_run_failure_carries_stderr(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="ffmpeg failed") as caught:
        run_ffmpeg(
            ["-i", str(tmp_path / "missing.mp4"), str(tmp_path / "out.wav")],
            expected_duration_s=None,
            progress=None,
            cancel=None,
        )
    assert caught.value.code == "ffmpeg_failed"
    assert "No such file or directory" in caught.value.message
    assert not caught.value.retryable


@pytest.fixture
def children(monkeypatch: pytest.MonkeyPatch) -> list[subprocess.Popen[bytes]]:
    """The ffmpeg processes run_ffmpeg starts during the test."""
    started: list[subprocess.Popen[bytes]] = []
    real_popen = subprocess.Popen

    def recording_popen(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        proc = real_popen(*args, **kwargs)
        started.append(proc)
        return proc

    monkeypatch.setattr(subprocess, "Popen", recording_popen)
    return started


def _all_dead(procs: list[subprocess.Popen[bytes]]) -> bool:
    return bool(procs) and all(proc.poll() is not None for proc in procs)


def test_cancel_kills_ffmpeg_promptly(children: list[subprocess.Popen[bytes]]) -> None:
    cancel = CancelToken()
    threading.Timer(0.3, cancel.cancel).start()
    with pytest.raises(StageCancelled):
        run_ffmpeg(SLOW_ARGS, expected_duration_s=30.0, progress=None, cancel=cancel)
    assert _all_dead(children)
    # the run's ffmpeg was killed by a signal, not ended by itself: the cancel interrupted it
    runs = [proc for proc in children if "sine=duration=30" in str(proc.args)]
    assert len(runs) == 1 and runs[0].returncode < 0, [(p.args, p.returncode) for p in children]


def test_timeout_kills_ffmpeg(children: list[subprocess.Popen[bytes]]) -> None:
    with pytest.raises(StageTimeout, match=r"0\.3 s"):
        run_ffmpeg(SLOW_ARGS, expected_duration_s=30.0, progress=None, cancel=None, timeout_s=0.3)
    assert _all_dead(children)


def test_keyboard_interrupt_kills_ffmpeg_and_propagates(
    children: list[subprocess.Popen[bytes]],
) -> None:
    # Ray interrupts a cancelled task with KeyboardInterrupt in its thread
    def interrupt(fraction: float, message: str) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_ffmpeg(SLOW_ARGS, expected_duration_s=30.0, progress=interrupt, cancel=None)
    assert _all_dead(children)


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie may wait a while for its reaper)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="PR_SET_PDEATHSIG is Linux-only")
def test_ffmpeg_dies_with_its_parent_process() -> None:
    # the parent prints the pid of the ffmpeg it runs for 30 s
    script = (
        "import subprocess\n"
        "real_popen = subprocess.Popen\n"
        "def popen(*args, **kwargs):\n"
        "    proc = real_popen(*args, **kwargs)\n"
        "    if '-progress' in args[0]:\n"
        "        print(proc.pid, flush=True)\n"
        "    return proc\n"
        "subprocess.Popen = popen\n"
        "from pipeline.media.ffmpeg import run_ffmpeg\n"
        f"run_ffmpeg({SLOW_ARGS!r}, expected_duration_s=None, progress=None, cancel=None)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        ffmpeg_pid = int(parent.stdout.readline())
        time.sleep(0.2)
        assert _running(ffmpeg_pid)
        os.kill(parent.pid, signal.SIGKILL)  # no chance to clean up, like an OOM kill
        parent.wait(timeout=5)
        deadline = time.monotonic() + 3
        while _running(ffmpeg_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _running(ffmpeg_pid)
    finally:
        if parent.poll() is None:
            parent.kill()
        if parent.stdout is not None:
            parent.stdout.close()
