"""Every service's HTTP server: uvicorn's httptools protocol with limits on what a client
may hold.

uvicorn bounds neither a request's headers nor the time a client takes to send them: one
connection could stream a gigabyte of headers into memory, or hold its socket forever by
sending a byte now and then. Here, on every service:
- a header line over `header_line_bytes`, a header section over `header_section_bytes` or
  more than `header_count` headers: 431 `{"code": 4310, ...}` and the connection closed,
  as soon as the limit is passed (nothing more is buffered);
- request headers not complete within `header_seconds` of the connection or of the
  request's first byte: 408 and closed; a body that stalls (no byte for
  `body_idle_seconds` while the app waits for it): closed;
- at most `max_connections` client connections at once: one more is answered 503
  `{"code": 5033, ...}` and closed at once. The cap stays below the process's open-file
  limit (raised to its hard limit at start) less `fd_reserve` files for Kafka, the store
  and the service's own clients.

httptools was kept over h11 (which has a header limit of its own) by measurement: a bare
route under this protocol is within noise of plain httptools, where h11 serves about two
fifths as many requests (`bench/results/report.md`, docs/adr/0006).
"""

import asyncio
import contextlib
import dataclasses
import functools
import json
import logging
import os
import resource
from dataclasses import dataclass
from typing import Any

import httptools
import uvicorn
from pydantic import BaseModel, Field
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from schemas.errors import ErrorBody, ErrorCode

logger = logging.getLogger(__name__)


class ServerSettings(BaseModel):
    """The HTTP limits, as fields of each service's settings (`HOOKFLOW_<SERVICE>_HTTP_*`)."""

    http_header_line_bytes: int = Field(default=8 * 1024, ge=256)
    http_header_section_bytes: int = Field(default=64 * 1024, ge=1024)
    http_header_count: int = Field(default=100, ge=8)
    http_header_seconds: float = Field(default=10.0, gt=0)
    http_body_idle_seconds: float = Field(default=10.0, gt=0)
    http_keep_alive_seconds: int = Field(default=5, ge=1)
    http_max_connections: int = Field(default=10_000, ge=1)
    http_fd_reserve: int = Field(default=256, ge=16)

    def limits(self) -> "Limits":
        return Limits(
            header_line_bytes=self.http_header_line_bytes,
            header_section_bytes=self.http_header_section_bytes,
            header_count=self.http_header_count,
            header_seconds=self.http_header_seconds,
            body_idle_seconds=self.http_body_idle_seconds,
            keep_alive_seconds=self.http_keep_alive_seconds,
            max_connections=connection_cap(self.http_max_connections, self.http_fd_reserve),
        )


@dataclass(frozen=True)
class Limits:
    header_line_bytes: int = 8 * 1024
    header_section_bytes: int = 64 * 1024
    header_count: int = 100
    header_seconds: float = 10.0
    body_idle_seconds: float = 10.0
    keep_alive_seconds: int = 5
    max_connections: int = 1000


def connection_cap(wanted: int, reserve: int) -> int:
    """`wanted`, or less where the open-file limit (raised to its hard limit first)
    leaves fewer than `wanted` files after `reserve`."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65_536)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return max(1, min(wanted, soft - reserve))


def _response(status: bytes, code: ErrorCode, message: str) -> bytes:
    body = json.dumps(ErrorBody(code=code, message=message).model_dump()).encode()
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body
    )


class _Refused(Exception):
    """A request over a limit: answered with `answer`, then the connection closes."""

    def __init__(self, answer: bytes) -> None:
        super().__init__()
        self.answer = answer


_LIMITS_VARIABLE = "HOOKFLOW_HTTP_LIMITS"  # how `run` hands the limits to every worker


@functools.cache
def _limits() -> Limits:
    given = os.environ.get(_LIMITS_VARIABLE)
    return Limits(**json.loads(given)) if given else Limits()


_TICK_SECONDS = 0.25  # how often the deadlines of a process's connections are checked
_NEVER = float("inf")


class _Sweeper:
    """Checks every connection's deadline a few times a second: one timer per process,
    where a timer per request and phase cost a fifth of a bare route's throughput."""

    def __init__(self, loop: asyncio.AbstractEventLoop, connections: set[Any]) -> None:
        self._loop = loop
        self._connections = connections
        loop.call_later(_TICK_SECONDS, self._tick)

    def _tick(self) -> None:
        now = self._loop.time()
        for connection in list(self._connections):
            if isinstance(connection, GuardedProtocol) and connection.deadline <= now:
                connection.expired()
        self._loop.call_later(_TICK_SECONDS, self._tick)


_sweepers: dict[int, _Sweeper] = {}  # one per server (its set of connections)


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits `run` set (in the environment, so
    that worker processes have them too)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limits = self.limits = _limits()
        self._line = limits.header_line_bytes
        self._section = limits.header_section_bytes
        self._count = limits.header_count
        self._head_bytes = 0  # of the request's head parsed so far (url and headers)
        self._fed = 0  # bytes fed to the parser while a head was incomplete
        self._header_count = 0
        self._in_head = True
        self._in_body = False
        self.deadline = _NEVER  # loop time when the current phase has lasted too long
        if id(self.connections) not in _sweepers:
            _sweepers[id(self.connections)] = _Sweeper(self.loop, self.connections)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            transport.write(
                _response(
                    b"503 Service Unavailable",
                    ErrorCode.TOO_MANY_CONNECTIONS,
                    "too many connections; retry later",
                )
            )
            transport.close()
            return
        self.deadline = self.loop.time() + self.limits.header_seconds

    def data_received(self, data: bytes) -> None:
        # uvicorn's, with the limits: a refusal is answered with its own status
        self._unset_keepalive_if_required()
        if self._in_body:
            self.deadline = self.loop.time() + self.limits.body_idle_seconds
        try:
            self.parser.feed_data(data)
            if self._in_head:
                # what the parser holds of a header not yet complete counts too
                self._fed += len(data)
                if self._fed > self._section + self._line:
                    self._too_large("section")
        except _Refused as exc:
            self._refuse(exc.answer)
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, _Refused):
                self._refuse(exc.__context__.answer)
                return
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        self._fed = 0
        self._header_count = 0
        self._in_head = True
        if self.deadline == _NEVER:  # a keep-alive connection's next request
            self.deadline = self.loop.time() + self.limits.header_seconds

    # on_url and on_header are uvicorn's own (inlined: they run for every header of every
    # request), with the limits checked first

    def on_url(self, url: bytes) -> None:
        self._head_bytes += len(url)
        self.url += url
        if len(self.url) > self._line:
            self._too_large("line")

    def on_header(self, name: bytes, value: bytes) -> None:
        line = len(name) + len(value) + 2  # "name: value"
        self._header_count += 1
        self._head_bytes += line + 2
        if (
            line > self._line
            or self._header_count > self._count
            or self._head_bytes > self._section
        ):
            self._too_large(
                "line"
                if line > self._line
                else "count"
                if self._header_count > self._count
                else "section"
            )
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._in_body = True
        self.deadline = self.loop.time() + self.limits.body_idle_seconds
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_body = False
        self.deadline = _NEVER
        super().on_message_complete()

    def _too_large(self, limit: str) -> None:
        limits = self.limits
        message = {
            "line": f"a request header line is over {limits.header_line_bytes} bytes",
            "section": f"the request's headers are over {limits.header_section_bytes} bytes",
            "count": f"the request has more than {limits.header_count} headers",
        }[limit]
        raise _Refused(
            _response(b"431 Request Header Fields Too Large", ErrorCode.HEADERS_TOO_LARGE, message)
        )

    def _refuse(self, answer: bytes) -> None:
        self.deadline = _NEVER
        if not self.transport.is_closing():
            self.transport.write(answer)
            self.transport.close()

    def expired(self) -> None:
        """The current phase lasted too long: headers (408, closed) or a body (closed)."""
        self.deadline = _NEVER
        if self.transport.is_closing():
            return
        if self._in_head:
            self._refuse(
                _response(
                    b"408 Request Timeout",
                    ErrorCode.REQUEST_TIMEOUT,
                    f"the request's headers did not arrive within {self.limits.header_seconds} s",
                )
            )
        elif self._in_body:
            if self.flow is not None and self.flow.read_paused:
                # the app, not the client, is behind: look again later
                self.deadline = self.loop.time() + self.limits.body_idle_seconds
                return
            self.transport.close()  # the app reads a disconnect


def run(app: Any, settings: ServerSettings, **options: Any) -> None:
    """uvicorn.run(app, ...) with the limits of `settings`."""
    limits = settings.limits()
    os.environ[_LIMITS_VARIABLE] = json.dumps(dataclasses.asdict(limits))
    _limits.cache_clear()
    # X-Forwarded-For is the apps' to believe, from the trusted proxies they are given
    # (schemas.forwarding); uvicorn's default would rewrite the client's address from it
    # for any request from 127.0.0.1
    options.setdefault("proxy_headers", False)
    uvicorn.run(
        app,
        http=GuardedProtocol,
        timeout_keep_alive=limits.keep_alive_seconds,
        **options,
    )
