"""Media for the benchmarks: ffmpeg, the cached speech video, and the loopback media server
(the tests' own, in a child process: `python -m bench.media ROOT`), so that jobs download
their input with yt-dlp as in production."""

from __future__ import annotations

import contextlib
import hashlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from bench.common import ROOT, child, log

SPEECH = ROOT / "tests" / "assets" / "speech_en.ogg"
CACHE_DIR = ROOT / "tmp" / "bench-cache"  # "/tmp/" is in .gitignore
FPS = 25
GOP = 50  # a keyframe every 2 s


def ffmpeg(*args: str, capture: bool = False, timeout: float | None = None) -> bytes:
    """Run ffmpeg quietly, failing on error; its stdout when `capture`."""
    from pipeline.media.ffmpeg import ffmpeg_exe

    done = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args],
        check=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if capture else None,
        timeout=timeout,
    )
    return done.stdout if capture else b""


def make_video(minutes: float, size: str) -> Path:
    """The benchmark video (cached): testsrc2 + the speech clip looped, h264/AAC in MP4, so
    that transcription and analysis get real words."""
    from pipeline.media.probe import probe

    duration_s = round(minutes * 60.0, 3)
    speech_tag = hashlib.sha256(SPEECH.read_bytes()).hexdigest()[:8]
    name = f"testsrc2-{size}-{FPS}fps-g{GOP}-{duration_s:g}s-speech{speech_tag}.mp4"
    path = CACHE_DIR / name
    if path.is_file():
        with contextlib.suppress(Exception):
            info = probe(path)
            if info.duration_s and abs(info.duration_s - duration_s) < 1.0:
                return path
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.stem + ".part.mp4")
    log(f"making the {duration_s:g} s {size} video {path} (once; it is cached) ...")
    t0 = time.perf_counter()
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={FPS}",
        "-stream_loop", "-1", "-i", str(SPEECH),
        "-map", "0:v:0", "-map", "1:a:0", "-t", f"{duration_s:g}",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        "-g", str(GOP), "-keyint_min", str(GOP), "-sc_threshold", "0",
        "-c:a", "aac", "-b:a", "96k", "-ar", "44100", "-ac", "2",
        str(part),
    )  # fmt: skip
    part.replace(path)
    log(f"  made in {time.perf_counter() - t0:.0f} s, {path.stat().st_size / 2**20:.0f} MiB")
    return path


def serve_media(root: str) -> None:
    """Child process: the tests' loopback media server; prints its base URL, runs forever."""
    from tests.fixtures.media import MediaServer

    server = MediaServer(Path(root))
    print(server.base_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        server.close()


@contextlib.contextmanager
def media_server(root: Path) -> Iterator[str]:
    """A media server child serving `root`; yields its base URL."""
    with child(["-m", "bench.media", str(root)]) as proc:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        if not base_url.startswith("http://"):
            raise RuntimeError(f"the media server did not start (said {base_url!r})")
        yield base_url


if __name__ == "__main__":
    serve_media(sys.argv[1])
