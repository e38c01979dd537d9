"""Section 4 of bench/transcribe.py: the transcription presets (`transcription_preset`
fast = beam 1, accurate = beam 5, the default) on unseen passages (bench/passages.py: five
espeak-ng voices, about 30 s each), with the service's default options otherwise.

Word error rate here is scored the way Whisper's papers and the Open ASR leaderboard score
it: both texts through openai-whisper's `EnglishTextNormalizer` (case, punctuation, numbers,
British/American spellings: "harbour" = "harbor"), then jiwer. Each preset runs in a fresh
process (model load excluded from the real-time factor, audio decoding included).
"""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from bench.passages import Passage, median, passages

MODEL = "tiny.en"
PRESETS = (("fast", 1), ("accurate", 5))


def normalised_wer(reference: str, hypothesis: str) -> float:
    import jiwer
    from whisper.normalizers import EnglishTextNormalizer

    normalise = EnglishTextNormalizer()
    return float(jiwer.wer(normalise(reference), normalise(hypothesis) or "<empty>"))


def measure_preset(rows: list[tuple[str, str]], beam_size: int) -> dict[str, Any]:
    """Transcribe each (path, text) with one model; WER and seconds per passage."""
    from pipeline.options import TranscribeOptions
    from pipeline.transcription.engine import transcribe_audio
    from pipeline.transcription.whisper_engines import FasterWhisperEngine
    from pipeline.types import CancelToken

    engine = FasterWhisperEngine(MODEL, compute_type="int8")
    options = TranscribeOptions(beam_size=beam_size)
    wers, seconds, audio_s = [], [], []
    for path, text in rows:
        started = time.perf_counter()
        result = transcribe_audio(path, engine, options, lambda *_: None, CancelToken())
        seconds.append(time.perf_counter() - started)
        audio_s.append(result.duration_s)
        wers.append(normalised_wer(text, result.text))
    return {"wer": wers, "seconds": seconds, "audio_s": audio_s}


def _fresh(rows: list[tuple[str, str]], beam_size: int) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(measure_preset, rows, beam_size).result()


def section_presets(tmp: Path, *, smoke: bool = False) -> dict[str, dict[str, Any]]:
    """Print the presets table; returns the figures per preset."""
    print("\n## 4. Presets on unseen passages (the default options otherwise)\n")
    spoken: list[Passage] = passages(tmp / "passages", count=1 if smoke else None)
    rows = [(str(p.path), p.text) for p in spoken]
    figures = {name: _fresh(rows, beam) for name, beam in PRESETS}
    print("| passage | voice | audio s | fast WER (beam 1) | accurate WER (beam 5, default) |")
    print("|---|---|---|---|---|")
    for i, passage in enumerate(spoken):
        print(
            f"| {passage.name} | {passage.voice} | {figures['fast']['audio_s'][i]:.0f} | "
            f"{figures['fast']['wer'][i]:.1%} | {figures['accurate']['wer'][i]:.1%} |"
        )
    fast, accurate = (median(figures[name]["wer"]) for name in ("fast", "accurate"))
    print(f"| **median WER** | | | **{fast:.1%}** | **{accurate:.1%}** |")
    rtf = {name: sum(f["seconds"]) / sum(f["audio_s"]) for name, f in figures.items()}
    print(f"| **real-time factor** | | | **{rtf['fast']:.3f}** | **{rtf['accurate']:.3f}** |")
    return figures
