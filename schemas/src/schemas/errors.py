"""The error body every service answers with, and its stable codes.

Codes never change meaning once published; docs/errors.md lists them for users.
"""

from enum import IntEnum
from typing import Any

from pydantic import BaseModel, ConfigDict


class ErrorCode(IntEnum):
    """Stable error codes of the public API."""

    AUTH_FAILED = 1000  # fixed by the contract for every callback auth failure
    ACCESS_DENIED = 1001  # fixed by the contract for the management API
    SIGNATURE_INVALID = 1002  # fixed by the contract for a signed callback that fails
    MALFORMED_JSON = 2000
    NOT_AN_OBJECT = 2001
    INVALID_PARAMETER = 2002
    INVALID_DEFINITION = 2003
    INVALID_REQUEST = 2004
    INVALID_EXPRESSION = 2005
    INVALID_LOGIN = 3000
    INVALID_TOKEN = 3001
    ADMIN_KEY_REQUIRED = 3002
    USER_DISABLED = 3003
    NOT_FOUND = 4040
    UNKNOWN_FLOW = 4041
    UNKNOWN_TRIGGER = 4042
    UNKNOWN_EXECUTION = 4043
    UNKNOWN_ACTIVATION = 4044
    UNKNOWN_USER = 4045
    UNKNOWN_DEAD_LETTER = 4046
    REQUEST_TIMEOUT = 4080
    CONFLICT = 4090
    BODY_TOO_LARGE = 4130
    UNSUPPORTED_MEDIA_TYPE = 4150
    RATE_LIMITED = 4290
    HEADERS_TOO_LARGE = 4310  # fixed by the contract: headers over a limit (schemas.server)
    INTERNAL = 5000
    BROKER_UNAVAILABLE = 5030
    NOT_READY = 5031
    AUTH_UNAVAILABLE = 5032
    TOO_MANY_CONNECTIONS = 5033


class ErrorBody(BaseModel):
    """`{"code": <int>, "message": <str>}`: the body of every error response."""

    model_config = ConfigDict(frozen=True)

    code: int
    message: str


def error_response(description: str, *codes: ErrorCode) -> dict[str, Any]:
    """An OpenAPI response with the error body, naming the codes it may carry (the
    documents refer to `ErrorBody` under `#/components/schemas`)."""
    listed = ", ".join(f"{c.value} ({c.name})" for c in codes)
    return {
        "description": f"{description}. Codes: {listed}",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }
