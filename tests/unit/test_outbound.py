"""The rule for requests the server itself makes (outbound.py)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator, Sequence

import httpx
import pytest

from gitward.config import Settings
from gitward.outbound import OutboundRefused, OutboundRules


def resolving(*addresses: str):
    def resolve(host: str, port: int) -> Sequence[str]:
        return list(addresses)

    return resolve


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "127.8.9.10", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
        "100.64.0.1", "0.0.0.0", "224.0.0.1", "::1", "fe80::1", "fd00::1", "::",
        "::ffff:127.0.0.1", "::ffff:10.0.0.1",
    ],
)
def test_internal_addresses_are_refused(address: str) -> None:
    rules = OutboundRules(resolver=resolving(address))
    with pytest.raises(OutboundRefused, match="loopback, private or link-local"):
        rules.check("https://hooks.example.com/x")


def test_one_internal_address_among_public_ones_is_refused() -> None:
    rules = OutboundRules(resolver=resolving("93.184.216.34", "10.0.0.5"))
    with pytest.raises(OutboundRefused, match=r"10\.0\.0\.5"):
        rules.check("https://hooks.example.com/x")


def test_literal_addresses_are_judged_without_dns() -> None:
    def no_dns(host: str, port: int) -> Sequence[str]:
        raise AssertionError("resolved a literal")

    rules = OutboundRules(resolver=no_dns)
    with pytest.raises(OutboundRefused):
        rules.check("http://127.0.0.1:8080/")
    with pytest.raises(OutboundRefused):
        rules.check("http://[::1]/")
    assert str(rules.check("https://93.184.216.34/hook").address) == "93.184.216.34"


def test_public_address_is_allowed_and_pinned() -> None:
    rules = OutboundRules(resolver=resolving("93.184.216.34"))
    dest = rules.check("https://hooks.example.com/a/b?c=d")
    url, headers, extensions = dest.pinned()
    assert url == "https://93.184.216.34:443/a/b?c=d"
    assert headers == {"Host": "hooks.example.com"}
    assert extensions == {"sni_hostname": "hooks.example.com"}
    url, headers, extensions = rules.check("http://hooks.example.com:8080").pinned()
    assert (url, headers, extensions) == (
        "http://93.184.216.34:8080/", {"Host": "hooks.example.com:8080"}, {}
    )


def test_allowed_networks_open_internal_addresses() -> None:
    rules = OutboundRules(["10.0.0.0/8", "::1/128"], resolver=resolving("10.2.3.4"))
    assert str(rules.check("http://ci.lan/hook").address) == "10.2.3.4"
    assert rules.check("http://[::1]:9/").port == 9
    with pytest.raises(OutboundRefused):
        rules.check("http://192.168.0.1/")
    # an IPv4-mapped address is judged as its IPv4
    assert OutboundRules(["10.0.0.0/8"]).address_ok(__import__("ipaddress").ip_address(
        "::ffff:10.0.0.1"))


def test_https_only_refuses_plain_http_outside_the_allowed_networks() -> None:
    public = OutboundRules(resolver=resolving("93.184.216.34"))
    with pytest.raises(OutboundRefused, match="https://"):
        public.check("http://issuer.example.com", https_only=True)
    assert public.check("https://issuer.example.com", https_only=True).scheme == "https"
    local = OutboundRules(["127.0.0.0/8"])
    assert local.check("http://127.0.0.1:5000/", https_only=True).port == 5000


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "non-empty"),
        (5, "non-empty"),
        ("ftp://example.com/", "http:// or https://"),
        ("javascript:alert(1)", "http:// or https://"),
        ("https://user:pw@example.com/", "user name or password"),
        ("https://user@example.com/", "user name or password"),
        ("https:///path", "name a host"),
        ("https://example.com:99999/", "not valid"),
        ("https://example.com:0/", "port"),
        ("https://exa mple.com/", "spaces or control"),
        ("https://example.com/\x00", "spaces or control"),
        ("https://example.com/" + "a" * 2000, "at most 2000"),
    ],
)
def test_bad_urls_are_refused_with_a_reason(url: object, message: str) -> None:
    with pytest.raises(OutboundRefused, match=message):
        OutboundRules(resolver=resolving("93.184.216.34")).check(url)


def test_unresolvable_host_is_refused() -> None:
    with pytest.raises(OutboundRefused, match="could not be resolved"):
        OutboundRules().check("https://no-such-host.invalid/")


def test_setting_is_read_from_the_environment() -> None:
    settings = Settings.from_env({"GITWARD_OUTBOUND_ALLOWED_NETWORKS": "127.0.0.1/8, ::1"})
    assert settings.outbound_allowed_networks == ("127.0.0.0/8", "::1/128")
    assert Settings.from_env({}).outbound_allowed_networks == ()


@pytest.fixture
def receiver() -> Iterator[tuple[int, list[str]]]:
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers["Host"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], seen
    server.shutdown()


def test_a_pinned_request_reaches_the_checked_address_naming_the_host(
    receiver: tuple[int, list[str]],
) -> None:
    port, seen = receiver
    # "hooks.test" resolves to loopback here (allowed), and the request goes to that address.
    rules = OutboundRules(["127.0.0.0/8"], resolver=resolving("127.0.0.1"))
    url, headers, extensions = rules.check(f"http://hooks.test:{port}/h").pinned()
    with httpx.Client() as client:
        response = client.send(client.build_request("GET", url, headers=headers, extensions=extensions))
    assert response.status_code == 204
    assert seen == [f"hooks.test:{port}"]


def test_a_bounded_resolver_gives_up_on_a_slow_name_server():
    from gitward.outbound import bounded_resolver

    release = threading.Event()

    def slow(host: str, port: int) -> list[str]:
        release.wait(5)
        return ["93.184.216.34"]

    rules = OutboundRules((), bounded_resolver(0.1, slow))
    try:
        with pytest.raises(OutboundRefused, match=r"within 0\.1 s"):
            rules.check("https://slow.example/")
    finally:
        release.set()
    fast = OutboundRules((), bounded_resolver(1.0, lambda host, port: ["93.184.216.34"]))
    assert str(fast.check("https://fast.example/").address) == "93.184.216.34"
