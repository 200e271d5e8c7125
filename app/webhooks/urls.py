"""Receiver URL rules: checked when an endpoint is saved and again (the resolved addresses)
before each delivery, so a name that later resolves inward is refused too."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

MAX_URL = 2000


class BadUrl(ValueError):
    """The URL cannot be a webhook receiver; the message says why."""


def check_url(url: str, allow_private: bool) -> str:
    """The URL, stripped, if it is an absolute http(s) URL without credentials or fragment."""
    url = url.strip()
    if not url:
        raise BadUrl("the URL is required")
    if len(url) > MAX_URL:
        raise BadUrl(f"the URL is longer than {MAX_URL} characters")
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise BadUrl("the URL contains spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise BadUrl(f"the URL is malformed: {e}") from None
    if parts.scheme not in ("http", "https"):
        raise BadUrl("the URL must start with http:// or https://")
    if not parts.hostname:
        raise BadUrl("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise BadUrl("the URL must not contain a user name or password")
    if parts.fragment:
        raise BadUrl("the URL must not contain a #fragment")
    if port == 0:
        raise BadUrl("the URL's port must be 1-65535")
    if not allow_private:
        try:
            ip = ipaddress.ip_address(parts.hostname)
        except ValueError:
            if parts.hostname.lower() in ("localhost",) or parts.hostname.endswith(".localhost"):
                raise BadUrl(_PRIVATE) from None
        else:
            if not _public(ip):
                raise BadUrl(_PRIVATE)
    return url


_PRIVATE = (
    "the URL points to a loopback, private or link-local address "
    "(allowed only with PREFLOOP_WEBHOOK_ALLOW_PRIVATE=true)"
)


def _public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def check_resolved(url: str, allow_private: bool) -> None:
    """Before sending: every address the host resolves to must be public (unless allowed)."""
    if allow_private:
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        infos = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError as e:
        raise BadUrl(f"cannot resolve {host}: {e}") from None
    for info in infos:
        if not _public(ipaddress.ip_address(info[4][0])):
            raise BadUrl(_PRIVATE)
