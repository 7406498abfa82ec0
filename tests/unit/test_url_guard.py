"""Result URL guard: allow-list with wildcards, https only, no private/loopback/link-local/metadata."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest

from faceswap_common.errors import PipelineError
from faceswap_common.url_guard import UrlGuard, UrlNotAllowed, check_result_url, is_public_address

ALLOWED = ["*.fal.media", "fal.media", "storage.googleapis.com", "127.0.0.1:8300", "engine.local:9000"]


def resolver_for(table: dict[str, list[str]]) -> Any:
    def resolve(host: str, port: Any, *args: Any) -> list[tuple[Any, ...]]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in ip else socket.AF_INET, 1, 6, "", (ip, port)) for ip in table[host]]

    return resolve


DNS = resolver_for({
    "v3.fal.media": ["93.184.216.34"],
    "v3b.fal.media": ["2606:2800:220:1:248:1893:25c8:1946"],
    "fal.media": ["93.184.216.35"],
    "storage.googleapis.com": ["142.250.0.128"],
    "evil.fal.media": ["169.254.169.254"],
    "rebind.fal.media": ["93.184.216.34", "10.0.0.5"],
    "local6.fal.media": ["::1"],
    "ula.fal.media": ["fd12:3456::1"],
    "mapped.fal.media": ["::ffff:127.0.0.1"],
    "engine.local": ["127.0.0.1"],
})


@pytest.mark.parametrize(
    "url",
    [
        "https://v3.fal.media/files/lion/x.mp4",
        "https://V3B.FAL.MEDIA./files/x.mp4",
        "https://fal.media/files/x.png",
        "https://storage.googleapis.com/falserverless/x.mp4",
        "https://v3.fal.media:443/x.mp4",
        "http://127.0.0.1:8300/files/abc/result.mp4",  # literally allowed: local engine over http
        "http://engine.local:9000/x.mp4",
    ],
)
def test_allowed(url: str) -> None:
    assert check_result_url(url, ALLOWED, resolver=DNS) == url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://v3.fal.media/x.mp4", "plain http"),
        ("ftp://v3.fal.media/x.mp4", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("https://example.com/x.mp4", "not in the allowed"),
        ("https://fal.media.evil.com/x.mp4", "not in the allowed"),
        ("https://evilfal.media/x.mp4", "not in the allowed"),
        ("https://v3.fal.media:8443/x.mp4", "not in the allowed"),
        ("https://user:pw@v3.fal.media/x.mp4", "credentials"),
        ("https://evil.fal.media/x.mp4", "non-public"),
        ("https://rebind.fal.media/x.mp4", "non-public"),
        ("https://local6.fal.media/x.mp4", "non-public"),
        ("https://ula.fal.media/x.mp4", "non-public"),
        ("https://mapped.fal.media/x.mp4", "non-public"),
        ("http://127.0.0.1:8301/x.mp4", "not in the allowed"),
        ("http://127.0.0.1/x.mp4", "not in the allowed"),
        ("https://169.254.169.254/latest/meta-data/", "not in the allowed"),
        ("https://[::1]:8300/x", "not in the allowed"),
        ("https:///nohost", "no host"),
        ("https://v3.fal.media:99999/x", "malformed"),
    ],
)
def test_refused(url: str, reason: str) -> None:
    with pytest.raises(UrlNotAllowed) as info:
        check_result_url(url, ALLOWED, resolver=DNS)
    assert reason in info.value.message
    assert info.value.code == "RESULT_URL_NOT_ALLOWED"


def test_wildcard_never_exempts_private_addresses() -> None:
    with pytest.raises(UrlNotAllowed):
        check_result_url("https://10.0.0.1/x", ["*.0.0.1", "10.0.0.*"], resolver=DNS)
    # an IP literal listed literally is allowed (the local stack's engine)
    assert check_result_url("http://10.0.0.1:80/x", ["10.0.0.1"], resolver=DNS)
    assert check_result_url("https://[::1]:8443/x", ["[::1]:8443"], resolver=DNS)


def test_wildcard_with_port_entry() -> None:
    guard = UrlGuard(["*.example.com:8443"], resolver=resolver_for({"a.example.com": ["93.184.216.34"]}))
    assert guard("https://a.example.com:8443/x")
    with pytest.raises(UrlNotAllowed):
        guard("https://a.example.com/x")


def test_unresolvable_host_is_a_download_failure() -> None:
    with pytest.raises(PipelineError) as info:
        check_result_url("https://nxdomain.fal.media/x.mp4", ALLOWED, resolver=DNS)
    assert info.value.code == "RESULT_DOWNLOAD_FAILED"


@pytest.mark.parametrize(
    ("ip", "public"),
    [("8.8.8.8", True), ("10.1.2.3", False), ("172.16.0.1", False), ("192.168.1.1", False), ("127.0.0.1", False),
     ("169.254.169.254", False), ("100.64.0.1", False), ("0.0.0.0", False), ("224.0.0.1", False), ("::1", False),
     ("fe80::1", False), ("fc00::1", False), ("fd00:ec2::254", False), ("::ffff:10.0.0.1", False),
     ("2606:4700::1111", True)],
)
def test_is_public_address(ip: str, public: bool) -> None:
    import ipaddress

    assert is_public_address(ipaddress.ip_address(ip)) is public


def test_httpx_event_hook_checks_redirect_hops() -> None:
    fetched: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        fetched.append(str(request.url))
        return httpx.Response(302, headers={"Location": "http://169.254.169.254/latest/"})

    guard = UrlGuard(ALLOWED, resolver=DNS)
    client = httpx.Client(transport=httpx.MockTransport(handler), event_hooks={"request": [guard.httpx_hook]},
                          follow_redirects=True)
    with pytest.raises(UrlNotAllowed):
        client.get("https://v3.fal.media/x.mp4")
    assert fetched == ["https://v3.fal.media/x.mp4"]
    with pytest.raises(UrlNotAllowed):
        client.get("https://169.254.169.254/")
