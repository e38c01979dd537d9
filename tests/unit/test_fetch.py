"""fetch: real yt-dlp against the loopback media server."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

import pipeline.media.fetch as fetch_module
from pipeline.errors import DownloadError, MediaError, PolicyError, StageCancelled
from pipeline.media.fetch import fetch
from pipeline.media.urlpolicy import check_url
from pipeline.options import FetchOptions
from pipeline.results import FetchResult
from pipeline.types import CancelToken
from tests.fixtures.media import MediaServer, SampleMedia, html_video_page

LOCAL = FetchOptions(allow_private_urls=True, socket_timeout_s=5.0)


class Progress:
    def __init__(self, cancel_at: float | None = None, cancel: CancelToken | None = None):
        self.calls: list[tuple[float, str]] = []
        self.cancel_at = cancel_at
        self.cancel = cancel

    def __call__(self, fraction: float, message: str) -> None:
        self.calls.append((fraction, message))
        if self.cancel is not None and self.cancel_at is not None and fraction > self.cancel_at:
            self.cancel.cancel()

    @property
    def fractions(self) -> list[float]:
        return [fraction for fraction, _ in self.calls]


def run(
    url: str,
    dest: Path,
    options: FetchOptions = LOCAL,
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> FetchResult:
    return fetch(url, dest, options, progress or Progress(), cancel or CancelToken())


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_direct_file(sample_media: SampleMedia, tmp_path: Path) -> None:
    progress = Progress()
    result = run(sample_media.clip, tmp_path, progress=progress)
    assert Path(result.path) == tmp_path / "source.mp4"
    assert result.size_bytes == sample_media.path("clip.mp4").stat().st_size
    assert result.duration_s == pytest.approx(1.0, abs=0.1)
    assert result.title == "clip"
    assert result.extractor == "Generic"
    assert result.webpage_url == sample_media.clip
    fractions = progress.fractions
    assert fractions == sorted(fractions)
    assert fractions[-1] == 1.0 and len(fractions) >= 3
    assert "KB" in progress.calls[0][1]


@pytest.mark.parametrize(
    ("page", "title"), [("page", "Sample clip"), ("source_page", "Source tag")]
)
def test_html_page_with_video_element(
    sample_media: SampleMedia, tmp_path: Path, page: str, title: str
) -> None:
    result = run(getattr(sample_media, page), tmp_path)
    assert Path(result.path).read_bytes() == sample_media.path("clip.mp4").read_bytes()
    assert result.title == title  # the page's <title>
    assert result.extractor == "HTML5MediaEmbed"
    assert result.duration_s == pytest.approx(1.0, abs=0.1)


def test_page_with_several_videos_takes_the_first(
    media_server: MediaServer, sample_media: SampleMedia, tmp_path: Path
) -> None:
    two = html_video_page("clip.mp4").replace(
        "</video>", '</video><video src="silent.mp4"></video>', 1
    )
    result = run(media_server.add_text("two.html", two), tmp_path)
    assert Path(result.path).read_bytes() == sample_media.path("clip.mp4").read_bytes()
    assert list(tmp_path.iterdir()) == [Path(result.path)]


def test_video_without_audio_is_fetched(sample_media: SampleMedia, tmp_path: Path) -> None:
    # a silent video is valid media; the audio stage is the one that refuses it
    result = run(sample_media.silent, tmp_path)
    assert result.size_bytes == sample_media.path("silent.mp4").stat().st_size
    assert Path(result.path).read_bytes() == sample_media.path("silent.mp4").read_bytes()


def test_audio_only_is_fetched(sample_media: SampleMedia, tmp_path: Path) -> None:
    assert Path(run(sample_media.audio_only, tmp_path).path).suffix == ".m4a"


@pytest.mark.parametrize(
    ("path", "error", "code", "retryable"),
    [
        ("missing.mp4", "404", "not_found", False),
        ("status/410/gone.mp4", "410", "not_found", False),
        ("status/403/secret.mp4", "403", "forbidden", False),
        ("status/503/busy.mp4", "503", "network_error", True),
    ],
)
def test_http_errors(
    media_server: MediaServer, tmp_path: Path, path: str, error: str, code: str, retryable: bool
) -> None:
    with pytest.raises(DownloadError, match=f"HTTP {error}") as caught:
        run(media_server.url(path), tmp_path)
    assert (caught.value.code, caught.value.retryable) == (code, retryable)
    assert list(tmp_path.iterdir()) == []


def test_page_linking_to_missing_media(media_server: MediaServer, tmp_path: Path) -> None:
    url = media_server.add_text("dangling.html", html_video_page("nowhere.mp4"))
    with pytest.raises(DownloadError, match="404") as caught:
        run(url, tmp_path)
    assert caught.value.code == "not_found"


def test_page_without_media(media_server: MediaServer, tmp_path: Path) -> None:
    url = media_server.add_text("plain.html", "<html><title>x</title><p>no video</p></html>")
    with pytest.raises(DownloadError, match="No video or audio") as caught:
        run(url, tmp_path)
    assert (caught.value.code, caught.value.retryable) == ("unsupported_url", False)


def test_connection_refused_is_retryable(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="connection refused") as caught:
        run(f"http://127.0.0.1:{closed_port()}/v.mp4", tmp_path)
    assert (caught.value.code, caught.value.retryable) == ("network_error", True)


def test_unresolvable_host_is_a_retryable_network_error(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="could not be resolved") as caught:
        run("http://no-such-host.invalid/v.mp4", tmp_path)
    assert (caught.value.code, caught.value.retryable) == ("network_error", True)


def test_socket_timeout_is_retryable(media_server: MediaServer, tmp_path: Path) -> None:
    options = FetchOptions(allow_private_urls=True, socket_timeout_s=0.3)
    with pytest.raises(DownloadError, match="timed out") as caught:
        run(media_server.url("hang/clip.mp4"), tmp_path, options)
    assert (caught.value.code, caught.value.retryable) == ("network_error", True)


def test_not_media(sample_media: SampleMedia, tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="is not a video or audio file") as caught:
        run(sample_media.not_media, tmp_path)
    assert caught.value.code == "not_media"
    assert list(tmp_path.iterdir()) == []


def test_truncated(sample_media: SampleMedia, tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="truncated or corrupt") as caught:
        run(sample_media.truncated, tmp_path)
    assert caught.value.code == "corrupt_media"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("path", ["clip.mp4", "nolength/clip.mp4"])
def test_size_limit(media_server: MediaServer, tmp_path: Path, path: str) -> None:
    # with a Content-Length yt-dlp refuses up front; without one the progress hook stops it
    options = FetchOptions(allow_private_urls=True, max_download_bytes=10_000)
    with pytest.raises(PolicyError, match=r"larger than the 10\.0 KB download limit") as caught:
        run(media_server.url(path), tmp_path, options)
    assert (caught.value.code, caught.value.retryable) == ("too_large", False)
    assert list(tmp_path.iterdir()) == []


def test_size_limit_not_reached(sample_media: SampleMedia, tmp_path: Path) -> None:
    options = FetchOptions(allow_private_urls=True, max_download_bytes=10_000_000)
    result = run(sample_media.clip, tmp_path, options)
    assert result.size_bytes == sample_media.path("clip.mp4").stat().st_size


def test_duration_limit_checked_after_download(sample_media: SampleMedia, tmp_path: Path) -> None:
    # direct links carry no duration in their metadata: the downloaded file is probed
    options = FetchOptions(allow_private_urls=True, max_media_duration_s=0.5)
    with pytest.raises(PolicyError, match=r"lasts 1\.0 s, longer than the 0\.5 s limit") as caught:
        run(sample_media.clip, tmp_path, options)
    assert caught.value.code == "too_long"
    assert list(tmp_path.iterdir()) == []


def test_duration_limit_checked_before_download(
    sample_media: SampleMedia, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # sites that publish a duration are refused before a byte of media is fetched
    from yt_dlp.extractor.generic import GenericIE

    real_extract = GenericIE._real_extract

    def with_duration(self: GenericIE, url: str) -> dict[str, Any]:
        return {**real_extract(self, url), "duration": 3600}

    monkeypatch.setattr(GenericIE, "_real_extract", with_duration)
    options = FetchOptions(allow_private_urls=True, max_media_duration_s=60)
    progress = Progress()
    with pytest.raises(PolicyError, match="3600 s") as caught:
        run(sample_media.clip, tmp_path, options, progress=progress)
    assert caught.value.code == "too_long"
    assert progress.calls == []


def test_private_url_refused(sample_media: SampleMedia, tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="loopback") as caught:
        run(sample_media.clip, tmp_path, FetchOptions(allow_private_urls=False))
    assert caught.value.code == "url_refused"


def test_media_inside_a_page_obeys_the_policy(
    sample_media: SampleMedia, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pretend the page itself is public: the loopback <video src> must still be refused
    def page_is_public(url: str, *, allow_private: bool) -> str:
        return check_url(url, allow_private=allow_private or url.endswith(".html"))

    monkeypatch.setattr(fetch_module, "check_url", page_is_public)
    with pytest.raises(PolicyError, match="loopback"):
        run(sample_media.page, tmp_path, FetchOptions(allow_private_urls=False))
    assert list(tmp_path.iterdir()) == []


def test_scheme_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="only http and https"):
        run("file:///etc/passwd", tmp_path)


def test_cancel_mid_download(sample_media: SampleMedia, tmp_path: Path) -> None:
    cancel = CancelToken()
    progress = Progress(cancel_at=0.05, cancel=cancel)
    with pytest.raises(StageCancelled):
        run(sample_media.slow_long, tmp_path, progress=progress, cancel=cancel)
    assert 0.05 < progress.fractions[-1] < 0.9
    assert list(tmp_path.iterdir()) == []


def test_cancel_before_start(sample_media: SampleMedia, tmp_path: Path) -> None:
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(StageCancelled):
        run(sample_media.clip, tmp_path, cancel=cancel)
    assert list(tmp_path.iterdir()) == []


def test_errors_survive_pickling(tmp_path: Path) -> None:
    import pickle

    with pytest.raises(DownloadError) as caught:
        run(f"http://127.0.0.1:{closed_port()}/v.mp4", tmp_path)
    copy = pickle.loads(pickle.dumps(caught.value))
    assert (copy.code, copy.retryable, copy.message) == (
        "network_error",
        True,
        caught.value.message,
    )


def test_slow_path_throttles(media_server: MediaServer, sample_media: SampleMedia) -> None:
    # the integration tests rely on /slow/NAME?rate=... to keep a job busy for a while
    import time
    import urllib.request

    started = time.monotonic()
    with urllib.request.urlopen(media_server.url("slow/clip.mp4?rate=100000")) as response:
        body = response.read()
    assert body == sample_media.path("clip.mp4").read_bytes()
    assert time.monotonic() - started > len(body) / 100_000 * 0.8


def test_held_download_waits_for_its_release(
    media_server: MediaServer, sample_media: SampleMedia, tmp_path: Path
) -> None:
    # the integration tests rely on /held/... to keep a download going until they act, and
    # on finding the process that downloads by its connection
    hold = media_server.hold("clip.mp4")
    results: list[FetchResult] = []
    thread = threading.Thread(target=lambda: results.append(run(hold.url, tmp_path)))
    thread.start()
    try:
        assert hold.wait_client_pid() == os.getpid()
        assert thread.is_alive() and not results  # the last byte is held back
    finally:
        hold.release()
        thread.join(60)
    assert results and results[0].size_bytes == sample_media.path("clip.mp4").stat().st_size
