"""Where `http_request` blocks may connect: the egress policy, enforced at connect time.

By default a block may reach only global addresses: no loopback, private, link-local
(the cloud metadata address 169.254.169.254 among them), shared, multicast, reserved or
unspecified one, in IPv4 or IPv6. An IPv6 address that embeds an IPv4 one (IPv4-mapped
or -compatible, 6to4, Teredo, NAT64's well-known prefix) is judged by that IPv4 address
too: `2002:7f00:1::` reaches 127.0.0.1 where 6to4 relays route. The check runs on the
addresses DNS gave at the moment of connecting, and the
connection is made to an address that passed: a name that resolves differently a
second later (DNS rebinding) gains nothing. Redirects are never followed. An operator
opens named `host:port` pairs with an allow-list (`HOOKFLOW_ENGINE_EGRESS_ALLOW`).
"""

import asyncio
import ipaddress
import socket
import typing
from dataclasses import dataclass

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class EgressDenied(httpx.TransportError):
    """The egress policy refused a connection; the message names the rule."""


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _embedded(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries, by the forms that route to them."""
    found = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if int(address) >> 32 == 0 and int(address) > 1:  # IPv4-compatible (::a.b.c.d)
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)  # the server's and the client's
    if address in _NAT64:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def _kind(address: IPAddress) -> str | None:
    """What makes an address internal, or None for a global one."""
    if isinstance(address, ipaddress.IPv6Address):
        for inner in _embedded(address):
            kind = _kind(inner)
            if kind is not None:
                return f"{kind} (embedded in an IPv6 address as {inner})"
    checks = (
        ("loopback", address.is_loopback),
        ("link-local (the metadata address among them)", address.is_link_local),
        ("multicast", address.is_multicast),
        ("unspecified", address.is_unspecified),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("not global", not address.is_global),
    )
    return next((name for name, hit in checks if hit), None)


@dataclass(frozen=True)
class EgressPolicy:
    """The allow-list: `host:port` pairs that may be reached whatever they resolve to."""

    allow: frozenset[tuple[str, int]] = frozenset()

    @classmethod
    def parse(cls, text: str) -> "EgressPolicy":
        """`host:port` entries, separated by commas or spaces (`[::1]:8089` for IPv6)."""
        pairs = set()
        for entry in text.replace(",", " ").split():
            host, _, port = entry.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"egress allow-list entry {entry!r} is not host:port")
            pairs.add((host.strip("[]").lower(), int(port)))
        return cls(frozenset(pairs))

    def allowed(self, host: str, port: int) -> bool:
        return (host.strip("[]").lower(), port) in self.allow

    def refusal(self, host: str, port: int, address: IPAddress) -> str | None:
        """Why connecting to `address` (for `host:port`) is refused, or None."""
        kind = _kind(address)
        if kind is None:
            return None
        shown = host if host == str(address) else f"{host} ({address})"
        return (
            f"egress policy: {shown}:{port} is a {kind} address, and {host}:{port} is not "
            "on the allow-list (HOOKFLOW_ENGINE_EGRESS_ALLOW)"
        )


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only where the policy allows."""

    def __init__(self, policy: EgressPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109  # httpcore's interface
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if self._policy.allowed(host, port):
            return await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        try:
            found = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError as exc:
            raise httpcore.ConnectError(f"{host} does not resolve: {exc}") from exc
        addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in found))
        refusals = [self._policy.refusal(host, port, a) for a in addresses]
        usable = [a for a, refused in zip(addresses, refusals, strict=True) if refused is None]
        if not usable:
            raise EgressDenied(next(r for r in refusals if r))
        return await self._inner.connect_tcp(
            str(usable[0]), port, timeout, local_address, socket_options
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109  # httpcore's interface
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise EgressDenied("egress policy: unix sockets are never reached")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, policy: EgressPolicy) -> None:
        super().__init__()
        # httpx does not take a network backend; its pool does
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=_GuardedBackend(policy),
        )


def egress_client(policy: EgressPolicy) -> httpx.AsyncClient:
    """The client for http_request blocks: the policy at every connect, no redirects,
    no proxy from the environment."""
    return httpx.AsyncClient(
        transport=_GuardedTransport(policy), follow_redirects=False, trust_env=False
    )
