"""The client's address behind trusted proxies: `X-Forwarded-For` is believed only from
the proxies an operator names (addresses or networks), never from anyone else.

The list is read from the right: each hop a trusted proxy added is skipped, and the
first address not trusted is the client. A client that sends its own `X-Forwarded-For`
only puts addresses to the left of the one its proxy added, which are never reached.
"""

import ipaddress
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """The proxies whose `X-Forwarded-For` is believed (`10.0.0.0/8,127.0.0.1`, ...)."""

    def __init__(self, networks: str = "") -> None:
        self._networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(part.strip(), strict=False)
            for part in networks.split(",")
            if part.strip()
        )

    def __bool__(self) -> bool:
        return bool(self._networks)

    def trusts(self, address: str | None) -> bool:
        return bool(self._networks) and address is not None and _within(address, self._networks)

    def client(self, peer: str | None, forwarded_for: str | None) -> str:
        """The client's address: the peer's, or the last untrusted one the trusted
        proxies in front of it forwarded."""
        address = peer or "unknown"
        if not forwarded_for or not self.trusts(peer):
            return address
        for hop in reversed(forwarded_for.split(",")):
            address = hop.strip()
            if not self.trusts(address):
                return address
        return address

    def forwarded_for(self, peer: str | None, forwarded_for: str | None) -> str:
        """The `X-Forwarded-For` to pass on: the trusted chain with the peer appended,
        or the peer alone when the peer is not trusted."""
        peer = peer or "unknown"
        if forwarded_for and self.trusts(peer):
            return f"{forwarded_for}, {peer}"
        return peer


@lru_cache(maxsize=4096)
def _parsed(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(address)
    except ValueError:
        return None


def _within(address: str, networks: tuple[Network, ...]) -> bool:
    parsed = _parsed(address)
    return parsed is not None and any(parsed in network for network in networks)
