"""Transcription benchmark: speed, accuracy, memory and concurrency of the Whisper engines.

Run: `PYTHONPATH=. HF_HUB_OFFLINE=1 .venv/bin/python bench/transcribe.py [--minutes 10]
[--clip-s 150] [--long-hours 2] [--sections 1,2,3] [--smoke]`. A script, never a test
(`--smoke`: every table with its fewest rows on the shortest audio, to check that it runs).

The speech is the committed test clip (tests/assets/speech_en.ogg, espeak-ng, 23 s) looped
with ffmpeg to about `--minutes`; its reference text is the clip's text repeated. Every
measurement runs in a fresh process, so model memory and allocator caches never carry over.

Figures:
1. per engine setting (faster-whisper tiny.en; int8 and float32; beam 1 and 5): model load
   time, real-time factor (transcription seconds / audio seconds, audio decoding included),
   word error rate, peak resident memory (psutil RSS sampled every 20 ms);
2. memory on long input: our windowed engine vs plain `WhisperModel.transcribe(path)` (which
   decodes the whole file and its spectrogram at once), and decoding a `--long-hours` file
   window by window vs faster-whisper's `decode_audio`;
3. throughput of 4 concurrent transcriptions of a `--clip-s` clip: one after another
   (num_workers=1), 4 threads sharing one model (num_workers=4), and faster-whisper's
   BatchedInferencePipeline (batch_size=8) on the same audio; audio seconds per second and
   the ratio to the sequential baseline;
4. the presets (`transcription_preset` fast = beam 1, accurate = beam 5, the default) on
   five unseen passages in five espeak-ng voices: WER per passage, the median, the
   real-time factor (bench/transcribe_presets.py; needs espeak-ng).
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

if not __package__:  # `python bench/transcribe.py`: the repository root first, not bench/
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench.common import ROOT
from bench.media import SPEECH, ffmpeg
from bench.transcribe_presets import section_presets
from pipeline.media.probe import probe

SPEECH_TEXT = ROOT / "tests" / "assets" / "speech_en.txt"
MODEL = "tiny.en"
SAMPLE_EVERY_S = 0.02
CONCURRENT_JOBS = 4


# ----------------------------------------------------------------------------- helpers


class PeakRss:
    """Samples this process's resident memory in a thread; `peak_mb` is the highest seen."""

    def __init__(self) -> None:
        import psutil

        self._process = psutil.Process()
        self.baseline_mb = self._rss_mb()
        self.peak_mb = self.baseline_mb
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss_mb(self) -> float:
        return float(self._process.memory_info().rss) / 2**20

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY_S):
            self.peak_mb = max(self.peak_mb, self._rss_mb())

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, self._rss_mb())


@contextmanager
def timer() -> Iterator[list[float]]:
    elapsed: list[float] = []
    started = time.perf_counter()
    yield elapsed
    elapsed.append(time.perf_counter() - started)


def looped(dest: Path, loops: int, *, copy: bool = False) -> Path:
    """The speech clip played `loops` times (16 kHz mono WAV, or the Opus packets copied)."""
    codec = ["-c", "copy"] if copy else ["-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le"]
    ffmpeg("-stream_loop", str(loops - 1), "-i", str(SPEECH), *codec, str(dest))
    return dest


def speech_text() -> str:
    return " ".join(SPEECH_TEXT.read_text(encoding="utf-8").split())


def wer(reference: str, hypothesis: str) -> float:
    from tests.fixtures.speech import word_error_rate

    return word_error_rate(reference, hypothesis)


def in_fresh_process(function: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(function, *args).result()


# ----------------------------------------------------------------------------- measurements


def measure_setting(
    audio: str, reference: str, compute_type: str, beam_size: int, word_timestamps: bool
) -> dict[str, Any]:
    import faster_whisper  # noqa: F401  (imported before the baseline, as in the plain run)

    from pipeline.options import TranscribeOptions
    from pipeline.transcription.engine import transcribe_audio
    from pipeline.transcription.whisper_engines import FasterWhisperEngine
    from pipeline.types import CancelToken

    with PeakRss() as rss:
        engine = FasterWhisperEngine(MODEL, compute_type=compute_type)
        options = TranscribeOptions(beam_size=beam_size, word_timestamps=word_timestamps)
        with timer() as elapsed:
            result = transcribe_audio(audio, engine, options, lambda *_: None, CancelToken())
    return {
        "load_s": engine.load_time_s,
        "seconds": elapsed[0],
        "rtf": elapsed[0] / result.duration_s,
        "wer": wer(reference, result.text),
        "peak_mb": rss.peak_mb,
        "baseline_mb": rss.baseline_mb,
        "audio_s": result.duration_s,
    }


def measure_plain_faster_whisper(audio: str) -> dict[str, Any]:
    """faster-whisper as documented: the whole file decoded and featurised up front."""
    from faster_whisper import WhisperModel

    from pipeline.transcription.whisper_engines import default_cpu_threads
    from pipeline.transcription.whisper_models import resolve_faster_whisper_model

    with PeakRss() as rss:
        model = WhisperModel(
            resolve_faster_whisper_model(MODEL),
            compute_type="int8",
            cpu_threads=default_cpu_threads(),
        )
        with timer() as elapsed:
            segments, info = model.transcribe(
                audio, beam_size=1, word_timestamps=True, vad_filter=True,
                condition_on_previous_text=False,
            )  # fmt: skip
            text = " ".join(segment.text for segment in segments)
    return {
        "seconds": elapsed[0],
        "peak_mb": rss.peak_mb,
        "baseline_mb": rss.baseline_mb,
        "chars": len(text),
        "audio_s": info.duration,
    }


def measure_decode(audio: str, windowed: bool) -> dict[str, Any]:
    from faster_whisper.audio import decode_audio

    from pipeline.media.audio_windows import iter_audio_windows
    from pipeline.transcription.whisper_engines import FASTER_WHISPER_WINDOW_S

    with PeakRss() as rss, timer() as elapsed:
        if windowed:
            samples = sum(
                len(w.samples) for w in iter_audio_windows(Path(audio), FASTER_WHISPER_WINDOW_S)
            )
        else:
            samples = len(decode_audio(audio))
    return {
        "seconds": elapsed[0],
        "peak_mb": rss.peak_mb,
        "baseline_mb": rss.baseline_mb,
        "audio_s": samples / 16000,
    }


def measure_concurrency(audio: str, reference: str, mode: str) -> dict[str, Any]:
    from pipeline.options import TranscribeOptions
    from pipeline.results import TranscriptResult
    from pipeline.transcription.whisper_engines import FasterWhisperEngine
    from pipeline.types import CancelToken

    if mode == "sequential":
        engine = FasterWhisperEngine(MODEL)
        threads = 1
    elif mode == "threads":
        engine = FasterWhisperEngine(MODEL, num_workers=CONCURRENT_JOBS)
        threads = CONCURRENT_JOBS
    elif mode == "threads-1cpu":
        engine = FasterWhisperEngine(MODEL, num_workers=CONCURRENT_JOBS, cpu_threads=1)
        threads = CONCURRENT_JOBS
    elif mode == "batched":
        engine = FasterWhisperEngine(MODEL, batch_size=8)
        threads = 1
    elif mode == "batched-threads":
        engine = FasterWhisperEngine(MODEL, batch_size=8, num_workers=CONCURRENT_JOBS)
        threads = CONCURRENT_JOBS
    else:
        raise ValueError(mode)
    options = TranscribeOptions()
    results: list[TranscriptResult] = []
    lock = threading.Lock()
    queue = list(range(CONCURRENT_JOBS))

    def worker() -> None:
        while True:
            with lock:
                if not queue:
                    return
                queue.pop()
            result = engine.transcribe(Path(audio), options, lambda *_: None, CancelToken())
            with lock:
                results.append(result)

    with PeakRss() as rss, timer() as elapsed:
        pool = [threading.Thread(target=worker) for _ in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
    audio_s = sum(result.duration_s for result in results)
    return {
        "seconds": elapsed[0],
        "throughput": audio_s / elapsed[0],
        "wer": max(wer(reference, result.text) for result in results),
        "peak_mb": rss.peak_mb,
    }


# ----------------------------------------------------------------------------- report
def section_settings(audio: Path, reference: str, *, every: bool) -> list[dict[str, Any]]:
    print("## 1. Engine settings (one transcription of the whole file each)\n")
    print("| setting | load s | transcribe s | real-time factor | WER | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    settings = [
        ("int8", 1, True),
        ("int8", 1, False),
        ("int8", 5, True),
        ("float32", 1, True),
        ("float32", 5, True),
    ]
    rows = []
    for compute_type, beam, words in settings if every else settings[:1]:
        row = in_fresh_process(measure_setting, str(audio), reference, compute_type, beam, words)
        rows.append(row)
        label = f"{compute_type}, beam {beam}" + ("" if words else ", no word timestamps")
        print(
            f"| {label} | {row['load_s']:.2f} | {row['seconds']:.1f} | {row['rtf']:.3f} | "
            f"{row['wer']:.1%} | {row['peak_mb']:.0f} |",
            flush=True,
        )
    return rows


def section_memory(
    tmp: Path, audio: Path, ours: dict[str, Any], clip_s: float, long_hours: float
) -> None:
    from pipeline.transcription.whisper_engines import FASTER_WHISPER_WINDOW_S

    print("\n## 2. Memory on long input\n")
    print("| what | seconds | peak RSS MB | above process start MB |")
    print("|---|---|---|---|")
    plain = in_fresh_process(measure_plain_faster_whisper, str(audio))
    window = f"{FASTER_WHISPER_WINDOW_S:.0f} s windows"
    for label, row in [
        (f"vpa engine ({window}), {ours['audio_s']:.0f} s file", ours),
        (f"plain WhisperModel.transcribe(path), {plain['audio_s']:.0f} s file", plain),
    ]:
        print(
            f"| {label} | {row['seconds']:.1f} | {row['peak_mb']:.0f} | "
            f"{row['peak_mb'] - row['baseline_mb']:.0f} |",
            flush=True,
        )
    if long_hours <= 0:
        return
    hours_loops = max(1, math.ceil(long_hours * 3600 / clip_s))
    hours_audio = looped(tmp / "speech_hours.ogg", hours_loops, copy=True)
    for windowed in (True, False):
        row = in_fresh_process(measure_decode, str(hours_audio), windowed)
        what = f"iter_audio_windows ({window})" if windowed else "faster_whisper.decode_audio"
        print(
            f"| decode {row['audio_s'] / 3600:.2f} h with {what} | {row['seconds']:.1f} | "
            f"{row['peak_mb']:.0f} | {row['peak_mb'] - row['baseline_mb']:.0f} |",
            flush=True,
        )


def section_concurrency(audio: Path, reference: str, *, smoke: bool = False) -> None:
    job_s = probe(audio).duration_s or 0.0
    print(f"\n## 3. {CONCURRENT_JOBS} concurrent transcriptions of a {job_s:.0f} s file\n")
    print("| mode | wall s | audio s per s | vs sequential | worst WER | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    modes = [
        ("sequential", "one after another, num_workers=1"),
        ("threads", f"{CONCURRENT_JOBS} threads, one model, num_workers={CONCURRENT_JOBS}"),
        ("threads-1cpu", "the same with cpu_threads=1 per worker"),
        ("batched", "BatchedInferencePipeline batch_size=8, jobs one after another"),
        ("batched-threads", f"the same, {CONCURRENT_JOBS} threads, num_workers={CONCURRENT_JOBS}"),
    ]
    baseline = None
    figures: dict[str, float] = {}
    for mode, label in modes[:2] if smoke else modes:
        row = in_fresh_process(measure_concurrency, str(audio), reference, mode)
        baseline = baseline or row["throughput"]
        figures[mode] = row["throughput"]
        print(
            f"| {label} | {row['seconds']:.1f} | {row['throughput']:.1f} | "
            f"{row['throughput'] / baseline:.2f}x | {row['wer']:.1%} | {row['peak_mb']:.0f} |",
            flush=True,
        )
    if smoke:
        return
    best_threads = max(figures["threads"], figures["threads-1cpu"])
    best_batched = max(figures["batched"], figures["batched-threads"])
    print(f"\nbatched ÷ shared-model threads throughput: {best_batched / best_threads:.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the speech file")
    parser.add_argument("--clip-s", type=float, default=150.0, help="audio per concurrent job")
    parser.add_argument("--long-hours", type=float, default=2.0, help="0 skips the decode test")
    parser.add_argument("--sections", default="1,2,3,4", help="which figures, e.g. 1,4")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="every table, fewest rows: the clip once, 0.01 h to decode, first setting only, "
        "sequential and threads only",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.minutes, args.clip_s, args.long_hours = 0.0, 0.0, 0.01
    sections = {int(part) for part in args.sections.split(",") if part.strip()}

    clip_s = probe(SPEECH).duration_s or 23.0
    text = speech_text()
    import ctranslate2
    import faster_whisper

    print(f"# Transcription figures (bench/transcribe.py {' '.join(argv or sys.argv[1:])})\n")
    print(
        f"- machine: {os.cpu_count()} cores, Linux {platform.release()}, Python "
        f"{platform.python_version()}; load average at start "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    print(
        f"- faster-whisper {faster_whisper.__version__}, ctranslate2 {ctranslate2.__version__}, "
        f"model {MODEL} (bundled); default options: VAD on, word timestamps on, temperature "
        "fallback 0.0..1.0, condition_on_previous_text off"
    )

    with tempfile.TemporaryDirectory(prefix="vpa-bench-") as tmp:
        loops = max(1, math.ceil(args.minutes * 60 / clip_s))
        long_audio = looped(Path(tmp) / "speech_long.wav", loops)
        reference = " ".join([text] * loops)
        duration_s = probe(long_audio).duration_s or 0.0
        print(f"- speech file: the {clip_s:.1f} s clip x {loops} = {duration_s:.0f} s\n")
        rows: list[dict[str, Any]] = []
        if sections & {1, 2}:
            rows = section_settings(long_audio, reference, every=1 in sections and not args.smoke)
        if 2 in sections:
            section_memory(Path(tmp), long_audio, rows[0], clip_s, args.long_hours)
        if 3 in sections:
            job_loops = max(1, round(args.clip_s / clip_s))
            job_audio = looped(Path(tmp) / "speech_job.wav", job_loops)
            section_concurrency(job_audio, " ".join([text] * job_loops), smoke=args.smoke)
        if 4 in sections:
            section_presets(Path(tmp), smoke=args.smoke)
    print(f"\nload average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
