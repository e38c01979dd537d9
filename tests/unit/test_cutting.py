"""Cutting clips with the real ffmpeg: frame accuracy of each method, sizes, formats,
captions, thumbnails, and that failures and cancels leave nothing behind.

The main source has a keyframe every 2 s (GOP 50 at 25 fps) and B-frames, so a cut between
keyframes really goes through the smart path's head, copied middle and tail. Its audio beeps
at the start of every second, which pins audio/video sync down to a few milliseconds.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from pipeline.clips.cutting import CutOptions, CutResult, cut_clip, output_size, snap_to_frames
from pipeline.clips.keyframes import ffconcat_listing, keyframe_times, plan_smart
from pipeline.clips.thumbnails import make_thumbnail
from pipeline.clips.video_filters import filter_value
from pipeline.errors import MediaError, StageCancelled
from pipeline.media.ffmpeg import ffmpeg_exe
from pipeline.media.probe import probe
from pipeline.types import CancelToken
from tests.fixtures.media import make_audio_only, make_not_media, make_video

FPS = 25
FRAME_S = 1 / FPS
GRAY_W, GRAY_H = 80, 60
BEEP = "0.5*sin(2*PI*440*t)*lt(mod(t\\,1)\\,0.1)"  # 0.1 s of tone at every whole second


def _ffmpeg(*args: str) -> bytes:
    return subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args],
        check=True,
        capture_output=True,
        timeout=120,
    ).stdout


def make_gop_video(path: Path, *, duration_s: float, size: str, with_audio: bool) -> Path:
    """h264 (B-frames) with a keyframe exactly every 2 s; AAC beeps at each whole second."""
    args = ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={FPS}:duration={duration_s}"]
    if with_audio:
        args += ["-f", "lavfi", "-i", f"aevalsrc=exprs={BEEP}:s=44100:d={duration_s}"]
        args += ["-c:a", "aac", "-b:a", "64k", "-ac", "2"]
    args += ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"]
    args += ["-g", "50", "-keyint_min", "50", "-sc_threshold", "0"]
    _ffmpeg(*args, str(path))
    return path


def gray_frames(path: str | Path) -> np.ndarray:
    """Every decoded frame (no duplicates or drops), as small gray images."""
    raw = _ffmpeg(
        "-i", str(path), "-map", "0:v:0", "-fps_mode", "passthrough",
        "-vf", f"scale={GRAY_W}:{GRAY_H}", "-f", "rawvideo", "-pix_fmt", "gray", "-",
    )  # fmt: skip
    return np.frombuffer(raw, np.uint8).reshape(-1, GRAY_H, GRAY_W).astype(np.float32)


def audio_track(path: str | Path, rate_hz: int = 8000) -> np.ndarray:
    raw = _ffmpeg("-i", str(path), "-map", "0:a:0", "-ac", "1", "-ar", str(rate_hz),
                  "-f", "s16le", "-")  # fmt: skip
    return np.frombuffer(raw, np.int16).astype(np.float32)


def decode_errors(path: str | Path) -> str:
    return subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-i", str(path), "-f", "null",
         "-"],
        capture_output=True, text=True, timeout=120, check=False,
    ).stderr.strip()  # fmt: skip


def nearest_frame(frame: np.ndarray, frames: np.ndarray) -> int:
    return int(np.abs(frames - frame).mean(axis=(1, 2)).argmin())


@dataclass(frozen=True)
class Media:
    root: Path
    source: Path  # 12 s, 320x240, keyframes at 0, 2, 4, ... 10 s, with audio
    silent: Path  # the same picture, 6 s, no audio
    large: Path  # 3 s, 640x480
    audio_only: Path
    not_media: Path
    frames: np.ndarray  # every frame of `source`


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Media:
    root = tmp_path_factory.mktemp("cutting-media")
    source = make_gop_video(root / "source.mp4", duration_s=12, size="320x240", with_audio=True)
    return Media(
        root=root,
        source=source,
        silent=make_gop_video(root / "silent.mp4", duration_s=6, size="320x240", with_audio=False),
        large=make_video(root / "large.mp4", duration_s=3.0, size="640x480", with_audio=True),
        audio_only=make_audio_only(root / "audio.m4a", duration_s=2.0),
        not_media=make_not_media(root / "not_media.mp4"),
        frames=gray_frames(source),
    )


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "clips"
    directory.mkdir()
    return directory


def cut(
    source: Path, start: float, end: float, out: Path, options: CutOptions | None = None
) -> CutResult:
    return cut_clip(source, start, end, out, options or CutOptions(), _no_progress, CancelToken())


def _no_progress(fraction: float, message: str) -> None:
    pass


def assert_frame_accurate(result: CutResult, media: Media) -> None:
    frames = gray_frames(result.path)
    first = round(result.start_s * FPS)
    expected = round((result.end_s - result.start_s) * FPS)
    assert abs(len(frames) - expected) <= 1
    assert abs(result.duration_s - (result.end_s - result.start_s)) <= FRAME_S + 1e-6
    # the first frame is the source's frame at start, not its neighbours (the motion of
    # testsrc2 makes adjacent frames differ), and so is every frame after it
    diffs = [np.abs(media.frames[first + k] - frames[0]).mean() for k in (-1, 0, 1)]
    assert diffs[1] < 0.25 * min(diffs[0], diffs[2])
    assert [nearest_frame(f, media.frames) - first for f in frames] == list(range(len(frames)))
    assert decode_errors(result.path) == ""


# ----------------------------------------------------------------------------- pure


@pytest.mark.parametrize(
    ("start", "end", "fps", "duration", "expected"),
    [
        (3.01, 9.53, 25.0, 12.0, (3.0, 9.52)),
        (3.03, 9.51, 25.0, 12.0, (3.04, 9.52)),
        (-1.0, 20.0, 25.0, 12.0, (0.0, 12.0)),
        (5.0, 5.001, 25.0, 12.0, (5.0, 5.04)),  # at least one frame
        (11.99, 12.5, 25.0, 12.0, (11.96, 12.0)),  # the last frame still fits
        (1.0, 2.0, 29.97, None, (30 * 1001 / 30000, 60 * 1001 / 30000)),
        (1.234, 2.5, None, 2.0, (1.234, 2.0)),  # no frame rate: clamped only
    ],
)
def test_snap_to_frames(
    start: float,
    end: float,
    fps: float | None,
    duration: float | None,
    expected: tuple[float, float],
) -> None:
    assert snap_to_frames(start, end, fps, duration) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(
    ("src", "resolution", "aspect", "expected"),
    [
        ((1920, 1080), "720p", "source", (1280, 720)),
        ((1920, 1080), "source", "source", (1920, 1080)),
        ((320, 240), "720p", "source", (320, 240)),  # never upscaled
        ((640, 480), "360p", "source", (480, 360)),
        ((1280, 720), "source", "9:16", (404, 720)),
        ((1920, 1080), "1080p", "9:16", (608, 1080)),
        ((1920, 1080), "480p", "1:1", (480, 480)),
        ((640, 480), "1080p", "16:9", (640, 360)),  # capped by the 16:9 crop of a 4:3 frame
        ((720, 1280), "720p", "16:9", (718, 404)),
        ((321, 241), "source", "source", (320, 240)),  # even sides
    ],
)
def test_output_size(
    src: tuple[int, int], resolution: str, aspect: str, expected: tuple[int, int]
) -> None:
    assert output_size(*src, resolution, aspect) == expected  # type: ignore[arg-type]


def test_plan_smart_copies_between_the_first_and_last_keyframe_inside() -> None:
    keyframes = [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    plan = plan_smart(3.04, 9.52, keyframes, FRAME_S)
    assert plan is not None
    assert (plan.head, plan.middle, plan.tail) == ((3.04, 4.0), (4.0, 8.0), (8.0, 9.52))
    on_keyframes = plan_smart(2.0, 6.0, keyframes, FRAME_S)
    assert on_keyframes is not None and on_keyframes.head is None and on_keyframes.tail is None
    assert plan_smart(3.0, 5.0, keyframes, FRAME_S) is None  # one keyframe: no whole group


def test_filter_value_escapes_both_levels() -> None:
    assert filter_value("/a b/c.srt") == "/a b/c.srt"
    assert filter_value("x'y") == "x\\\\\\'y"
    assert filter_value("a:b,c[d];e") == "a\\\\:b\\,c\\[d\\]\\;e"


def test_ffconcat_listing_gives_exact_durations() -> None:
    listing = ffconcat_listing([("head.ts", 3.04, 4.0), ("middle.ts", 4.0, 8.0)])
    assert listing.splitlines() == [
        "ffconcat version 1.0",
        "file 'head.ts'",
        "duration 0.960000",
        "file 'middle.ts'",
        "duration 4.000000",
    ]


# ----------------------------------------------------------------------------- real cuts


def test_keyframe_times(media: Media) -> None:
    assert keyframe_times(media.source) == pytest.approx([0, 2, 4, 6, 8, 10])


@pytest.mark.parametrize(("start", "end"), [(3.04, 9.52), (4.0, 8.0), (1.0, 12.0)])
def test_smart_cut_is_frame_accurate(media: Media, out_dir: Path, start: float, end: float) -> None:
    result = cut(media.source, start, end, out_dir / "clip.mp4")
    assert result.method == "smart"
    assert (result.start_s, result.end_s) == pytest.approx((start, end))
    assert (result.width, result.height, result.fps) == (320, 240, 25.0)
    assert result.size_bytes == (out_dir / "clip.mp4").stat().st_size
    assert_frame_accurate(result, media)
    assert sorted(p.name for p in out_dir.iterdir()) == ["clip.mp4"]


def test_smart_cut_keeps_audio_in_sync(media: Media, out_dir: Path) -> None:
    result = cut(media.source, 3.04, 9.52, out_dir / "clip.mp4")
    rate = 8000
    audio = audio_track(result.path, rate)
    assert abs(len(audio) / rate - (result.end_s - result.start_s)) <= FRAME_S + 0.03
    loud = np.flatnonzero(np.abs(audio) > 3000) / rate
    assert loud[0] == 0.0  # the clip starts inside the beep of 3.0-3.1 s
    onsets = loud[1:][np.diff(loud) > 0.5]  # where each later beep starts
    assert onsets == pytest.approx([4.0 - 3.04 + k for k in range(6)], abs=0.01)
    assert probe(result.path).audio_codec == "aac"


def test_reencode_is_frame_accurate(media: Media, out_dir: Path) -> None:
    options = CutOptions(method="reencode")
    result = cut(media.source, 3.04, 9.52, out_dir / "clip.mp4", options)
    assert result.method == "reencode"
    assert_frame_accurate(result, media)


def test_a_clip_without_a_whole_group_is_re_encoded(media: Media, out_dir: Path) -> None:
    result = cut(media.source, 4.6, 7.2, out_dir / "clip.mp4")  # only the keyframe at 6 s
    assert result.method == "reencode"
    assert_frame_accurate(result, media)


def test_copy_is_not_frame_accurate(media: Media, out_dir: Path) -> None:
    result = cut(media.source, 3.04, 9.52, out_dir / "clip.mp4", CutOptions(method="copy"))
    assert result.method == "copy"
    frames = gray_frames(result.path)
    # it starts at the keyframe before the start (2 s), not at 3.04 s
    assert nearest_frame(frames[0], media.frames) == 2 * FPS
    assert len(frames) != round((9.52 - 3.04) * FPS)


def test_no_upscaling_and_a_real_downscale(media: Media, out_dir: Path) -> None:
    same = cut(media.source, 1.0, 3.0, out_dir / "a.mp4", CutOptions(resolution="720p"))
    assert (same.width, same.height) == (320, 240)
    smaller = cut(media.large, 0.5, 2.5, out_dir / "b.mp4", CutOptions(resolution="360p"))
    assert (smaller.width, smaller.height, smaller.method) == (480, 360, "reencode")
    assert probe(smaller.path).has_audio


@pytest.mark.parametrize("mode", ["crop", "blur"])
def test_vertical_clips(media: Media, out_dir: Path, mode: str) -> None:
    options = CutOptions(aspect_ratio="9:16", aspect_mode=mode)  # type: ignore[arg-type]
    result = cut(media.source, 3.04, 5.0, out_dir / "clip.mp4", options)
    assert (result.width, result.height, result.method) == (136, 240, "reencode")
    frame = gray_frames(result.path)[0]
    band = frame[: GRAY_H // 5]  # above the picture in blur mode, part of it in crop mode
    centre = frame[GRAY_H // 2 - 2 : GRAY_H // 2 + 2]
    if mode == "blur":
        # a blurred copy of the picture, not black bars, and smoother than the picture
        assert band.mean() > 20
        assert np.abs(np.diff(band, axis=1)).mean() < np.abs(np.diff(centre, axis=1)).mean()
    assert decode_errors(result.path) == ""


def test_webm_is_vp9_and_opus(media: Media, out_dir: Path) -> None:
    options = CutOptions(output_format="webm")
    result = cut(media.source, 3.04, 5.0, out_dir / "clip.webm", options)
    info = probe(result.path)
    assert "webm" in info.format_name
    assert (info.video_codec, info.audio_codec, result.method) == ("vp9", "opus", "reencode")
    assert abs(len(gray_frames(result.path)) - 49) <= 1


def test_burned_captions_change_the_picture(media: Media, out_dir: Path) -> None:
    odd_dir = media.root / "it's [odd], a:b;c"  # every character the filter graph escapes
    odd_dir.mkdir(exist_ok=True)
    srt = odd_dir / "captions.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:05,000\nHello, captions!\n", encoding="utf-8")
    plain = cut(media.source, 3.04, 5.0, out_dir / "plain.mp4", CutOptions(method="reencode"))
    burned = cut(
        media.source, 3.04, 5.0, out_dir / "burned.mp4", CutOptions(subtitles_path=str(srt))
    )
    assert burned.method == "reencode"
    a, b = gray_frames(plain.path)[10], gray_frames(burned.path)[10]
    lower, upper = slice(GRAY_H * 2 // 3, GRAY_H), slice(0, GRAY_H // 2)
    assert np.abs(a[lower] - b[lower]).mean() > 1.0  # the caption sits at the bottom
    assert np.abs(a[upper] - b[upper]).mean() < 1.0


def test_thumbnail_is_a_small_jpeg(media: Media, out_dir: Path) -> None:
    thumb = make_thumbnail(media.large, out_dir / "thumb.jpg", 1.0, max_width=200)
    info = probe(thumb)
    assert (info.video_codec, info.width, info.height) == ("mjpeg", 200, 150)
    assert len(gray_frames(thumb)) == 1
    late = make_thumbnail(media.source, out_dir / "late.jpg", 99.0)  # clamped into the video
    assert (probe(late).width, probe(late).height) == (320, 240)  # never upscaled
    assert sorted(p.name for p in out_dir.iterdir()) == ["late.jpg", "thumb.jpg"]


def test_a_source_turned_on_display_is_cut_upright(media: Media, out_dir: Path) -> None:
    turned = media.root / "turned.mp4"  # as phones record: sideways, with a display matrix
    if not turned.exists():
        _ffmpeg("-display_rotation", "90", "-i", str(media.source), "-c", "copy", str(turned))
    result = cut(turned, 1.0, 5.0, out_dir / "clip.mp4")
    assert (result.width, result.height, result.method) == (240, 320, "reencode")
    assert abs(len(gray_frames(result.path)) - 100) <= 1


def test_a_source_without_audio_gives_a_silent_clip(media: Media, out_dir: Path) -> None:
    result = cut(media.silent, 1.0, 5.0, out_dir / "clip.mp4")
    info = probe(result.path)
    assert result.method == "smart"
    assert info.has_video and not info.has_audio
    assert abs(len(gray_frames(result.path)) - 100) <= 1


def test_an_audio_only_source_is_refused(media: Media, out_dir: Path) -> None:
    with pytest.raises(MediaError, match="no video track") as caught:
        cut(media.audio_only, 0.0, 1.0, out_dir / "clip.mp4")
    assert caught.value.code == "no_video_stream"
    assert list(out_dir.iterdir()) == []


@pytest.mark.parametrize(
    ("start", "end", "match"),
    [(5.0, 5.0, "not before end"), (6.0, 2.0, "not before end"), (30.0, 35.0, "past the end")],
)
def test_bad_ranges_are_refused(
    media: Media, out_dir: Path, start: float, end: float, match: str
) -> None:
    with pytest.raises(MediaError, match=match):
        cut(media.source, start, end, out_dir / "clip.mp4")
    assert list(out_dir.iterdir()) == []


def test_missing_captions_file_is_refused(media: Media, out_dir: Path) -> None:
    options = CutOptions(subtitles_path=str(media.root / "missing.srt"))
    with pytest.raises(MediaError, match="does not exist"):
        cut(media.source, 1.0, 2.0, out_dir / "clip.mp4", options)
    assert list(out_dir.iterdir()) == []


def test_a_non_media_source_is_refused(media: Media, out_dir: Path) -> None:
    with pytest.raises(MediaError, match="not a video or audio file"):
        cut(media.not_media, 0.0, 1.0, out_dir / "clip.mp4")
    assert list(out_dir.iterdir()) == []


def test_an_ffmpeg_failure_is_a_media_error_and_leaves_nothing(media: Media, out_dir: Path) -> None:
    info = probe(media.source)  # the probe said video; then ffmpeg cannot read the file
    (out_dir / "clip.mp4").write_bytes(b"stale")
    for method in ("auto", "reencode"):
        with pytest.raises(MediaError, match="ffmpeg failed"):
            cut_clip(media.not_media, 1.0, 3.0, out_dir / "clip.mp4",
                     CutOptions(method=method), _no_progress, CancelToken(), info=info,
                     keyframes=[0.0, 2.0, 4.0])  # fmt: skip
        assert list(out_dir.iterdir()) == []


def test_cancel_before_the_cut(media: Media, out_dir: Path) -> None:
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(StageCancelled):
        cut_clip(media.source, 1.0, 3.0, out_dir / "clip.mp4", CutOptions(), _no_progress, cancel)
    assert list(out_dir.iterdir()) == []


@pytest.mark.parametrize("method", ["smart", "reencode"])
def test_cancel_during_the_cut_leaves_nothing(media: Media, out_dir: Path, method: str) -> None:
    cancel = CancelToken()
    seen: list[float] = []

    def progress(fraction: float, message: str) -> None:
        seen.append(fraction)
        cancel.cancel()

    with pytest.raises(StageCancelled):
        cut_clip(media.source, 3.04, 9.52, out_dir / "clip.mp4",
                 CutOptions(method=method), progress, cancel)  # type: ignore[arg-type]  # fmt: skip
    assert seen  # it was running
    assert list(out_dir.iterdir()) == []


def test_progress_rises_to_one(media: Media, out_dir: Path) -> None:
    seen: list[tuple[float, str]] = []
    cut_clip(media.source, 3.04, 9.52, out_dir / "clip.mp4", CutOptions(),
             lambda f, m: seen.append((f, m)), CancelToken())  # fmt: skip
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions)
    assert fractions[0] >= 0.0 and fractions[-1] == 1.0
    assert any("re-encoding the head" in m for _, m in seen)
    assert any("joining" in m for _, m in seen)
