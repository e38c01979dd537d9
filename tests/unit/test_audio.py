"""extract_audio: every format and quality, bad inputs, cancellation, with the real ffmpeg."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from pipeline.errors import MediaError, StageCancelled
from pipeline.media.audio import QUALITY_PRESETS, extract_audio
from pipeline.media.probe import probe
from pipeline.options import AudioFormat, AudioOptions, AudioQuality
from pipeline.types import CancelToken
from tests.fixtures.media import SampleMedia, make_audio_only, make_truncated, make_video

CODECS = {"wav": "pcm_s16le", "mp3": "mp3", "flac": "flac"}


class Progress:
    def __init__(self) -> None:
        self.calls: list[tuple[float, str]] = []

    def __call__(self, fraction: float, message: str) -> None:
        self.calls.append((fraction, message))


@pytest.mark.parametrize("quality", ["low", "medium", "high"])
@pytest.mark.parametrize("audio_format", ["wav", "mp3", "flac"])
def test_formats_and_qualities(
    sample_media: SampleMedia, tmp_path: Path, audio_format: AudioFormat, quality: AudioQuality
) -> None:
    preset = QUALITY_PRESETS[quality]
    options = AudioOptions(audio_format=audio_format, audio_quality=quality)
    result = extract_audio(
        sample_media.path("clip.mp4"), tmp_path, options, Progress(), CancelToken()
    )
    assert Path(result.path) == tmp_path / f"audio.{audio_format}"
    assert [p.name for p in tmp_path.iterdir()] == [f"audio.{audio_format}"]
    info = probe(result.path)
    assert not info.has_video
    assert info.audio_codec == CODECS[audio_format]
    assert info.audio_sample_rate_hz == result.sample_rate_hz == preset.sample_rate_hz
    assert info.audio_channels == result.channels == preset.max_channels  # the source is stereo
    assert result.duration_s == pytest.approx(1.0, abs=0.1)
    assert result.size_bytes == Path(result.path).stat().st_size
    assert result.audio_format == audio_format
    if audio_format == "mp3":
        assert result.bitrate_kbps == preset.mp3_bitrate_kbps
    elif audio_format == "wav":
        assert result.bitrate_kbps == preset.sample_rate_hz * preset.max_channels * 16 // 1000
    else:
        assert result.bitrate_kbps is None


def test_mono_source_stays_mono(tmp_path: Path) -> None:
    src = make_audio_only(tmp_path / "mono.m4a", channels=1)
    out = tmp_path / "out"
    result = extract_audio(src, out, AudioOptions("wav", "high"), Progress(), CancelToken())
    assert (result.channels, result.sample_rate_hz) == (1, 48000)


def test_other_containers(tmp_path: Path) -> None:
    src = make_video(tmp_path / "v.webm", container="webm")
    result = extract_audio(src, tmp_path / "out", AudioOptions(), Progress(), CancelToken())
    assert probe(result.path).audio_codec == "pcm_s16le"


def test_progress_increases_to_one(sample_media: SampleMedia, tmp_path: Path) -> None:
    progress = Progress()
    extract_audio(
        sample_media.path("long.mp4"), tmp_path, AudioOptions("mp3", "low"), progress, CancelToken()
    )
    fractions = [fraction for fraction, _ in progress.calls]
    assert fractions == sorted(fractions)
    assert fractions[-1] == 1.0
    assert progress.calls[-1][1].startswith("extracting audio: ")


def test_existing_output_is_replaced(sample_media: SampleMedia, tmp_path: Path) -> None:
    (tmp_path / "audio.wav").write_bytes(b"stale")
    result = extract_audio(
        sample_media.path("clip.mp4"), tmp_path, AudioOptions(), Progress(), CancelToken()
    )
    assert probe(result.path).has_audio


def test_video_without_audio(sample_media: SampleMedia, tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="The video has no audio track") as caught:
        extract_audio(
            sample_media.path("silent.mp4"), tmp_path, AudioOptions(), Progress(), CancelToken()
        )
    assert (caught.value.code, caught.value.retryable) == ("no_audio", False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "code"), [("notmedia.mp4", "not_media"), ("truncated.mp4", "corrupt_media")]
)
def test_unusable_input(sample_media: SampleMedia, tmp_path: Path, name: str, code: str) -> None:
    with pytest.raises(MediaError) as caught:
        extract_audio(sample_media.path(name), tmp_path, AudioOptions(), Progress(), CancelToken())
    assert caught.value.code == code
    assert list(tmp_path.iterdir()) == []


def test_truncated_input_that_still_opens(tmp_path: Path) -> None:
    # with the index first, half a file opens fine and only runs dry while decoding
    whole = make_video(tmp_path / "whole.mp4", duration_s=2.0, faststart=True)
    half = make_truncated(whole, tmp_path / "half.mp4")
    out = tmp_path / "out"
    with pytest.raises(MediaError, match="truncated") as caught:
        extract_audio(half, out, AudioOptions(), Progress(), CancelToken())
    assert caught.value.code == "corrupt_media"
    assert list(out.iterdir()) == []


def test_cancel_mid_extraction(sample_media: SampleMedia, tmp_path: Path) -> None:
    # 30 minutes of audio to mp3 at 320 kbps takes seconds: we cancel at the first report
    cancel = CancelToken()
    progress = Progress()

    def cancel_on_first_report(fraction: float, message: str) -> None:
        progress(fraction, message)
        cancel.cancel()

    with pytest.raises(StageCancelled):
        extract_audio(
            sample_media.long_silence,
            tmp_path,
            AudioOptions("mp3", "high"),
            cancel_on_first_report,
            cancel,
        )
    assert progress.calls and progress.calls[-1][0] < 0.5
    assert list(tmp_path.iterdir()) == []


def test_cancel_from_another_thread(endless_silence: Path, tmp_path: Path) -> None:
    # weeks of audio: the extraction cannot end before the cancel, however fast the machine
    cancel = CancelToken()
    threading.Timer(0.3, cancel.cancel).start()
    with pytest.raises(StageCancelled):
        extract_audio(endless_silence, tmp_path, AudioOptions("mp3", "low"), Progress(), cancel)
    assert list(tmp_path.iterdir()) == []


def test_cancel_before_start(sample_media: SampleMedia, tmp_path: Path) -> None:
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(StageCancelled):
        extract_audio(sample_media.path("clip.mp4"), tmp_path, AudioOptions(), Progress(), cancel)
    assert list(tmp_path.iterdir()) == []
