"""The client's address behind reverse proxies: X-Forwarded-For only from trusted proxies.

Anyone can send an `X-Forwarded-For` header. Believing it from any peer would let an attacker
pick a fresh address per request and walk past the per-address sign-in limit (or pin the blame
on someone else). So the header counts only when the direct peer is a configured proxy, and
then only the entries that trusted proxies appended: the right-most address that is not itself
a trusted proxy is the client.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from tenantry.config import IPNetwork

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _parse(value: str) -> IPAddress | None:
    """An address as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `::1`, `[::1]:80`."""
    value = value.strip()
    if value.startswith("["):
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:
        value = value.partition(":")[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IPAddress, proxies: Sequence[IPNetwork]) -> bool:
    return any(address.version == net.version and address in net for net in proxies)


def client_address(
    peer: str | None, forwarded_for: Iterable[str], trusted_proxies: Sequence[IPNetwork]
) -> str | None:
    """`peer` unless it is a trusted proxy; then the right-most untrusted X-Forwarded-For entry.

    `forwarded_for` holds the header's values (a request may carry several). When every entry
    is a trusted proxy the left-most one is the client; an entry that is not an address ends
    the walk (whatever lies left of it was written by the client, not by a proxy).
    """
    if peer is None or not trusted_proxies:
        return peer
    peer_address = _parse(peer)
    if peer_address is None or not _trusted(peer_address, trusted_proxies):
        return peer
    hops = [hop for value in forwarded_for for hop in value.split(",") if hop.strip()]
    client = peer_address
    for hop in reversed(hops):
        address = _parse(hop)
        if address is None:
            break
        client = address
        if not _trusted(address, trusted_proxies):
            break
    return str(client)
