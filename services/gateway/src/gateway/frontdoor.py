"""The one origin: requests for paths another service answers (`schemas.frontdoor`) are
passed on to it, streamed both ways, with the client's address in `X-Forwarded-For`.

Hop-by-hop headers stay on their hop. A service that cannot be reached is a 502, one
that does not answer in time a 504, each with the contract's error body; the service's
own answers, errors included, pass through unchanged.
"""

import logging
from collections.abc import AsyncIterator, Mapping

import httpx
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from schemas.errors import ErrorCode
from schemas.forwarding import TrustedProxies
from schemas.frontdoor import Service
from schemas.requests import RequestError

logger = logging.getLogger(__name__)

# RFC 9110 section 7.6.1, and the framing the next hop sets itself
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
        b"host",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
    }
)
_RESPONSE_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "trailer", "upgrade"})


class FrontDoor:
    """Passes a request on to the service that answers its path."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        upstreams: Mapping[Service, str],
        proxies: TrustedProxies,
    ) -> None:
        self._client = client
        self._upstreams = {service: url.rstrip("/") for service, url in upstreams.items()}
        self._proxies = proxies
        self.passed = 0

    async def __call__(self, service: Service, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        peer = client[0] if client else None
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _HOP_BY_HOP]
        forwarded = _header(scope, b"x-forwarded-for")
        headers.append((b"x-forwarded-for", self._proxies.forwarded_for(peer, forwarded).encode()))
        headers.append((b"x-forwarded-proto", scope.get("scheme", "http").encode()))
        if host := _header(scope, b"host"):
            headers.append((b"x-forwarded-host", host.encode()))
        url = self._upstreams[service] + scope["raw_path"].decode("latin-1")
        if scope.get("query_string"):
            url += "?" + scope["query_string"].decode("latin-1")
        has_body = any(k.lower() in (b"content-length", b"transfer-encoding") for k, _ in headers)
        has_body = has_body or _header(scope, b"transfer-encoding") is not None
        request = self._client.build_request(
            scope["method"], url, headers=headers, content=_body(receive) if has_body else None
        )
        try:
            response = await self._client.send(request, stream=True)
        except ClientDisconnect:
            return
        except httpx.TimeoutException:
            await _refuse(
                RequestError(
                    504, ErrorCode.UPSTREAM_TIMEOUT, f"the {service} did not answer in time"
                ),
                scope,
                receive,
                send,
            )
            return
        except httpx.HTTPError as exc:
            logger.warning(
                "front door: service unreachable", extra={"service": service, "error": repr(exc)}
            )
            await _refuse(
                RequestError(
                    502, ErrorCode.UPSTREAM_UNAVAILABLE, f"the {service} cannot be reached"
                ),
                scope,
                receive,
                send,
            )
            return
        self.passed += 1
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": [
                        (k.encode("latin-1"), v.encode("latin-1"))
                        for k, v in response.headers.multi_items()
                        if k.lower() not in _RESPONSE_HOP
                    ],
                }
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        if chunk := message.get("body", b""):
            yield chunk
        if not message.get("more_body", False):
            return


async def _refuse(error: RequestError, scope: Scope, receive: Receive, send: Send) -> None:
    await JSONResponse(error.body(), status_code=error.status)(scope, receive, send)
