"""Reading JSON request bodies the same way in every service, framework-agnostic.

Errors a client causes are raised as `RequestError`, which carries the contract's
error body; each service turns it into a response with one line.
"""

import json
from collections.abc import AsyncIterable
from typing import Any

from schemas.errors import ErrorBody, ErrorCode

DEFAULT_LIMIT = 1024 * 1024


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


def parse_object(body: bytes) -> dict[str, Any]:
    """Parse a JSON object; an empty body counts as `{}`."""
    if not body.strip():
        return {}
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError(400, ErrorCode.MALFORMED_JSON, f"malformed JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise RequestError(
            400,
            ErrorCode.NOT_AN_OBJECT,
            f"the body must be a JSON object, not {type(value).__name__}",
        )
    return value


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
