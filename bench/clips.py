"""Clip cutting benchmark: the smart cut against a full re-encode, moviepy and stream copy.

Run: `PYTHONPATH=. .venv/bin/python bench/clips.py [--minutes 10] [--clips 5]
[--clip-seconds 20] [--skip-moviepy] [--smoke]`. A script, never a test; moviepy comes from
requirements-bench.txt (`make bench` installs it). `--smoke`, to check that the script runs:
one 6 s clip of a 24 s video, no moviepy (so `make test` needs nothing from
requirements-bench.txt), probing timed once.

The source is a generated `--minutes` 1280x720 25 fps H.264 video (x264 ultrafast plus two
B-frames, a keyframe every 2-5 s at pseudo-random times like a real upload) with AAC audio
that beeps every second. It is cached in the system temp directory
(vpa-bench-clips/), so a second run skips the generation.

`--clips` clips of `--clip-seconds` are spread evenly through it, each starting and ending
between keyframes. Every clip is cut by every method in turn (the order rotating from clip
to clip, so a busy spell on a shared machine does not land on one method), and both the
wall time and the CPU time (this process and its ffmpeg children, user + system) are taken
around each cut. On a loaded machine the CPU time is the steadier figure: wall time then
favours whatever runs more threads. The methods:
- smart: `cut_clip` (auto, which picks smart) with the keyframes listed once beforehand;
  that scan is timed separately and included in the total;
- reencode: `cut_clip(method="reencode")`, libx264 veryfast CRF 21 at the same size;
- moviepy: `VideoFileClip(src).subclipped(a, b).write_videofile(...)` (moviepy 2), libx264
  veryfast CRF 21, AAC 128k, the same as reencode;
- copy: `cut_clip(method="copy")`, a plain `-ss -t -c copy`.

Frame accuracy per clip: decoded frame count minus round(length * fps), and how many frames
the clip's first frame sits from the source frame at the requested start (found by nearest
match among the source's frames around it, decoded small and gray).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

if not __package__:  # `python bench/clips.py`: the repository root first, not bench/
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench.media import ffmpeg
from pipeline.clips.cutting import CutOptions, cut_clip, keyframe_times, snap_to_frames
from pipeline.media.ffmpeg import ffmpeg_exe
from pipeline.media.probe import probe
from pipeline.types import CancelToken

CACHE = Path(tempfile.gettempdir()) / "vpa-bench-clips"
SIZE = "1280x720"
FPS = 25
GRAY_W, GRAY_H = 96, 54
SEARCH_BEFORE_S = 6.0  # a copy starts at the keyframe before: up to 5 s early
SEED = 20261124


# ----------------------------------------------------------------------------- media


def keyframe_schedule(duration_s: float, rng: random.Random) -> list[float]:
    """Keyframe times 2-5 s apart, on frame boundaries."""
    times, t = [0.0], 0.0
    while True:
        t += rng.uniform(2.0, 5.0)
        if t >= duration_s - 1:
            return times
        times.append(round(t * FPS) / FPS)


def make_source(minutes: float) -> Path:
    """The cached benchmark video, generated on first use."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"source_{minutes:g}min_{SIZE}.mp4"
    if path.exists():
        return path
    duration = minutes * 60
    keyframes = keyframe_schedule(duration, random.Random(SEED))
    partial = path.with_suffix(".part.mp4")
    print(f"generating {path} ({minutes:g} min, {len(keyframes)} keyframes) ...", flush=True)
    started = time.perf_counter()
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size={SIZE}:rate={FPS}:duration={duration}",
        "-f", "lavfi", "-i", f"sine=frequency=440:beep_factor=4:sample_rate=48000:d={duration}",
        "-c:v", "libx264", "-preset", "ultrafast", "-bf", "2", "-pix_fmt", "yuv420p",
        "-g", "1000", "-sc_threshold", "0",
        "-force_key_frames", ",".join(f"{t:.2f}" for t in keyframes),
        "-c:a", "aac", "-b:a", "128k", "-ac", "2", "-movflags", "+faststart", str(partial),
        timeout=3600,
    )  # fmt: skip
    partial.replace(path)
    print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)
    return path


def clip_ranges(duration_s: float, clips: int, clip_s: float) -> list[tuple[float, float]]:
    """`clips` ranges spread evenly, nudged off the round seconds so both ends fall mid-GOP."""
    ranges = []
    for index in range(clips):
        centre = (index + 0.5) * duration_s / clips
        start = min(max(centre - clip_s / 2 + 0.52, 0.0), duration_s - clip_s - 0.1)
        ranges.append(snap_to_frames(start, start + clip_s, FPS, duration_s))
    return ranges


def gray_frames(
    path: Path, seek_s: float | None = None, length_s: float | None = None
) -> np.ndarray:
    args = [] if seek_s is None else ["-ss", f"{seek_s:.6f}"]
    args += [] if length_s is None else ["-t", f"{length_s:.6f}"]
    raw = ffmpeg(
        *args, "-i", str(path), "-map", "0:v:0", "-fps_mode", "passthrough",
        "-vf", f"scale={GRAY_W}:{GRAY_H}", "-f", "rawvideo", "-pix_fmt", "gray", "-",
        capture=True, timeout=3600,
    )  # fmt: skip
    return np.frombuffer(raw, np.uint8).reshape(-1, GRAY_H, GRAY_W).astype(np.float32)


def decode_errors(path: Path) -> int:
    stderr = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-i", str(path),
         "-f", "null", "-"],
        capture_output=True, text=True, timeout=600, check=False,
    ).stderr  # fmt: skip
    return len([line for line in stderr.splitlines() if line.strip()])


# ----------------------------------------------------------------------------- methods


@dataclass
class Outcome:
    name: str
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    extra_s: float = 0.0  # work done once per source (the keyframe scan)
    extra_cpu_s: float = 0.0
    frame_errors: list[int] = field(default_factory=list)
    start_offsets: list[int] = field(default_factory=list)
    decode_errors: int = 0
    methods: set[str] = field(default_factory=set)

    outputs: list[Path] = field(default_factory=list)

    @property
    def total_s(self) -> float:
        return sum(self.seconds) + self.extra_s

    @property
    def total_cpu_s(self) -> float:
        return sum(self.cpu_seconds) + self.extra_cpu_s


def cpu_s() -> float:
    """CPU seconds used so far by this process and its waited-for children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


Cutter = Callable[[Path, float, float, Path], str]


def cutter(options: CutOptions, keyframes: list[float] | None = None) -> Cutter:
    def cut(source: Path, start: float, end: float, out: Path) -> str:
        result = cut_clip(
            source, start, end, out, options, lambda *_: None, CancelToken(), keyframes=keyframes
        )
        return result.method

    return cut


def moviepy_cut(source: Path, start: float, end: float, out: Path) -> str:
    from moviepy import VideoFileClip

    with VideoFileClip(str(source)) as video:
        clip = video.subclipped(start, end)
        clip.write_videofile(
            str(out),
            codec="libx264",
            preset="veryfast",
            audio_codec="aac",
            audio_bitrate="128k",
            ffmpeg_params=["-crf", "21"],
            temp_audiofile_path=str(out.parent),
            logger=None,
        )
    return "moviepy"


def run_all(
    plan: list[tuple[Outcome, Cutter]],
    source: Path,
    ranges: list[tuple[float, float]],
    work: Path,
) -> None:
    """Cut every clip with every method, rotating the order from clip to clip."""
    for index, (start, end) in enumerate(ranges):
        shift = index % len(plan)
        for outcome, cut in plan[shift:] + plan[:shift]:
            out = work / f"{outcome.name.split()[0]}_{index}.mp4"
            wall, cpu = time.perf_counter(), cpu_s()
            outcome.methods.add(cut(source, start, end, out))
            outcome.cpu_seconds.append(cpu_s() - cpu)
            outcome.seconds.append(time.perf_counter() - wall)
            outcome.outputs.append(out)
        print(f"  clip {index + 1}/{len(ranges)} cut by every method", flush=True)


def check_accuracy(outcome: Outcome, source: Path, ranges: list[tuple[float, float]]) -> None:
    for (start, end), out in zip(ranges, outcome.outputs, strict=True):
        frames = gray_frames(out)
        outcome.frame_errors.append(len(frames) - round((end - start) * FPS))
        seek = max(start - SEARCH_BEFORE_S, 0.0)
        around = gray_frames(source, seek, start - seek + 1.0)
        nearest = int(np.abs(around - frames[0]).mean(axis=(1, 2)).argmin())
        outcome.start_offsets.append(nearest - round((start - seek) * FPS))
        outcome.decode_errors += decode_errors(out)


# ----------------------------------------------------------------------------- probing


def print_probe_timing(source: Path, repeats: int = 5) -> None:
    """Median time to probe `source` and to list its keyframes: the ffmpeg subprocess
    parsers the pipeline used before (bench/probe_baseline.py) against PyAV, same run."""
    import statistics

    from bench.probe_baseline import ffmpeg_stderr_probe, framecrc_keyframe_times
    from pipeline.media.probe import MediaInfo

    def facts(path: Path, read: Callable[[Path], MediaInfo]) -> tuple[object, ...]:
        info = read(path)  # ffmpeg printed durations and rates rounded to 2 decimals
        return info.video_codec, info.width, info.height, round(info.fps or 0, 2)

    def timed(read: Callable[[Path], object]) -> tuple[float, object]:
        times, result = [], None
        for _ in range(repeats):
            started = time.perf_counter()
            result = read(source)
            times.append(time.perf_counter() - started)
        return statistics.median(times), result

    rows = [
        ("probe", timed(lambda p: facts(p, ffmpeg_stderr_probe)), timed(lambda p: facts(p, probe))),
        ("keyframe list", timed(framecrc_keyframe_times), timed(keyframe_times)),
    ]
    print(f"probing {source.name}, median of {repeats} (before: ffmpeg subprocess; after: PyAV):")
    for name, (old_s, old), (new_s, new) in rows:
        print(f"  {name}: before {old_s * 1000:.1f} ms, after {new_s * 1000:.1f} ms "
              f"({old_s / new_s:.1f}x as fast), same result: {old == new}")  # fmt: skip


# ----------------------------------------------------------------------------- report


def _worst(values: list[int]) -> str:
    worst = max(values, key=abs)
    return f"{worst:+d}" if worst else "0"


def print_table(outcomes: list[Outcome], clips: int, clip_s: float) -> None:
    smart = outcomes[0]
    print()
    print(f"{clips} clips of {clip_s:g} s; totals over all clips")
    print()
    print(
        "| method | wall (s) | wall vs smart | CPU (s) | CPU vs smart | frame count error "
        "(worst; per clip) | first frame vs requested start (worst) | decode errors |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for outcome in outcomes:
        errors = ", ".join(f"{e:+d}" if e else "0" for e in outcome.frame_errors)
        print(
            f"| {outcome.name} | {outcome.total_s:.2f} | {outcome.total_s / smart.total_s:.2f}x "
            f"| {outcome.total_cpu_s:.2f} | {outcome.total_cpu_s / smart.total_cpu_s:.2f}x "
            f"| {_worst(outcome.frame_errors)} ({errors}) "
            f"| {_worst(outcome.start_offsets)} frames | {outcome.decode_errors} |"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clips", type=int, default=5)
    parser.add_argument("--clip-seconds", type=float, default=20.0)
    parser.add_argument("--skip-moviepy", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="one 6 s clip, no moviepy")
    args = parser.parse_args(argv)
    if args.smoke:
        args.minutes, args.clips, args.clip_seconds, args.skip_moviepy = 0.4, 1, 6.0, True

    source = make_source(args.minutes)
    info = probe(source)
    ranges = clip_ranges(info.duration_s or args.minutes * 60, args.clips, args.clip_seconds)
    print(f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}, ffmpeg {ffmpeg_exe()}")  # fmt: skip
    print(f"source: {source.name}, {info.duration_s:.0f} s, {info.width}x{info.height}, "
          f"{info.fps:g} fps, {source.stat().st_size / 2**20:.0f} MiB")  # fmt: skip
    print("clips: " + ", ".join(f"{a:.2f}-{b:.2f}" for a, b in ranges))
    print_probe_timing(source, repeats=1 if args.smoke else 5)

    print("load average at the start: " + " ".join(f"{x:.1f}" for x in os.getloadavg()))
    smart = Outcome("smart (cut_clip auto)")
    started, cpu = time.perf_counter(), cpu_s()
    keyframes = keyframe_times(source)
    smart.extra_s, smart.extra_cpu_s = time.perf_counter() - started, cpu_s() - cpu
    print(f"keyframe scan: {len(keyframes)} keyframes in {smart.extra_s:.2f} s (once per source)")
    plan: list[tuple[Outcome, Cutter]] = [
        (smart, cutter(CutOptions(), keyframes)),
        (Outcome("reencode (libx264 veryfast)"), cutter(CutOptions(method="reencode"))),
    ]
    if not args.skip_moviepy:
        plan.append((Outcome("moviepy 2 (libx264 veryfast)"), moviepy_cut))
    plan.append((Outcome("stream copy (-c copy)"), cutter(CutOptions(method="copy"))))

    work = Path(tempfile.mkdtemp(prefix="vpa-bench-clips-"))
    try:
        run_all(plan, source, ranges, work)
        print("load average after cutting: " + " ".join(f"{x:.1f}" for x in os.getloadavg()))
        for outcome, _ in plan:
            check_accuracy(outcome, source, ranges)
            print(f"{outcome.name}: methods used {sorted(outcome.methods)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_table([outcome for outcome, _ in plan], args.clips, args.clip_seconds)


if __name__ == "__main__":
    main()
