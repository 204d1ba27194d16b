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
    # the users API answers with Backendless's codes, which its SDKs act on
    USER_DISABLED = 3000  # Backendless: login disabled for the account
    ADMIN_KEY_REQUIRED = 3002
    INVALID_LOGIN = 3003  # Backendless: invalid login or password
    LOGIN_MISSING = 3006  # Backendless: login or password is empty
    PASSWORD_REQUIRED = 3011  # Backendless: property 'password' is required
    IDENTITY_REQUIRED = 3013  # Backendless: the identity property (email) is missing
    USER_EXISTS = 3033  # Backendless: a user with the same identity exists
    EMAIL_INVALID = 3040  # Backendless: email address in the wrong format
    INVALID_TOKEN = 3064  # Backendless: not an existing user token
    NOT_FOUND = 4040
    UNKNOWN_FLOW = 4041
    UNKNOWN_TRIGGER = 4042
    UNKNOWN_EXECUTION = 4043
    UNKNOWN_ACTIVATION = 4044
    UNKNOWN_USER = 4045
    UNKNOWN_DEAD_LETTER = 4046
    UNKNOWN_FLOW_NAME = 4047
    UNKNOWN_TRIGGER_NAME = 4048
    REQUEST_TIMEOUT = 4080
    CONFLICT = 4090
    EXECUTION_ENDED = 4091
    BODY_TOO_LARGE = 4130
    UNSUPPORTED_MEDIA_TYPE = 4150
    RATE_LIMITED = 4290
    TRIGGER_RATE_LIMITED = 4291  # fixed by the contract: a trigger's rateLimit is spent
    OVERLOADED = 4292  # the engine is behind by more than the gateway's lag guard allows
    HEADERS_TOO_LARGE = 4310  # fixed by the contract: headers over a limit (schemas.server)
    INTERNAL = 5000
    UPSTREAM_UNAVAILABLE = 5020  # the front door could not reach the service behind it
    BROKER_UNAVAILABLE = 5030
    NOT_READY = 5031
    AUTH_UNAVAILABLE = 5032
    TOO_MANY_CONNECTIONS = 5033
    UPSTREAM_TIMEOUT = 5040  # the service behind the front door did not answer in time
    # FlowRunner's execution API, with its codes
    BLOCKING_INVALID = 28064  # a blocking call's wait over 300 s, or a key in query and body
    EXECUTION_NOT_FOUND = 28068  # an unknown execution, or one of another flow
    BLOCKING_TIMEOUT = 28118  # a blocking call's wait ran out (the execution goes on)
    BLOCK_UNKNOWN = 28159  # no block of that name ran in a finished execution
    BLOCK_NOT_RUN = 28161  # the block has not run (yet)
    OCCURRENCE_OUT_OF_RANGE = 28162


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
