"""Stage 1: download the media behind a URL with yt-dlp's Python API.

A direct media link, an HTML page with a <video> element and every site yt-dlp knows all go
through the same call. yt-dlp's exceptions are translated into our error tree in one place,
`_translate`.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yt_dlp
from yt_dlp.networking.exceptions import HTTPError, TransportError
from yt_dlp.utils import ContentTooShortError, UnsupportedError

from pipeline.errors import DownloadError, MediaError, PipelineError, PolicyError, StageCancelled
from pipeline.media.fetch_limits import (
    size_text,
    sizes_text,
    too_large,
    too_long,
    within_duration,
    within_size,
)
from pipeline.media.ffmpeg import ffmpeg_exe, remove_quietly
from pipeline.media.probe import MediaInfo, probe
from pipeline.media.urlpolicy import check_url
from pipeline.options import FetchOptions
from pipeline.results import FetchResult
from pipeline.types import CancelToken, ProgressCallback

log = logging.getLogger(__name__)

SOURCE_STEM = "source"
# A single file holding video and audio first (no merge needed), then best video + best
# audio merged by ffmpeg, then whatever there is (an audio-only podcast, say).
FORMAT_SELECTOR = "b/bv*+ba/b*"
RETRIES = 2
_NOT_FOUND = {404: "not_found", 410: "not_found", 401: "forbidden", 403: "forbidden"}
_HTTP_STATUS_RE = re.compile(r"HTTP Error (\d{3})")
_NETWORK_HINTS = (
    "timed out",
    "Connection refused",
    "Connection reset",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "Remote end closed connection",
)
_NO_MEDIA_HINTS = ("No video formats found", "Requested format is not available", "no suitable")


class _YtdlpLogger:
    """yt-dlp's `logger` option: its chatter goes to our logger, its verdicts are remembered."""

    def __init__(self) -> None:
        self.too_large: str | None = None

    def debug(self, msg: str) -> None:
        if "larger than max-filesize" in msg:  # yt-dlp skips the file and only says so here
            self.too_large = msg.strip().removeprefix("[download] ")
        log.debug("yt-dlp: %s", msg)

    def info(self, msg: str) -> None:
        log.debug("yt-dlp: %s", msg)

    def warning(self, msg: str) -> None:
        log.info("yt-dlp: %s", msg)

    def error(self, msg: str) -> None:
        log.info("yt-dlp: %s", msg)  # raised as a translated error right after


def fetch(
    url: str,
    dest_dir: Path,
    options: FetchOptions,
    progress: ProgressCallback,
    cancel: CancelToken,
) -> FetchResult:
    """Download `url` into `dest_dir` as `source.<ext>` and check it is usable media.

    Raises PolicyError (url_refused, url_unresolvable, too_large, too_long), DownloadError
    (not_found, forbidden, network_error [retryable], unsupported_url, download_failed),
    MediaError (not_media, corrupt_media) or StageCancelled. Nothing is left in `dest_dir`
    when it raises.
    """
    url = _allowed_url(url, options)
    if cancel.cancelled:
        raise StageCancelled("Cancelled before the download started")
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    guards = _Guards(options, progress, cancel)
    try:
        entry, path = _download(url, dest_dir, guards)
        size_bytes = within_size(path, options)
        media = _probe_downloaded(path)
        duration_s = within_duration(_float(entry.get("duration")) or media.duration_s, options)
    except BaseException:
        _remove_partial(dest_dir)
        raise
    progress(1.0, f"downloaded {size_text(size_bytes)}")
    return FetchResult(
        path=str(path),
        title=_title(entry, url, path),
        duration_s=duration_s,
        size_bytes=size_bytes,
        extractor=entry.get("extractor_key") or entry.get("extractor"),
        webpage_url=entry.get("webpage_url") or url,
    )


def fetch_local(
    path: Path,
    url: str,
    dest_dir: Path,
    options: FetchOptions,
    progress: ProgressCallback,
    cancel: CancelToken,
) -> FetchResult:
    """A source already on this node (an upload, `url` = upload://<id>), moved into
    `dest_dir` as `source.<ext>` and checked as a download is: usable media, within
    MAX_DOWNLOAD_BYTES and MAX_MEDIA_DURATION_S. Nothing is left in `dest_dir` when it raises.
    """
    if cancel.cancelled:
        raise StageCancelled("Cancelled before the upload was read")
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / f"source{path.suffix.lower() or '.bin'}"
    try:
        path.replace(target)
        size_bytes = within_size(target, options)
        duration_s = within_duration(_probe_downloaded(target).duration_s, options)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    progress(1.0, f"uploaded file ready ({size_text(size_bytes)})")
    return FetchResult(
        path=str(target),
        title=path.stem,
        duration_s=duration_s,
        size_bytes=size_bytes,
        extractor="upload",
        webpage_url=url,
    )


def _allowed_url(url: str, options: FetchOptions) -> str:
    """`url` checked against the address policy. A name that does not resolve now may
    resolve later (DNS outage, no network yet): a retryable network error."""
    try:
        return check_url(url, allow_private=options.allow_private_urls)
    except PolicyError as exc:
        if exc.code != "url_unresolvable":
            raise
        raise DownloadError(exc.message, code="network_error", retryable=True) from exc


class _Guards:
    """yt-dlp's hooks: progress, cancellation, the size and length limits and the address
    policy for media found inside a page, checked while the download runs."""

    def __init__(
        self, options: FetchOptions, progress: ProgressCallback, cancel: CancelToken
    ) -> None:
        self.options = options
        self.progress = progress
        self.cancel = cancel
        self.logger = _YtdlpLogger()

    def on_progress(self, status: dict[str, Any]) -> None:
        if self.cancel.cancelled:
            raise StageCancelled("Cancelled during the download")
        if status.get("status") != "downloading":
            return
        limit_bytes = self.options.max_download_bytes
        done = status.get("downloaded_bytes") or 0
        total = status.get("total_bytes") or status.get("total_bytes_estimate")
        if limit_bytes is not None and max(done, total or 0) > limit_bytes:
            raise too_large(total if total and total > limit_bytes else None, limit_bytes)
        if total:
            self.progress(min(done / total, 0.99), f"downloading {sizes_text(done, total)}")
        else:
            self.progress(0.0, f"downloading {size_text(done)}")

    def match_filter(self, info: dict[str, Any], *, incomplete: object = False) -> str | None:
        if self.cancel.cancelled:
            raise StageCancelled("Cancelled before the download started")
        limit_s = self.options.max_media_duration_s
        duration = info.get("duration")
        if limit_s is not None and duration and duration > limit_s:
            raise too_long(float(duration), limit_s)
        if not incomplete:
            # media found inside a page must obey the same address policy as the page
            for media_url in _media_urls(info):
                check_url(media_url, allow_private=self.options.allow_private_urls)
        return None


def _ytdlp_params(dest_dir: Path, guards: _Guards) -> dict[str, Any]:
    params: dict[str, Any] = {
        "quiet": True,
        "noprogress": True,
        "noplaylist": True,
        "playlist_items": "1",  # a page with several videos: take the first
        "outtmpl": {"default": str(dest_dir / f"{SOURCE_STEM}.%(ext)s")},
        "format": FORMAT_SELECTOR,
        "max_filesize": guards.options.max_download_bytes,
        "match_filter": guards.match_filter,
        "progress_hooks": [guards.on_progress],
        "logger": guards.logger,
        "socket_timeout": guards.options.socket_timeout_s,
        "retries": RETRIES,
        "fragment_retries": RETRIES,
        "extractor_retries": 1,
        "file_access_retries": 1,
        "overwrites": True,
        "continuedl": False,
        "updatetime": False,
        "cachedir": False,
    }
    try:  # only needed to merge separate video and audio formats
        params["ffmpeg_location"] = ffmpeg_exe()
    except MediaError:
        log.warning("no ffmpeg found: formats that need merging will fail")
    return params


def _download(url: str, dest_dir: Path, guards: _Guards) -> tuple[dict[str, Any], Path]:
    """Run yt-dlp; the entry it downloaded and the file it wrote."""
    with yt_dlp.YoutubeDL(_ytdlp_params(dest_dir, guards)) as ydl:
        try:
            info = ydl.extract_info(url, download=True)
        except yt_dlp.utils.DownloadError as exc:
            raise _translate(exc, url) from None
    if guards.cancel.cancelled:
        raise StageCancelled("Cancelled during the download")
    entry = _first_entry(info)
    path = _downloaded_file(entry, dest_dir)
    if path is None:
        limit_bytes = guards.options.max_download_bytes
        if guards.logger.too_large and limit_bytes is not None:
            match = re.search(r"\((\d+) bytes >", guards.logger.too_large)
            raise too_large(int(match[1]) if match else None, limit_bytes)
        raise DownloadError(f"Nothing was downloaded from {url}", code="download_failed")
    return entry, path


def _translate(exc: yt_dlp.utils.DownloadError, url: str) -> PipelineError:
    """The one place where yt-dlp's errors become ours."""
    chain: list[BaseException] = []
    cause: BaseException | None = exc.exc_info[1] if exc.exc_info else None
    while cause is not None and cause not in chain:
        chain.append(cause)
        cause = getattr(cause, "cause", None) or cause.__cause__ or cause.__context__
    message = re.sub(r"^ERROR: (\[\w+\] )?", "", str(exc)).strip()
    for error in chain:
        if isinstance(error, PipelineError):
            return error
    statuses = [e.status for e in chain if isinstance(e, HTTPError)]
    if not statuses and (match := _HTTP_STATUS_RE.search(message)):
        statuses = [int(match[1])]
    if statuses:
        return _http_error(statuses[0], url)
    if any(isinstance(e, UnsupportedError) for e in chain) or "Unsupported URL" in message:
        return DownloadError(
            f"No video or audio was found at {url}", code="unsupported_url", retryable=False
        )
    if any(
        isinstance(e, TransportError | ContentTooShortError | ConnectionError | TimeoutError)
        for e in chain
    ) or any(hint.lower() in message.lower() for hint in _NETWORK_HINTS):
        hint = next((h for h in _NETWORK_HINTS if h.lower() in message.lower()), None)
        reason = hint.lower() if hint else str(chain[-1] if chain else message)[:300]
        return DownloadError(
            f"Network error while downloading {url} ({reason})",
            code="network_error",
            retryable=True,
        )
    if any(hint.lower() in message.lower() for hint in _NO_MEDIA_HINTS):
        return DownloadError(
            f"No downloadable video or audio was found at {url}",
            code="unsupported_url",
            retryable=False,
        )
    return DownloadError(f"Download of {url} failed: {message}", code="download_failed")


def _http_error(status: int, url: str) -> DownloadError:
    if status in _NOT_FOUND:
        what = "was not found" if _NOT_FOUND[status] == "not_found" else "is forbidden"
        return DownloadError(
            f"The media at {url} {what} (HTTP {status})",
            code=_NOT_FOUND[status],
            retryable=False,
        )
    if status >= 500 or status in (408, 429):
        return DownloadError(
            f"The server failed with HTTP {status} for {url}; try again later",
            code="network_error",
            retryable=True,
        )
    return DownloadError(f"The server answered HTTP {status} for {url}", code="http_error")


def _first_entry(info: dict[str, Any] | None) -> dict[str, Any]:
    while info is not None and info.get("_type") == "playlist":
        entries = [entry for entry in info.get("entries") or [] if entry]
        info = entries[0] if entries else None
    if info is None:
        raise DownloadError("No video or audio was found at this URL", code="unsupported_url")
    return info


def _media_urls(info: dict[str, Any]) -> list[str]:
    formats = info.get("requested_formats") or [info]
    return [f["url"] for f in formats if isinstance(f.get("url"), str)]


def _downloaded_file(entry: dict[str, Any], dest_dir: Path) -> Path | None:
    for download in entry.get("requested_downloads") or []:
        path = download.get("filepath")
        if path and Path(path).is_file():
            return Path(path)
    candidates = [p for p in dest_dir.glob(f"{SOURCE_STEM}.*") if not _is_partial(p)]
    return candidates[0] if len(candidates) == 1 else None


def _is_partial(path: Path) -> bool:
    return path.suffix in (".part", ".ytdl", ".temp") or ".part-Frag" in path.name


def _remove_partial(dest_dir: Path) -> None:
    remove_quietly(*dest_dir.glob(f"{SOURCE_STEM}.*"))


def _probe_downloaded(path: Path) -> MediaInfo:
    try:
        media = probe(path)
    except MediaError as exc:
        # probe names the file; "source.mp4" means nothing to the person who sent a URL
        message = exc.message.replace(path.name, "The downloaded file", 1)
        raise MediaError(message, code=exc.code, retryable=exc.retryable) from None
    if media.is_still_image or not (media.has_video or media.has_audio):
        raise MediaError("The downloaded file is not a video or audio file", code="not_media")
    return media


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and value > 0 else None


def _title(entry: dict[str, Any], url: str, path: Path) -> str:
    title = entry.get("title")
    if isinstance(title, str) and title.strip():
        if entry.get("extractor_key") == "HTML5MediaEmbed":
            title = re.sub(r" \(\d+\)$", "", title)  # yt-dlp numbers <video> tags on a page
        return title.strip()
    name = Path(unquote(urlsplit(url).path)).stem
    return name or path.stem
