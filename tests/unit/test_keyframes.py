"""Keyframes and the H.264 stream parameters read with PyAV from files the real ffmpeg made:
where a stream copy can begin in each container, open and closed groups of pictures,
cancellation, and each way a file is refused."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import pytest

from pipeline.clips import keyframes
from pipeline.clips.keyframes import H264Stream, h264_stream, keyframe_times
from pipeline.errors import MediaError, StageCancelled
from pipeline.media.ffmpeg import ffmpeg_exe
from pipeline.types import CancelToken
from tests.fixtures.media import make_audio_only, make_not_media, make_video

EVERY_2_S = [0.0, 2.0, 4.0]


def _ffmpeg(*args: str) -> None:
    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y", *args],
        check=True,
        timeout=120,
    )


def _testsrc(duration_s: float) -> list[str]:
    return ["-f", "lavfi", "-i", f"testsrc2=size=160x120:rate=25:duration={duration_s}"]


@dataclass(frozen=True)
class Media:
    gop: Path  # h264 with B-frames, an IDR every 2 s (50 frames), 6 s
    root: Path

    def remux(self, suffix: str) -> Path:
        out = self.root / f"gop{suffix}"
        if not out.exists():
            _ffmpeg("-i", str(self.gop), "-c", "copy", str(out))
        return out


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Media:
    root = tmp_path_factory.mktemp("keyframes")
    gop = root / "gop.mp4"
    _ffmpeg(*_testsrc(6), "-c:v", "libx264", "-preset", "veryfast", "-bf", "2",
            "-g", "50", "-keyint_min", "50", "-sc_threshold", "0", str(gop))  # fmt: skip
    return Media(gop=gop, root=root)


# ----------------------------------------------------------------------------- keyframes


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".mov", ".ts", ".flv"])
def test_keyframes_in_every_container(media: Media, suffix: str) -> None:
    # MPEG-TS starts its clock at 1.4 s and stores Annex B start codes; Matroska has no
    # decoding times: the times still count from the start of the file
    assert keyframe_times(media.remux(suffix)) == pytest.approx(EVERY_2_S)


def test_an_open_gop_h264_offers_only_its_idr_pictures(tmp_path: Path) -> None:
    # x264's open GOPs: every 2 s an I picture flagged as a keyframe, but only the first is
    # an IDR (a decoder starting at the others shows broken leading B pictures)
    video = tmp_path / "open.mp4"
    params = "open-gop=1:keyint=50:min-keyint=50:scenecut=0"
    _ffmpeg(*_testsrc(6), "-c:v", "libx264", "-preset", "veryfast", "-x264-params", params,
            str(video))  # fmt: skip
    with av.open(str(video)) as container:
        flagged = [p.pts for p in container.demux(video=0) if p.size and p.is_keyframe]
    assert len(flagged) == 3
    assert keyframe_times(video) == [0.0]


@pytest.mark.parametrize("closed", [False, True])
def test_other_codecs_leave_out_groups_that_show_a_picture_early(
    tmp_path: Path, closed: bool
) -> None:
    # MPEG-2 groups are open unless asked: their first B pictures show before the I picture
    video = tmp_path / "mpeg2.ts"
    flags = ["-flags", "+cgop", "-sc_threshold", "1000000000"] if closed else []
    _ffmpeg(*_testsrc(3), "-c:v", "mpeg2video", "-g", "30", "-bf", "2", *flags, str(video))
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        start, time_base = (container.start_time or 0) / 1e6, stream.time_base or Fraction(1)
        flagged = [
            float((p.pts or 0) * time_base) - start
            for p in container.demux(stream)
            if p.size and p.is_keyframe
        ]
    assert len(flagged) == 3
    expected = flagged if closed else flagged[:1]
    assert keyframe_times(video) == pytest.approx(expected, abs=1e-6)


def test_a_truncated_download_lists_the_keyframes_before_the_cut(media: Media) -> None:
    whole = media.root / "faststart.mp4"  # the index first, so the head of it opens
    _ffmpeg("-i", str(media.gop), "-c", "copy", "-movflags", "+faststart", str(whole))
    truncated = media.root / "faststart_truncated.mp4"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size * 3 // 4])
    times = keyframe_times(truncated)
    assert times == pytest.approx(EVERY_2_S[: len(times)]) and len(times) >= 2


def test_cancel_before_listing(media: Media) -> None:
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(StageCancelled):
        keyframe_times(media.gop, cancel)


class _CancelAfter(CancelToken):
    """Cancelled from the `checks`-th look on: the listing stops between two packets."""

    def __init__(self, checks: int) -> None:
        super().__init__()
        self.checks = 0
        self.limit = checks

    @property
    def cancelled(self) -> bool:
        self.checks += 1
        return self.checks >= self.limit


def test_cancel_between_packets(media: Media) -> None:
    cancel = _CancelAfter(20)
    with pytest.raises(StageCancelled, match="Cancelled while reading the video packets"):
        keyframe_times(media.gop, cancel)
    assert cancel.checks == 20  # it stopped at once, 130 packets before the end


@pytest.mark.parametrize(
    ("name", "code", "words"),
    [
        ("absent.mp4", "file_missing", "The file absent.mp4 does not exist"),
        ("random.mp4", "not_media", "random.mp4 is not a video or audio file"),
        ("audio.m4a", "no_video_stream", "audio.m4a has no video track"),
        ("empty.mp4", "not_media", "empty.mp4 is empty"),
    ],
)
def test_keyframes_of_files_that_cannot_give_any(
    tmp_path: Path, name: str, code: str, words: str
) -> None:
    make_not_media(tmp_path / "random.mp4")
    make_audio_only(tmp_path / "audio.m4a")
    (tmp_path / "empty.mp4").touch()
    for read in (keyframe_times, h264_stream):
        with pytest.raises(MediaError, match=words) as caught:
            read(tmp_path / name)
        assert caught.value.code == code


# ----------------------------------------------------------------------------- read errors


@dataclass
class _FakePacket:
    is_keyframe: bool
    size: int = 10


class _FakeContainer:
    def __init__(self, packets: list[_FakePacket]) -> None:
        self.packets = packets

    def demux(self, stream: Any) -> Iterator[_FakePacket]:
        yield from self.packets
        raise av.error.InvalidDataError(1094995529, "Invalid data found when processing input")


def test_a_read_error_after_the_first_keyframe_ends_the_list() -> None:
    container = _FakeContainer([_FakePacket(False), _FakePacket(True), _FakePacket(False)])
    read = list(keyframes._packets_from_first_keyframe(container, None, None))
    assert [p.is_keyframe for p in read] == [True, False]  # the leading non-key one dropped


def test_a_read_error_before_any_keyframe_is_a_corrupt_file(
    media: Media, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = keyframes._packets_from_first_keyframe

    def broken(container: Any, stream: Any, cancel: Any) -> Iterator[Any]:
        yield from real(_FakeContainer([]), stream, cancel)

    monkeypatch.setattr(keyframes, "_packets_from_first_keyframe", broken)
    with pytest.raises(MediaError, match=r"gop\.mp4 is truncated or corrupt") as caught:
        keyframe_times(media.gop)
    assert caught.value.code == "corrupt_media"


# ----------------------------------------------------------------------------- H.264 stream


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".ts"])
def test_h264_stream_with_b_frames(media: Media, suffix: str) -> None:
    # mp4 and MPEG-TS say the delay in their timestamps, Matroska through the decoder;
    # MPEG-TS carries the SPS in Annex B form
    stream = h264_stream(media.remux(suffix))
    assert stream == H264Stream(profile_idc=100, level_idc=11, reorder_delay_frames=2)
    assert (stream.x264_profile, stream.level) == ("high", "1.1")


def test_h264_stream_without_b_frames(tmp_path: Path) -> None:
    stream = h264_stream(make_video(tmp_path / "baseline.mp4", with_audio=False))
    assert stream == H264Stream(profile_idc=66, level_idc=11, reorder_delay_frames=0)


def test_h264_stream_from_the_first_packet_when_the_codec_parameters_lack_it(
    media: Media, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an MPEG-TS keeps its SPS in the packets; without extradata it is found there
    monkeypatch.setattr(keyframes, "_extradata_sps", lambda extradata: None)
    assert h264_stream(media.remux(".ts"), CancelToken()).profile_idc == 100
    keyframes._stream_cache.clear()


def test_h264_stream_is_read_once_per_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    video = make_video(tmp_path / "once.mp4", with_audio=False)
    opened: list[Path] = []
    real_open = keyframes.open_media

    def counting_open(path: Path, timeout_s: float = 60.0) -> Any:
        opened.append(path)
        return real_open(path, timeout_s)

    monkeypatch.setattr(keyframes, "open_media", counting_open)
    assert h264_stream(video) == h264_stream(video)
    assert opened == [video]
    copy = Path(shutil.copy(video, tmp_path / "copy.mp4"))
    h264_stream(copy)  # another file: read again
    assert opened == [video, copy]


def test_h264_stream_of_another_codec_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match=r"v\.webm is vp8, not H\.264"):
        h264_stream(make_video(tmp_path / "v.webm", container="webm"))


def test_h264_stream_cancelled(media: Media) -> None:
    keyframes._stream_cache.clear()
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(StageCancelled):
        h264_stream(media.remux(".mkv"), cancel)


# ----------------------------------------------------------------------------- bytes


def test_nal_units_length_prefixed_and_annex_b() -> None:
    sps, pps, idr = b"\x67\x64\x00\x0d", b"\x68\xee", b"\x65\x88\x84\x21"
    prefixed = b"".join(len(n).to_bytes(4, "big") + n for n in (sps, pps, idr))
    assert [bytes(n) for n in keyframes._nal_units(prefixed, 4)] == [sps, pps, idr]
    # a length running past the end stops the walk
    assert [bytes(n) for n in keyframes._nal_units(prefixed + b"\x00\x00\x00\x09\x65", 4)] == [
        sps,
        pps,
        idr,
    ]
    annex_b = b"\x00\x00\x00\x01" + sps + b"\x00\x00\x01" + pps + b"\x00\x00\x01" + idr
    assert [bytes(n) for n in keyframes._nal_units(annex_b, 0)] == [sps, pps, idr]
    assert keyframes._nal_types(annex_b, 0) == {7, 8, 5}
    assert keyframes._first_sps(prefixed, 4) == sps
    assert keyframes._first_sps(b"\x00\x00\x01" + idr, 0) is None


def test_sps_from_avcc_extradata() -> None:
    sps = b"\x67\x64\x00\x1f\xac"
    avcc = b"\x01\x64\x00\x1f\xff\xe1" + len(sps).to_bytes(2, "big") + sps + b"\x01\x00\x02\x68"
    assert keyframes._extradata_sps(avcc) == sps
    assert keyframes._nal_length_size(type("Context", (), {"extradata": avcc})()) == 4
    no_sps = b"\x01\x64\x00\x1f\xff\xe0\x00\x00"
    assert keyframes._extradata_sps(no_sps) is None
    assert keyframes._extradata_sps(b"\x00\x00\x01" + sps) == sps  # Annex B extradata


def test_start_time_rounds_like_ffmpeg() -> None:
    # av_rescale_q rounds half away from zero
    assert keyframes._rescale(1_400_000, Fraction(1, 90000)) == 126000
    assert keyframes._rescale(15, Fraction(1, 100_000)) == 2  # 1.5 ticks
    assert keyframes._rescale(-15, Fraction(1, 100_000)) == -2
