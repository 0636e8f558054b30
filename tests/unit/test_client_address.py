"""The client address behind proxies: X-Forwarded-For believed only from trusted proxies."""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from tenantry.api.client_address import client_address
from tenantry.config import ConfigError, load_settings

PROXIES = [ip_network("10.0.0.0/8"), ip_network("fd00::/8")]


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        # An untrusted peer's header is ignored.
        ("203.0.113.9", ["10.1.1.1"], "203.0.113.9"),
        # A trusted peer: the right-most address that is not a proxy.
        ("10.0.0.1", ["198.51.100.1"], "198.51.100.1"),
        ("10.0.0.1", ["6.6.6.6, 198.51.100.1"], "198.51.100.1"),  # the client's own prefix
        ("10.0.0.1", ["198.51.100.1, 10.2.2.2"], "198.51.100.1"),  # two proxy hops
        ("10.0.0.1", ["6.6.6.6", "198.51.100.1, 10.2.2.2"], "198.51.100.1"),  # two headers
        ("10.0.0.1", ["198.51.100.1:5678"], "198.51.100.1"),
        ("10.0.0.1", ["[2001:db8::1]:443"], "2001:db8::1"),
        ("fd00::5", ["2001:db8::7"], "2001:db8::7"),
        ("::ffff:10.0.0.1", ["198.51.100.1"], "198.51.100.1"),  # IPv4-mapped peer
        # Only proxies in the header: the left-most of them.
        ("10.0.0.1", ["10.3.3.3, 10.2.2.2"], "10.3.3.3"),
        # No header, or garbage right of the client: the last trusted hop.
        ("10.0.0.1", [], "10.0.0.1"),
        ("10.0.0.1", ["198.51.100.1, not-an-ip"], "10.0.0.1"),
        ("10.0.0.1", ["not-an-ip, 10.2.2.2"], "10.2.2.2"),
    ],
)
def test_client_address(peer: str, xff: list[str], expected: str) -> None:
    assert client_address(peer, xff, PROXIES) == expected


def test_client_address_without_trusted_proxies_is_the_peer() -> None:
    """The default: nobody's X-Forwarded-For is believed."""
    assert client_address("10.0.0.1", ["198.51.100.1"], []) == "10.0.0.1"


def test_client_address_without_a_peer() -> None:
    assert client_address(None, ["198.51.100.1"], PROXIES) is None


def test_trusted_proxies_setting_takes_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().trusted_proxies == ()
    monkeypatch.setenv("TENANTRY_TRUSTED_PROXIES", "10.0.0.1, 192.168.0.0/16 ::1")
    assert load_settings().trusted_proxies == (
        ip_network("10.0.0.1/32"),
        ip_network("192.168.0.0/16"),
        ip_network("::1/128"),
    )
    monkeypatch.setenv("TENANTRY_TRUSTED_PROXIES", "10.0.0.0/8, proxy.example")
    with pytest.raises(ConfigError, match="TENANTRY_TRUSTED_PROXIES"):
        load_settings()
