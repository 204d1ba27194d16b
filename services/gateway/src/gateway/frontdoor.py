"""The one origin: requests for paths another service answers (`schemas.frontdoor`) are
passed on to it, streamed both ways, with the client's address in `X-Forwarded-For`.

Hop-by-hop headers stay on their hop. A service that cannot be reached is a 502, one
that does not answer in time a 504, each with the contract's error body; the service's
own answers, errors included, pass through unchanged.

Each service behind the door gets a small pool of kept-alive HTTP/1.1 connections
(h11 for the framing). httpx's pool checks every pooled connection for every request
(a poll of each socket): at 64 concurrent requests that was most of the gateway's CPU,
and the pass-through ran at a fifth of the service's own rate (bench P14p).
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from urllib.parse import urlsplit

import h11
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from schemas.errors import ErrorCode
from schemas.forwarding import TrustedProxies
from schemas.frontdoor import Service
from schemas.requests import RequestError

logger = logging.getLogger(__name__)

# RFC 9110 section 7.6.1, the framing the next hop sets itself, and what the door writes
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
    }
)
_IDLE_SECONDS = 3.0  # a kept connection is dropped sooner than the services' keep-alive (5 s)
_CHUNK = 64 * 1024


class Upstream:
    """One service behind the door: its address and its idle connections (newest last)."""

    def __init__(self, url: str, size: int, connect_seconds: float = 5.0) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.authority = parts.netloc.encode()
        self._size = size
        self._connect_seconds = connect_seconds
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []

    async def connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]:
        """A kept connection (True) or a new one (False)."""
        now = time.monotonic()
        while self._idle:
            reader, writer, since = self._idle.pop()
            if now - since < _IDLE_SECONDS and not reader.at_eof():
                return reader, writer, True
            writer.close()
        async with asyncio.timeout(self._connect_seconds):
            reader, writer = await asyncio.open_connection(self.host, self.port)
        return reader, writer, False

    def keep(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._idle) < self._size:
            self._idle.append((reader, writer, time.monotonic()))
        else:
            writer.close()

    def close(self) -> None:
        for _, writer, _ in self._idle:
            writer.close()
        self._idle.clear()


class _Stale(Exception):
    """A kept connection was closed by the service before it answered."""


class FrontDoor:
    """Passes a request on to the service that answers its path."""

    def __init__(
        self,
        upstreams: Mapping[Service, str],
        proxies: TrustedProxies,
        timeout_seconds: float,
        connections: int,
    ) -> None:
        self._upstreams = {s: Upstream(url, connections) for s, url in upstreams.items()}
        self._proxies = proxies
        self._timeout = timeout_seconds
        self.passed = 0

    async def __call__(self, service: Service, scope: Scope, receive: Receive, send: Send) -> None:
        upstream = self._upstreams[service]
        request = self._request(scope, upstream)
        has_body = _has_body(scope)
        try:
            for attempt in (1, 2):
                reader, writer, kept = await upstream.connection()
                try:
                    await self._exchange(upstream, request, has_body, reader, writer, receive, send)
                    break
                except _Stale:
                    writer.close()
                    if attempt == 2 or has_body or not kept:
                        raise ConnectionError("the service closed the connection") from None
                except BaseException:
                    writer.close()
                    raise
        except ClientDisconnect:
            return
        except TimeoutError:
            await _refuse(
                504,
                ErrorCode.UPSTREAM_TIMEOUT,
                f"the {service} did not answer in time",
                scope,
                receive,
                send,
            )
        except (OSError, h11.ProtocolError) as exc:
            logger.warning(
                "front door: service unreachable", extra={"service": service, "error": repr(exc)}
            )
            await _refuse(
                502,
                ErrorCode.UPSTREAM_UNAVAILABLE,
                f"the {service} cannot be reached",
                scope,
                receive,
                send,
            )

    def _request(self, scope: Scope, upstream: Upstream) -> h11.Request:
        client = scope.get("client")
        peer = client[0] if client else None
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _HOP_BY_HOP]
        forwarded = _header(scope, b"x-forwarded-for")
        headers.append((b"x-forwarded-for", self._proxies.forwarded_for(peer, forwarded).encode()))
        headers.append((b"x-forwarded-proto", scope.get("scheme", "http").encode()))
        if host := _header(scope, b"host"):
            headers.append((b"x-forwarded-host", host.encode()))
        if _has_body(scope) and _header(scope, b"content-length") is None:
            headers.append((b"transfer-encoding", b"chunked"))
        if _header(scope, b"host") is None:
            headers.append((b"host", upstream.authority))
        target = scope["raw_path"] or scope["path"].encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        return h11.Request(method=scope["method"], target=target, headers=headers)

    async def _exchange(
        self,
        upstream: Upstream,
        request: h11.Request,
        has_body: bool,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        receive: Receive,
        send: Send,
    ) -> None:
        """One request and its answer over one connection; the connection is kept when
        both ends allow it."""
        conn = h11.Connection(h11.CLIENT)
        try:
            writer.write(conn.send(request) or b"")
            if has_body:
                async for chunk in _body(receive):
                    writer.write(conn.send(h11.Data(data=chunk)) or b"")
                    await writer.drain()
            writer.write(conn.send(h11.EndOfMessage()) or b"")
            await writer.drain()
        except OSError:
            raise _Stale() from None
        started = False
        async with asyncio.timeout(self._timeout) as deadline:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await reader.read(_CHUNK)
                    if not data and not started:
                        raise _Stale()
                    conn.receive_data(data)
                    continue
                if isinstance(event, h11.Response):
                    deadline.reschedule(None)  # the answer has begun: the body streams
                    await send(
                        {
                            "type": "http.response.start",
                            "status": event.status_code,
                            "headers": [(k, v) for k, v in event.headers if k not in _RESPONSE_HOP],
                        }
                    )
                    started = True
                elif isinstance(event, h11.Data):
                    await send(
                        {"type": "http.response.body", "body": bytes(event.data), "more_body": True}
                    )
                elif isinstance(event, h11.EndOfMessage):
                    await send({"type": "http.response.body", "body": b""})
                    break
                elif isinstance(event, h11.ConnectionClosed):
                    raise ConnectionError("the service closed the connection mid-answer")
        self.passed += 1
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            upstream.keep(reader, writer)
        else:
            writer.close()

    def close(self) -> None:
        for upstream in self._upstreams.values():
            upstream.close()


_RESPONSE_HOP = frozenset(
    {b"connection", b"keep-alive", b"transfer-encoding", b"trailer", b"upgrade"}
)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _has_body(scope: Scope) -> bool:
    return _header(scope, b"content-length") not in (None, "0") or (
        _header(scope, b"transfer-encoding") is not None
    )


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        if chunk := message.get("body", b""):
            yield chunk
        if not message.get("more_body", False):
            return


async def _refuse(
    status: int, code: ErrorCode, message: str, scope: Scope, receive: Receive, send: Send
) -> None:
    error = RequestError(status, code, message)
    with contextlib.suppress(Exception):  # unless the answer had begun
        await JSONResponse(error.body(), status_code=error.status)(scope, receive, send)
