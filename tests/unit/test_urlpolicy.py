"""URL policy: scheme, host, and every resolved address checked; no network involved."""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Any

import pytest

from pipeline.errors import PolicyError
from pipeline.media.urlpolicy import check_url, is_youtube_url


def resolver(*addresses: str) -> Any:
    """A getaddrinfo stand-in answering `addresses` for any name."""

    def resolve(host: str, port: int, **_kwargs: object) -> list[tuple[Any, ...]]:
        infos: list[tuple[Any, ...]] = []
        for address in addresses:
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            infos.append((family, socket.SOCK_STREAM, 6, "", (address, port)))
        return infos

    return resolve


def unresolvable(host: str, port: int, **_kwargs: object) -> list[tuple[Any, ...]]:
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


PUBLIC = resolver("93.184.216.34")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.com/watch?v=1", "https://example.com/watch?v=1"),
        ("HTTP://Example.COM:80", "http://example.com/"),
        ("https://example.com:443/a#fragment", "https://example.com/a"),
        ("http://example.com:8080/a", "http://example.com:8080/a"),
        ("  http://example.com/a  ", "http://example.com/a"),
        ("http://8.8.8.8/v.mp4", "http://8.8.8.8/v.mp4"),
        ("http://[2001:4860::8888]:81/v", "http://[2001:4860::8888]:81/v"),
    ],
)
def test_public_urls_are_normalised(url: str, expected: str) -> None:
    assert check_url(url, allow_private=False, resolve=PUBLIC) == expected


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://example.com/v.mp4", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("example.com/v.mp4", "scheme is none"),
        ("http:///v.mp4", "no host"),
        ("http://example.com:99999/", "not a valid URL"),
    ],
)
def test_malformed_urls_are_refused(url: str, why: str) -> None:
    with pytest.raises(PolicyError, match=why) as caught:
        check_url(url, allow_private=True, resolve=PUBLIC)
    assert caught.value.code == "url_refused"
    assert not caught.value.retryable


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.10", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("0.0.0.0", "unspecified"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("100.64.0.1", "non-public"),
    ],
)
def test_non_public_addresses_are_refused(address: str, kind: str) -> None:
    literal = f"[{address}]" if ":" in address else address
    with pytest.raises(PolicyError, match=kind) as caught:
        check_url(f"http://{literal}/v.mp4", allow_private=False, resolve=PUBLIC)
    assert caught.value.code == "url_refused"
    shown = re.escape(str(ipaddress.ip_address(address)))
    with pytest.raises(PolicyError, match=f"resolves to {shown}, which is an? {kind}"):
        check_url("http://media.example/v.mp4", allow_private=False, resolve=resolver(address))


def test_every_resolved_address_is_checked() -> None:
    mixed = resolver("93.184.216.34", "10.0.0.7")
    with pytest.raises(PolicyError, match=r"10\.0\.0\.7"):
        check_url("http://media.example/v.mp4", allow_private=False, resolve=mixed)


def test_private_addresses_pass_when_allowed() -> None:
    loopback = resolver("127.0.0.1")
    url = "http://localhost:8123/v.mp4"
    assert check_url(url, allow_private=True, resolve=loopback) == url
    assert check_url("http://127.0.0.1:1/", allow_private=True) == "http://127.0.0.1:1/"


def test_numeric_host_tricks_are_resolved_and_refused() -> None:
    # 2130706433 == 127.0.0.1; the system resolver (no network needed) spells it out
    with pytest.raises(PolicyError, match="loopback"):
        check_url("http://2130706433/", allow_private=False)


def test_unresolvable_host() -> None:
    with pytest.raises(PolicyError, match="could not be resolved") as caught:
        check_url("http://nowhere.invalid/v.mp4", allow_private=False, resolve=unresolvable)
    assert caught.value.code == "url_unresolvable"
    assert not caught.value.retryable


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://www.youtube.com/watch?v=abc", True),
        ("https://youtu.be/abc", True),
        ("https://m.youtube.com/watch?v=abc", True),
        ("https://www.youtube-nocookie.com/embed/abc", True),
        ("https://notyoutube.com/watch", False),
        ("https://youtube.com.evil.example/watch", False),
        ("not a url", False),
    ],
)
def test_is_youtube_url(url: str, expected: bool) -> None:
    assert is_youtube_url(url) is expected
