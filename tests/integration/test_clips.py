"""clip_generation and full_processing end to end, with the real models and real ffmpeg.

The source is a 23 s speech video (320x240, 25 fps, a keyframe every 2 s, h264/aac) served
on 127.0.0.1, so automatic clips of ~8 s really take the fast path (copy between keyframes,
re-encode the ends). Every clip is checked with ffmpeg: frame count within one frame of its
range, audio present, size as asked, never inside a spoken word; thumbnails decode;
subtitle times lie inside the clip.
"""

from __future__ import annotations

import collections
import io
import itertools
import json
import re
import subprocess
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from pipeline.media.ffmpeg import ffmpeg_exe
from pipeline.media.probe import probe
from tests.fixtures.speech import make_speech_video
from tests.integration.conftest import VpaApp
from tests.integration.processes import describe, kill_if_running, stop_running_ffmpeg, wait_gone
from tests.integration.scrape import poll, poll_growth, ray_series, value

FPS = 25
FRAME_S = 1 / FPS


@pytest.fixture(scope="module")
def clip_video(media_server: Any, speech_sample: Any, tmp_path_factory: Any) -> str:
    out = tmp_path_factory.mktemp("clips") / "clips_speech.mp4"
    make_speech_video(out, speech_sample, size="320x240", fps=FPS, gop=2 * FPS)
    return str(media_server.add_file(out))


@pytest.fixture(scope="module")
def app(models_app: VpaApp) -> VpaApp:
    return models_app


def _download(app: VpaApp, url: str, dest: Path) -> Path:
    r = app.client.get(url)
    assert r.status_code == 200, r.text
    dest.write_bytes(r.content)
    return dest


def video_frames(path: Path) -> int:
    """Decoded video frames, as ffmpeg counts them (ffprobe -count_frames)."""
    err = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostats", "-i", str(path), "-map", "0:v:0",
         "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    ).stderr  # fmt: skip
    return int(re.findall(r"frame=\s*(\d+)", err)[-1])


def decode_errors(path: Path) -> str:
    return subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True, text=True, check=False,
    ).stderr.strip()  # fmt: skip


def srt_times(text: str) -> list[tuple[float, float]]:
    def secs(stamp: str) -> float:
        h, m, rest = stamp.split(":")
        s, ms = rest.split(",")
        return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000

    found = re.findall(r"(\d\d:\d\d:\d\d,\d\d\d) --> (\d\d:\d\d:\d\d,\d\d\d)", text)
    return [(secs(a), secs(b)) for a, b in found]


def _words(job: dict[str, Any]) -> list[tuple[float, float]]:
    return [(w["start"], w["end"]) for s in job["segments"] for w in s["words"]]


def check_clip(app: VpaApp, clip: dict[str, Any], tmp: Path, size: tuple[int, int]) -> None:
    ids = clip["artifacts"]
    assert set(ids) == {"video", "thumbnail", "subtitles"}
    video = _download(app, clip["video_url"], tmp / f"c{clip['index']}.{clip['format']}")
    info = probe(video)
    assert info.has_video and info.has_audio, info
    assert (info.width, info.height) == size
    wanted = clip["end"] - clip["start"]
    assert abs(video_frames(video) - wanted * FPS) <= 1.0 + 1e-6, (clip, video_frames(video))
    assert decode_errors(video) == ""
    thumb = _download(app, clip["thumbnail_url"], tmp / f"c{clip['index']}.jpg")
    assert probe(thumb).video_codec == "mjpeg"
    srt = app.client.get(clip["subtitles_url"]).text
    for a, b in srt_times(srt):
        assert 0.0 <= a < b <= clip["duration"] + 0.002, (a, b, clip["duration"])
    assert clip["title"] and not re.fullmatch(r"(?i)clip\s*\d+", clip["title"])
    assert 0.0 <= clip["score"] <= 1.0 and clip["reason"]


def test_clip_generation(app: VpaApp, clip_video: str, tmp_path: Path) -> None:
    options = {"clip_duration": 8, "overlap_duration": 1, "max_clips": 3, "min_confidence": 0}
    cuts = "vpa_clip_cut_seconds_count"
    before = {m: ray_series(cuts, method=m) for m in ("smart", "copy", "reencode")}
    job = app.submit(clip_video, job_type="clip_generation", options=options)
    done = app.wait(job["id"], timeout_s=240)
    assert done["status"] == "completed", done
    clips = done["generated_clips"]
    # each clip's cutting time, by method, in Ray's metrics (per process: a stage worker
    # that ended meanwhile drops out of /metrics' sums) and at GET /metrics
    made = collections.Counter(c["cut_method"] for c in clips)
    for method, series in before.items():
        poll_growth(cuts, series, made[method], method=method)
    poll(app, lambda f: all(value(f, cuts, method=m) > 0 for m in made))
    assert 1 <= len(clips) <= 3
    words = _words(done)
    for clip in clips:
        check_clip(app, clip, tmp_path, (320, 240))
        assert 8 * 0.5 <= clip["end"] - clip["start"] <= 8 * 1.6
        for a, b in words:  # a clip never starts or ends inside a spoken word
            assert not a + 0.01 < clip["start"] < b - 0.01, (clip, a, b)
            assert not a + 0.01 < clip["end"] < b - 0.01, (clip, a, b)
    starts = sorted((c["start"], c["end"]) for c in clips)
    for (_, end), (start, _) in itertools.pairwise(starts):
        assert end - start <= 1.0 + FRAME_S
    assert any(c["cut_method"] == "smart" for c in clips), clips

    events = app.events(job["id"])
    done_stages = [e for e in events if e["type"] == "stage_completed"]
    assert [e["stage"] for e in done_stages] == [
        "fetch", "audio", "transcribe", "analyze", "clips"
    ]  # fmt: skip
    # Each stage's results are stored when it ends: a client reads the transcript and the
    # analysis while clips are still being cut.
    results = {e["stage"]: e["data"]["results"] for e in done_stages}
    assert {"transcript", "segments"} <= set(results["transcribe"])
    assert results["analyze"] == ["analysis_results"]
    assert results["clips"] == ["generated_clips"]
    arts = app.client.get(f"/api/v1/jobs/{job['id']}/artifacts").json()
    assert sum(a["kind"] == "clip" for a in arts) == len(clips)
    assert {c["artifacts"]["video"] for c in clips} <= {a["id"] for a in arts}


def test_custom_segments_vertical_webm_with_captions(
    app: VpaApp, clip_video: str, tmp_path: Path
) -> None:
    options = {
        "segments": [{"start": 1.0, "end": 4.0, "title": "Opening"}, {"start": 10.51, "end": 13}],
        "output_format": "webm",
        "resolution": "720p",  # above the source's 240p: never upscaled
        "aspect_ratio": "9:16",
        "burn_captions": True,
    }
    job = app.submit(clip_video, job_type="clip_generation", options=options)
    done = app.wait(job["id"], timeout_s=240)
    assert done["status"] == "completed", done
    first, second = done["generated_clips"]
    assert (first["start"], first["end"], first["title"]) == (1.0, 4.0, "Opening")
    assert second["start"] == pytest.approx(10.52, abs=1e-6)  # snapped to a frame
    assert second["title"] and second["title"] != "Opening"
    for clip in (first, second):
        assert clip["format"] == "webm" and clip["cut_method"] == "reencode"
        # 9:16 of the source's 240 rows: 135 wide, rounded to an even 136 (output_size).
        assert (clip["width"], clip["height"]) == (136, 240)
        check_clip(app, clip, tmp_path, (clip["width"], clip["height"]))
    video = tmp_path / f"c{first['index']}.webm"
    assert probe(video).video_codec == "vp9"


def test_full_processing_keeps_everything_and_zips_it(
    app: VpaApp, clip_video: str, tmp_path: Path
) -> None:
    options = {"clip_duration": 10, "max_clips": 2, "min_confidence": 0, "audio_format": "mp3",
               "fast_cut": False}  # fmt: skip
    job = app.submit(clip_video, job_type="full_processing", options=options)
    done = app.wait(job["id"], timeout_s=300)
    assert done["status"] == "completed", done
    assert done["transcript"] and done["analysis_results"] and done["generated_clips"]
    assert {c["cut_method"] for c in done["generated_clips"]} == {"reencode"}  # fast_cut off
    arts = app.client.get(f"/api/v1/jobs/{job['id']}/artifacts").json()
    kinds = {a["kind"] for a in arts}
    assert {
        "source", "audio", "transcript_json", "transcript_txt", "subtitles_srt",
        "subtitles_vtt", "analysis_json", "clip", "clip_thumbnail", "clip_subtitles",
        "video_subtitled",
    } <= kinds  # fmt: skip
    subtitled = next(a for a in arts if a["kind"] == "video_subtitled")
    path = _download(app, subtitled["download_url"], tmp_path / subtitled["filename"])
    streams = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True
    ).stderr
    assert re.search(r"Subtitle: mov_text", streams), streams

    r = app.client.get(f"/api/v1/jobs/{job['id']}/download")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert f"vpa-{job['id']}.zip" in r.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(r.content)) as archive:
        assert archive.testzip() is None
        names = set(archive.namelist())
        assert {a["filename"] for a in arts} | {"job.json"} == names
        manifest = archive.read("job.json")
        assert job["id"].encode() in manifest
    only = app.client.get(f"/api/v1/jobs/{job['id']}/download", params={"kind": "clip_thumbnail"})
    with zipfile.ZipFile(io.BytesIO(only.content)) as archive:
        assert {n for n in archive.namelist() if n != "job.json"} == {
            a["filename"] for a in arts if a["kind"] == "clip_thumbnail"
        }


def test_download_errors(app: VpaApp, sample_media: Any) -> None:
    r = app.client.get("/api/v1/jobs/00000000-0000-4000-8000-000000000000/download")
    assert r.status_code == 404 and "not found" in r.json()["detail"]
    job = app.submit(sample_media.clip, job_type="audio_extraction")
    app.wait(job["id"])
    r = app.client.get(f"/api/v1/jobs/{job['id']}/download", params={"kind": "clip"})
    assert r.status_code == 404 and "no artifacts of kind clip" in r.json()["detail"]
    # A file gone from the store is left out of the zip and named in job.json.
    arts = app.client.get(f"/api/v1/jobs/{job['id']}/artifacts").json()
    audio = next(a for a in arts if a["kind"] == "audio")
    (Path(app.settings.artifact_dir) / job["id"] / audio["filename"]).unlink()
    r = app.client.get(f"/api/v1/jobs/{job['id']}/download")
    assert r.status_code == 200
    with zipfile.ZipFile(io.BytesIO(r.content)) as archive:
        assert audio["filename"] not in archive.namelist()
        assert json.loads(archive.read("job.json"))["missing"] == [audio["filename"]]


@pytest.mark.parametrize(
    ("job_type", "options", "field"),
    [
        ("clip_generation", {"max_clips": 0}, "max_clips"),
        ("clip_generation", {"resolution": "4k"}, "resolution"),
        ("clip_generation", {"aspect_ratio": "4:3"}, "aspect_ratio"),
        ("clip_generation", {"clip_duration": 5, "overlap_duration": 5}, "overlap_duration"),
        ("clip_generation", {"segments": [{"start": 3, "end": 2}]}, "segments"),
        ("transcription", {"segments": [{"start": 0, "end": 2}]}, "options.segments"),
    ],
)
def test_bad_clip_options_refused_at_submission(
    app: VpaApp, job_type: str, options: dict[str, Any], field: str
) -> None:
    r = app.client.post(
        "/api/v1/jobs/",
        json={"youtube_url": "https://example.com/v", "job_type": job_type, "options": options},
    )
    assert r.status_code == 422, r.text
    assert field in r.text


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"clip_duration": 60}, "options.clip_duration (60 s) is longer than the video"),
        ({"segments": [{"start": 5, "end": 40}]}, "options.segments[0]: end 40 s is past"),
    ],
)
def test_options_the_video_cannot_satisfy_fail_before_transcribing(
    app: VpaApp, clip_video: str, options: dict[str, Any], needle: str
) -> None:
    job = app.submit(clip_video, job_type="clip_generation", options=options, max_retries=0)
    done = app.wait(job["id"], timeout_s=60)
    assert done["status"] == "failed" and done["error_code"] == "invalid_options", done
    assert needle in done["error_message"]
    stages = [e["stage"] for e in app.events(job["id"]) if e["type"] == "stage_started"]
    assert stages == ["fetch"]


def test_audio_only_source_cannot_make_clips(app: VpaApp, sample_media: Any) -> None:
    job = app.submit(sample_media.audio_only, job_type="clip_generation", max_retries=0)
    done = app.wait(job["id"], timeout_s=60)
    assert done["status"] == "failed" and done["error_code"] == "no_video_stream", done
    assert "video track" in done["error_message"]


def test_cancel_while_cutting_removes_partial_clips(app: VpaApp, clip_video: str) -> None:
    """Cancelling during the clips stage kills ffmpeg and leaves no clip files behind."""
    heavy = {"start": 0, "end": 22, "title": "Whole"}
    options = {
        "segments": [heavy] * 6,  # long cuts: full-length, re-encoded, composited
        "output_format": "webm",
        "aspect_ratio": "1:1",
        "aspect_mode": "blur",
        "burn_captions": True,
    }
    job = app.submit(clip_video, job_type="clip_generation", options=options)
    # one of the stage's ffmpeg runs stopped where it stands: the stage cannot end first
    ffmpeg = stop_running_ffmpeg(app, job["id"], "clips", timeout_s=240)
    try:
        r = app.client.post(f"/api/v1/jobs/{job['id']}/cancel")
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        assert wait_gone(ffmpeg), describe(ffmpeg)
    finally:
        kill_if_running(ffmpeg)
    events = app.events(job["id"])
    assert events[-1]["type"] == "cancelled" and events[-1]["stage"] == "clips"
    job_dir = Path(app.settings.artifact_dir) / job["id"]

    def leftovers() -> list[Path]:  # in the store, or the stage's scratch directory
        return [*job_dir.glob("*clip*"), *app.settings.scratch_path.glob(f"*/{job['id']}")]

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and leftovers():
        time.sleep(0.2)
    assert leftovers() == []
    assert not [a for a in app.client.get(f"/api/v1/jobs/{job['id']}/artifacts").json()
                if a["kind"].startswith("clip")]  # fmt: skip


def test_video_without_speech(app: VpaApp, sample_media: Any) -> None:
    """A tone, no words: no highlight to choose and nothing to subtitle, yet the job
    completes; the caller's own ranges are still cut."""
    job = app.submit(sample_media.long, job_type="full_processing", options={"clip_duration": 5})
    done = app.wait(job["id"], timeout_s=120)
    assert done["status"] == "completed", done
    assert done["generated_clips"] == [] and not done["transcript"]
    kinds = {a["kind"] for a in app.client.get(f"/api/v1/jobs/{job['id']}/artifacts").json()}
    assert "clip" not in kinds and "video_subtitled" not in kinds and "audio" in kinds
    messages = {e["stage"]: e["message"] for e in app.events(job["id"])
                if e["type"] == "stage_completed"}  # fmt: skip
    assert "no speech to choose clips from" in messages["clips"]
    assert "no speech" in messages["subtitles"]
    options = {"segments": [{"start": 2, "end": 5}]}
    job = app.submit(sample_media.long, job_type="clip_generation", options=options)
    done = app.wait(job["id"], timeout_s=120)
    assert done["status"] == "completed", done
    (clip,) = done["generated_clips"]
    assert (clip["start"], clip["end"]) == (2.0, 5.0) and clip["title"]
