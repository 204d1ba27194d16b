"""Small HTTP helpers of the management API: error bodies and JSON request bodies."""

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from schemas.errors import ErrorBody, ErrorCode


class ApiError(Exception):
    """An error the client caused, answered with the contract's error body."""

    def __init__(self, status: int, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_response(status: int, code: ErrorCode, message: str) -> JSONResponse:
    return JSONResponse(ErrorBody(code=code, message=message).model_dump(), status_code=status)


async def json_object(request: Request, limit: int) -> dict[str, Any]:
    """Read a request body that must be a JSON object of at most `limit` bytes."""
    content_type = request.headers.get("content-type", "application/json")
    if "json" not in content_type.split(";")[0]:
        raise ApiError(415, ErrorCode.UNSUPPORTED_MEDIA_TYPE, "the body must be application/json")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, ErrorCode.BODY_TOO_LARGE, f"the body exceeds {limit} bytes")
    if not body.strip():
        return {}
    try:
        value = json.loads(body)
    except ValueError as exc:
        raise ApiError(400, ErrorCode.MALFORMED_JSON, f"malformed JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ApiError(400, ErrorCode.NOT_AN_OBJECT, "the body must be a JSON object")
    return value
