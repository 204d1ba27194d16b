"""The HttpRunner port: `http_request` blocks through the egress-guarded client."""

import json
from typing import Any

import httpx

from engine.core.execution import HttpCall
from engine.ports import HttpError


class HttpxRunner:
    """Runs http_request blocks with a timeout and a response size limit.

    Whatever a request built from a flow's data can do wrong (a header that is not ASCII,
    a URL that does not parse, a port out of range, a refused connection) is an
    HttpError: the block fails and the execution with it, never the message.
    """

    def __init__(self, client: httpx.AsyncClient, max_bytes: int) -> None:
        self._client = client
        self._max = max_bytes

    async def __call__(self, call: HttpCall) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"headers": call.headers, "timeout": call.timeout}
        if isinstance(call.body, str):
            kwargs["content"] = call.body.encode()
        elif call.body is not None:
            kwargs["json"] = call.body
        try:
            async with self._client.stream(call.method, call.url, **kwargs) as response:
                chunks, size = [], 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > self._max:
                        raise HttpError(f"response larger than {self._max} bytes")
                    chunks.append(chunk)
        except HttpError:
            raise
        except httpx.TimeoutException as exc:
            raise HttpError(f"{call.method} {call.url} timed out after {call.timeout}s") from exc
        except httpx.HTTPError as exc:
            raise HttpError(f"{call.method} {call.url} failed: {exc}") from exc
        except UnicodeEncodeError as exc:
            raise HttpError(
                f"{call.method} {call.url} not sent: a header is not ASCII ({exc.reason})"
            ) from exc
        except Exception as exc:  # InvalidURL's cousins, ExceptionGroup from the transport
            raise HttpError(f"{call.method} {call.url!r} not sent: {_describe(exc)}") from exc
        raw = b"".join(chunks)
        return {
            "status": response.status_code,
            "headers": dict(response.headers),
            "body": _decode(raw, response.headers.get("content-type", "")),
        }


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        return _describe(exc.exceptions[0])
    return f"{type(exc).__name__}: {exc}"[:300]


def _decode(raw: bytes, content_type: str) -> Any:
    if not raw:
        return None
    text = raw.decode("utf-8", errors="replace")
    if "json" in content_type:
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text
