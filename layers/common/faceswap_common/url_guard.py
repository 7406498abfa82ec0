"""Which result URLs we may fetch.

The result URL comes from a webhook body: signed, but still something we must not trust blindly (a bug
or a compromised provider account must not make our Lambda read 169.254.169.254 or a private network).
Rules: https (http only for a literally allowed host), host on the allow-list (`*.` wildcards allowed),
and every address the name resolves to must be public, unless the exact host[:port] is listed
literally. Redirects are followed by the caller hop by hop and each hop is checked again.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import httpx

from .errors import ErrorCode, PipelineError

Resolver = Callable[..., list[tuple[Any, ...]]]
_DEFAULT_PORTS = {"http": 80, "https": 443}
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


class UrlNotAllowed(PipelineError):
    def __init__(self, url: str, reason: str) -> None:
        super().__init__(ErrorCode.RESULT_URL_NOT_ALLOWED, f"result URL refused: {reason}", {"url": url[:500]})
        self.reason = reason


def is_public_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """False for private, loopback, link-local, unique-local, metadata, multicast, reserved, unspecified."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in _METADATA:
        return False
    return ip.is_global and not (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified
    )


def _split_entry(entry: str) -> tuple[str, int | None]:
    entry = entry.strip().lower()
    if entry.startswith("["):  # [v6]:port
        host, _, rest = entry[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
    if entry.count(":") == 1:
        host, port = entry.split(":")
        return host, int(port) if port.isdigit() else None
    return entry, None


class UrlGuard:
    """check(url) raises UrlNotAllowed; usable as an httpx request event hook too."""

    def __init__(self, allowed_hosts: Iterable[str], resolver: Resolver = socket.getaddrinfo) -> None:
        self._entries = [_split_entry(e) for e in allowed_hosts if e and e.strip()]
        self._resolve = resolver

    def _match(self, host: str, port: int, default_port: int) -> tuple[bool, bool]:
        """(allowed, literal): literal means listed without wildcard (exempt from the address check)."""
        allowed = literal = False
        for pattern, entry_port in self._entries:
            port_ok = port == entry_port if entry_port is not None else port == default_port
            if not port_ok:
                continue
            if pattern.startswith("*."):
                if host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                    allowed = True
            elif pattern == host:
                allowed = literal = True
        return allowed, literal

    def check(self, url: str) -> str:
        try:
            parts = urlsplit(url)
            port_value = parts.port
        except ValueError:
            raise UrlNotAllowed(url, "malformed URL") from None
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise UrlNotAllowed(url, f"scheme {scheme or '(none)'!r} not allowed")
        if parts.username is not None or parts.password is not None:
            raise UrlNotAllowed(url, "credentials in URL")
        host = (parts.hostname or "").rstrip(".").lower()
        if not host:
            raise UrlNotAllowed(url, "no host")
        default_port = _DEFAULT_PORTS[scheme]
        port = port_value if port_value is not None else default_port
        allowed, literal = self._match(host, port, default_port)
        if not allowed:
            raise UrlNotAllowed(url, f"host {host}:{port} is not in the allowed result hosts")
        if scheme == "http" and not literal:
            raise UrlNotAllowed(url, "plain http is only allowed for a literally listed host")
        if literal:
            return url
        for ip in self._addresses(url, host, port):
            if not is_public_address(ip):
                raise UrlNotAllowed(url, f"host {host} resolves to non-public address {ip}")
        return url

    def _addresses(self, url: str, host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            pass
        try:
            infos = self._resolve(host, port, 0, socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise PipelineError(
                ErrorCode.RESULT_DOWNLOAD_FAILED, f"cannot resolve result host {host}: {exc}", {"url": url[:500]}
            ) from None
        addresses = []
        for info in infos:
            addr = str(info[4][0]).split("%", 1)[0]
            addresses.append(ipaddress.ip_address(addr))
        if not addresses:
            raise UrlNotAllowed(url, f"host {host} resolves to no address")
        return addresses

    __call__ = check

    def check_peer(self, url: str, response: httpx.Response) -> None:
        """After connecting: the address actually connected to must be public too (defeats DNS rebinding
        between our resolution and httpx's). Literal hosts are exempt; unknown peers (no socket) pass."""
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".").lower()
        scheme = parts.scheme.lower()
        default_port = _DEFAULT_PORTS.get(scheme, 443)
        port = parts.port if parts.port is not None else default_port
        if self._match(host, port, default_port)[1]:
            return
        stream = response.extensions.get("network_stream")
        peer = stream.get_extra_info("server_addr") if stream is not None else None
        if not peer:
            return
        ip = ipaddress.ip_address(str(peer[0]).split("%", 1)[0])
        if not is_public_address(ip):
            raise UrlNotAllowed(url, f"connected to non-public address {ip}")

    def httpx_hook(self, request: httpx.Request) -> None:
        """`httpx.Client(event_hooks={"request": [guard.httpx_hook]})` checks every hop, redirects included."""
        self.check(str(request.url))


def check_result_url(url: str, allowed_hosts: Iterable[str], resolver: Resolver = socket.getaddrinfo) -> str:
    """Return the URL if we may fetch it, else raise UrlNotAllowed (see module doc)."""
    return UrlGuard(allowed_hosts, resolver).check(url)
