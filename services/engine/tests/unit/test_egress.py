"""The egress policy of http_request blocks, over real sockets on this machine."""

import asyncio
import ipaddress
from collections.abc import AsyncIterator

import pytest

from engine.adapters import HttpxRunner
from engine.core.execution import HttpCall
from engine.egress import EgressPolicy, egress_client
from engine.ports import HttpError


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    request = await reader.readuntil(b"\r\n\r\n")
    if request.startswith(b"GET /jump"):
        writer.write(
            b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9/inside\r\n"
            b"Content-Length: 0\r\n\r\n"
        )
    else:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    await writer.drain()
    writer.close()


@pytest.fixture
async def port() -> AsyncIterator[int]:
    server = await asyncio.start_server(_answer, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


async def _get(policy: EgressPolicy, url: str) -> dict[str, object]:
    async with egress_client(policy) as client:
        return await HttpxRunner(client, 1000)(HttpCall("b", "GET", url, {}, None, 2.0))


async def test_an_internal_address_is_refused_naming_the_rule(port: int) -> None:
    with pytest.raises(HttpError, match=r"egress policy: 127\.0\.0\.1:\d+ is a loopback"):
        await _get(EgressPolicy(), f"http://127.0.0.1:{port}/")


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://10.1.2.3/", "private"),
        ("http://192.168.0.1:8080/", "private"),
        ("http://[::1]/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://[fd00:ec2::254]/", "private"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://100.64.0.1/", "not global"),
    ],
)
async def test_every_kind_of_internal_address_is_refused(url: str, kind: str) -> None:
    with pytest.raises(HttpError, match=f"is a {kind}"):
        await _get(EgressPolicy(), url)


async def test_a_name_is_checked_on_what_it_resolves_to(port: int) -> None:
    with pytest.raises(HttpError, match=r"localhost \((127\.0\.0\.1|::1)\)"):
        await _get(EgressPolicy(), f"http://localhost:{port}/")


async def test_the_allow_list_opens_exactly_its_host_and_port(port: int) -> None:
    policy = EgressPolicy.parse(f"127.0.0.1:{port}, localhost:{port}")
    assert (await _get(policy, f"http://127.0.0.1:{port}/"))["status"] == 200
    assert (await _get(policy, f"http://localhost:{port}/"))["status"] == 200
    with pytest.raises(HttpError, match="egress policy"):
        await _get(policy, f"http://127.0.0.1:{port + 1}/")


async def test_a_redirect_is_never_followed(port: int) -> None:
    policy = EgressPolicy.parse(f"127.0.0.1:{port}")
    result = await _get(policy, f"http://127.0.0.1:{port}/jump")
    assert result["status"] == 302  # the block sees the answer; nothing went inside


async def test_a_global_address_passes_the_policy() -> None:
    with pytest.raises(HttpError, match="egress policy"):  # documentation range: not global
        await _get(EgressPolicy(), "http://192.0.2.1:81/")
    # judged without connecting: tests reach no address beyond this machine
    for address in ("8.8.8.8", "2606:4700::1111", "2002:808:808::"):  # the last: 6to4 of 8.8.8.8
        assert EgressPolicy().refusal("h", 80, ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("address", "inner", "kind"),
    [
        ("::ffff:127.0.0.1", "127.0.0.1", "loopback"),  # IPv4-mapped
        ("::127.0.0.1", "127.0.0.1", "loopback"),  # IPv4-compatible
        ("::10.0.0.1", "10.0.0.1", "private"),
        ("2002:7f00:1::", "127.0.0.1", "loopback"),  # 6to4
        ("2002:a9fe:a9fe::1", "169.254.169.254", "link-local (the metadata address among them)"),
        ("2001:0:808:808::80ff:fffe", "127.0.0.1", "loopback"),  # Teredo (client 127.0.0.1)
        (
            "64:ff9b::a9fe:a9fe",
            "169.254.169.254",
            "link-local (the metadata address among them)",
        ),  # NAT64
        ("64:ff9b::c0a8:1", "192.168.0.1", "private"),
    ],
)
def test_an_ipv6_address_is_judged_by_the_ipv4_address_it_embeds(
    address: str, inner: str, kind: str
) -> None:
    refusal = EgressPolicy().refusal("h", 80, ipaddress.ip_address(address))
    assert refusal is not None
    assert f"{kind} (embedded in an IPv6 address as {inner})" in refusal


async def test_the_6to4_form_of_loopback_is_refused_at_connect(port: int) -> None:
    with pytest.raises(HttpError, match="loopback"):
        await _get(EgressPolicy(), f"http://[2002:7f00:1::]:{port}/")


def test_a_bad_allow_list_entry_is_refused() -> None:
    with pytest.raises(ValueError, match="not host:port"):
        EgressPolicy.parse("stub.internal")
