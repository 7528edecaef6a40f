"""Trusted proxies and allowed hosts (web/hosts.py), and their settings."""

from __future__ import annotations

import pytest

from gitward.config import ConfigError, Settings
from gitward.web.hosts import HostPolicy, client_address, parse_networks
from gitward.web.middleware import printable

PROXIES = parse_networks(["10.0.0.0/8", "::1/128"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("203.0.113.5", "198.51.100.1", "203.0.113.5"),  # not a proxy: header ignored
        ("10.1.2.3", None, "10.1.2.3"),
        ("10.1.2.3", "198.51.100.1", "198.51.100.1"),
        ("10.1.2.3", "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # client-written entry left
        ("10.1.2.3", "198.51.100.1, 10.9.9.9", "198.51.100.1"),  # a chain of our proxies
        ("10.1.2.3", "10.9.9.9, 10.8.8.8", "10.1.2.3"),  # only proxies: the peer
        ("10.1.2.3", "198.51.100.1, not-an-ip", "10.1.2.3"),  # unreadable hop: stop
        ("::1", "[2001:db8::7]", "2001:db8::7"),
    ],
)
def test_client_address(peer, forwarded, client):
    assert client_address(peer, forwarded, PROXIES) == client


def test_no_trusted_proxies_means_the_peer():
    assert client_address("127.0.0.1", "198.51.100.1", ()) == "127.0.0.1"


def test_host_policy_defaults_to_loopback_and_the_bound_address():
    policy = HostPolicy.of(Settings(host="192.0.2.10"))
    for host in ("localhost", "localhost:7990", "127.0.0.1:1", "[::1]:7990", "192.0.2.10:7990",
                 "LOCALHOST."):
        assert policy.allows(host), host
    for host in ("evil.example", "localhost.evil.example", "", None, "localhost:x", "[::2]"):
        assert not policy.allows(host), host


def test_host_policy_lists_names_and_exact_ports():
    policy = HostPolicy.of(Settings(allowed_hosts=("git.example.com", "ci.example.com:8443")))
    assert policy.allows("git.example.com:443") and policy.allows("ci.example.com:8443")
    assert not policy.allows("ci.example.com:9000") and not policy.allows("localhost")
    assert HostPolicy.of(Settings(base_url="https://x.example")).allows("anything")


def test_settings_read_hosts_proxies_and_threads():
    settings = Settings.from_env({
        "GITWARD_ALLOWED_HOSTS": "git.example.com, ci.example.com",
        "GITWARD_TRUSTED_PROXIES": "10.0.0.1 192.168.0.0/16",
        "GITWARD_DB_THREADS": "16",
    })
    assert settings.allowed_hosts == ("git.example.com", "ci.example.com")
    assert settings.trusted_proxies == ("10.0.0.1/32", "192.168.0.0/16")
    assert settings.db_threads == 16
    with pytest.raises(ConfigError, match="GITWARD_TRUSTED_PROXIES"):
        Settings.from_env({"GITWARD_TRUSTED_PROXIES": "10.0.0.0/33"})
    with pytest.raises(ConfigError, match="GITWARD_DB_THREADS"):
        Settings.from_env({"GITWARD_DB_THREADS": "0"})


def test_printable_escapes_what_could_forge_log_lines():
    assert printable("/2.0/ok") == "/2.0/ok"
    assert printable("/a\r\nb\x1b[31m") == "/a\\r\\nb\\x1b[31m"
    assert printable("/back\\slash") == "/back\\\\slash"
