"""The full_processing `subtitles` stage: the whole video with the transcript as a track."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pipeline.errors import MediaError
from pipeline.media.ffmpeg import ffmpeg_exe
from pipeline.media.probe import probe
from pipeline.media.soft_subtitles import mux_subtitles
from pipeline.types import CancelToken
from tests.fixtures.media import make_video

SRT = "1\n00:00:00,100 --> 00:00:00,900\nHello there.\n\n2\n00:00:01,000 --> 00:00:01,400\nBye.\n"


def _streams(path: Path) -> str:
    return subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True
    ).stderr


@pytest.mark.parametrize(
    ("container", "expected", "codec"), [("mp4", "mp4", "mov_text"), ("webm", "mkv", "subrip")]
)
def test_subtitle_track_added_without_reencoding(
    tmp_path: Path, container: str, expected: str, codec: str
) -> None:
    source = make_video(tmp_path / f"src.{container}", duration_s=1.5, container=container)
    srt = tmp_path / "transcript.srt"
    srt.write_text(SRT, encoding="utf-8")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    result = mux_subtitles(source, srt, out_dir, "en", lambda f, m: None, CancelToken())
    assert result.container == expected and Path(result.path).suffix == f".{expected}"
    streams = _streams(Path(result.path))
    assert f"Subtitle: {codec}" in streams and "(eng)" in streams, streams
    src, out = probe(source), probe(result.path)
    assert (out.video_codec, out.audio_codec) == (src.video_codec, src.audio_codec)  # copied
    assert out.has_video and out.has_audio


def test_failure_leaves_nothing(tmp_path: Path) -> None:
    source = make_video(tmp_path / "src.mp4", duration_s=1.0)
    bad = tmp_path / "transcript.srt"
    bad.write_bytes(b"\x00\x01 not subtitles")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(MediaError):
        mux_subtitles(source, bad, out_dir, None, lambda f, m: None, CancelToken())
    assert list(out_dir.iterdir()) == []
