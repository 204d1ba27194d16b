"""Reading JSON request bodies the same way in every service, framework-agnostic.

Errors a client causes are raised as `RequestError`, which carries the contract's
error body; each service turns it into a response with one line.
"""

import json
import re
from collections.abc import AsyncIterable
from typing import Any

import orjson

from schemas.errors import ErrorBody, ErrorCode

DEFAULT_LIMIT = 1024 * 1024
MAX_DEPTH = 64  # arrays and objects inside one another, the body's own object counting
# a `\\uD800`-`\\uDFFF` escape: only these can make a string that is not Unicode text
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
# 19 digits in a row, found by mapping every digit to "0" and everything else to " " (a
# C-speed pass; the regex it replaces cost five times as much on a message of UUIDs)
_DIGITS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_NUMBER = b"0" * 19


class RequestError(Exception):
    """An error the client caused: an HTTP status and the contract's error body."""

    def __init__(self, status: int, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        return ErrorBody(code=self.code, message=self.message).model_dump()


def require_json(content_type: str | None) -> None:
    """Refuse a body whose content type is not JSON (absent counts as JSON)."""
    if not content_type:
        return
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise RequestError(
            415,
            ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            f"content type {media!r} is not supported: send application/json",
        )


async def read_limited(chunks: AsyncIterable[bytes], limit: int = DEFAULT_LIMIT) -> bytes:
    """Read a body, stopping as soon as it exceeds `limit` bytes (never buffering more)."""
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise RequestError(
                413, ErrorCode.BODY_TOO_LARGE, f"the body is larger than the limit of {limit} bytes"
            )
    return bytes(body)


def parse_object(body: bytes, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """Parse a JSON object; an empty body counts as `{}`.

    Refused with 400: text that is not JSON, a value that is not an object, numbers that
    are not finite (`NaN`, `Infinity`, `1e400`), nesting deeper than `max_depth` and lone
    surrogates (`"\\ud800"`), none of which can be passed on as JSON. Integers of any
    size are kept exactly. A message that carries a body one level down (a Kafka
    command's `data`) is read with `max_depth=MAX_DEPTH + 1`: the same rule as HTTP's.
    """
    if not body.strip():
        return {}
    value = _fast(body)
    if value is None:
        value = _exact(body, max_depth)
    if not isinstance(value, dict):
        raise RequestError(
            400,
            ErrorCode.NOT_AN_OBJECT,
            f"the body must be a JSON object, not {type(value).__name__}",
        )
    # the walk is needed only when the text could break a rule: more brackets than the
    # depth allows, or an escape that may leave half a surrogate pair
    deep = body.count(b"[") + body.count(b"{") > max_depth
    surrogates = _SURROGATE_ESCAPE.search(body) is not None
    if deep or surrogates:
        _check(value, surrogates, max_depth)
    return value


def _fast(body: bytes) -> Any:
    """The body parsed by orjson (a third of json's cost), or None where orjson's answer
    could differ from json's: text with 19 digits in a row (orjson reads integers beyond
    64 bits as floats; json keeps them exact), or text orjson refuses (not UTF-8, not
    finite, a lone surrogate, malformed), which json then parses or explains."""
    if _LONG_NUMBER in body.translate(_DIGITS):
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _exact(body: bytes, max_depth: int) -> Any:
    try:
        # what json.loads(body, parse_constant=..., parse_float=...) does, with the
        # decoder built once instead of per call
        return _DECODER.decode(body.decode(json.detect_encoding(body), "surrogatepass"))
    except _NotFinite as exc:
        raise RequestError(400, ErrorCode.MALFORMED_JSON, str(exc)) from None
    except RecursionError:
        raise _too_deep(max_depth) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError(400, ErrorCode.MALFORMED_JSON, f"malformed JSON: {exc}") from exc


class _NotFinite(ValueError):
    pass


def _not_finite(text: str) -> float:
    raise _NotFinite(f"the number {text} is not allowed: JSON numbers must be finite")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _NotFinite(f"the number {text} is out of range: JSON numbers must be finite")
    return value


_DECODER = json.JSONDecoder(parse_constant=_not_finite, parse_float=_finite)


def _too_deep(max_depth: int) -> RequestError:
    return RequestError(
        400, ErrorCode.MALFORMED_JSON, f"the JSON is nested deeper than {max_depth} levels"
    )


def _check(value: Any, surrogates: bool, max_depth: int) -> None:
    """Walk `value` without recursion: its depth, and its strings when asked."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth > max_depth:
                raise _too_deep(max_depth)
            for key, child in item.items():
                if surrogates:
                    _text(key)
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            if depth > max_depth:
                raise _too_deep(max_depth)
            stack.extend((child, depth + 1) for child in item)
        elif surrogates and isinstance(item, str):
            _text(item)


def _text(value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise RequestError(
            400,
            ErrorCode.MALFORMED_JSON,
            "a string holds a lone surrogate (half of a \\ud800-\\udfff pair): not Unicode text",
        ) from None


async def json_object(
    content_type: str | None, chunks: AsyncIterable[bytes], limit: int = DEFAULT_LIMIT
) -> dict[str, Any]:
    """Check the content type, read at most `limit` bytes and parse a JSON object."""
    require_json(content_type)
    return parse_object(await read_limited(chunks, limit))


def routing_error(status: int, detail: str) -> dict[str, Any]:
    """The error body for an unknown path (404) or a wrong method (405)."""
    code = ErrorCode.NOT_FOUND if status == 404 else ErrorCode.INVALID_REQUEST
    return ErrorBody(code=code, message=detail).model_dump()


def internal_error_body() -> dict[str, Any]:
    """The error body for a failure the client did not cause: no internals in it."""
    return ErrorBody(
        code=ErrorCode.INTERNAL, message="internal error; it has been logged"
    ).model_dump()
