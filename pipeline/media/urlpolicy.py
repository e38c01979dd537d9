"""Which URLs the service agrees to fetch.

Only http(s) URLs whose host resolves to public addresses pass, unless private addresses are
allowed (ALLOW_PRIVATE_URLS, and the tests, which serve media on 127.0.0.1). This keeps a
job submission from turning the workers into a proxy onto the cluster's own network.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pipeline.errors import PolicyError

Resolver = Callable[..., Sequence[tuple[Any, ...]]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_DEFAULT_PORTS = {"http": 80, "https": 443}
_YOUTUBE_HOSTS = {"youtube.com", "youtu.be", "youtube-nocookie.com"}


def _non_public_reason(address: IPAddress) -> str | None:
    """Why `address` is not a public unicast address, or None when it is one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("non-public", not address.is_global),  # e.g. 100.64.0.0/10, carrier-grade NAT
    )
    return next((name for name, hit in checks if hit), None)


def _refuse(url: str, why: str) -> PolicyError:
    return PolicyError(f"URL refused: {why} ({url})", code="url_refused", retryable=False)


def _resolve(host: str, port: int, resolve: Resolver) -> list[IPAddress]:
    try:
        infos = resolve(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise PolicyError(
            f"The host {host} could not be resolved ({exc})",
            code="url_unresolvable",
            retryable=False,
        ) from None
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        # IPv6 sockaddr may carry a zone ("fe80::1%eth0"); the zone is not part of the address
        addresses.append(ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0]))
    if not addresses:
        raise PolicyError(
            f"The host {host} has no address", code="url_unresolvable", retryable=False
        )
    return addresses


def check_url(url: str, *, allow_private: bool, resolve: Resolver = socket.getaddrinfo) -> str:
    """Return `url` normalised, or raise PolicyError saying why it may not be fetched.

    Codes: "url_refused" (scheme, missing host, non-public address) and "url_unresolvable".
    Every address a name resolves to is checked, so a name with one private address among
    public ones is refused. Redirects and media URLs found inside pages are checked again by
    the fetch stage.
    """
    text = url.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise _refuse(text, f"it is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        shown = f"'{scheme}'" if scheme else "none"
        raise _refuse(text, f"only http and https URLs are allowed, the scheme is {shown}")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise _refuse(text, "the URL has no host")
    literal: IPAddress | None
    try:
        literal = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        literal = None
    if literal is None:
        try:
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise _refuse(text, f"the host name {host!r} is not valid") from None

    if literal is not None:
        addresses = [literal]
    else:
        addresses = _resolve(host, port or _DEFAULT_PORTS[scheme], resolve)
    if not allow_private:
        for address in addresses:
            reason = _non_public_reason(address)
            if reason is not None:
                via = "" if literal is not None else f" resolves to {address}, which"
                article = "an" if reason[0] in "aeiou" else "a"
                raise _refuse(text, f"{host}{via} is {article} {reason} address")

    netloc = f"[{host}]" if literal is not None and literal.version == 6 else host
    if parts.username is not None:
        userinfo = parts.username + (f":{parts.password}" if parts.password is not None else "")
        netloc = f"{userinfo}@{netloc}"
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def is_youtube_url(url: str) -> bool:
    """Whether `url` points at YouTube (any of its host names)."""
    try:
        host = (urlsplit(url.strip()).hostname or "").rstrip(".").lower()
    except ValueError:
        return False
    return any(host == name or host.endswith("." + name) for name in _YOUTUBE_HOSTS)
