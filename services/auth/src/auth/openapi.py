"""The auth service's OpenAPI document, served at /openapi.json and committed under
docs/openapi/ (`make schemas`)."""

import json
from pathlib import Path
from typing import Any

from schemas.errors import ErrorBody, ErrorCode, error_response

_OBJECT = {"type": "object", "additionalProperties": True}
_JSON = {"application/json": {"schema": _OBJECT}}
_BAD = error_response(
    "Malformed JSON, a body that is not an object, or a bad field",
    ErrorCode.MALFORMED_JSON,
    ErrorCode.NOT_AN_OBJECT,
    ErrorCode.INVALID_REQUEST,
    ErrorCode.LOGIN_MISSING,
    ErrorCode.PASSWORD_REQUIRED,
    ErrorCode.IDENTITY_REQUIRED,
    ErrorCode.EMAIL_INVALID,
)
_LIMITED = error_response("Too many attempts; see Retry-After", ErrorCode.RATE_LIMITED)
_ADMIN = error_response("A valid X-Admin-Key is required", ErrorCode.ADMIN_KEY_REQUIRED)
_USER = {"description": "The user", "content": _JSON}


def _operation(operation_id: str, summary: str, **more: Any) -> dict[str, Any]:
    return {"operationId": operation_id, "summary": summary, **more}


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the auth service's endpoints."""
    body = {"required": True, "content": _JSON}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "hookflow auth",
            "version": "1",
            "description": "Users, roles and user-tokens. `/internal/...` routes answer only "
            "the product's own services, which send the internal credential (X-Internal-Key); "
            "they are never routed through the public front door.",
        },
        "paths": {
            "/api/users/register": {
                "post": _operation(
                    "register",
                    "Register a user: email, password and any properties",
                    requestBody=body,
                    responses={"201": _USER, "400": _BAD, "409": _conflict(), "429": _LIMITED},
                )
            },
            "/api/users/login": {
                "post": _operation(
                    "login",
                    "Log in with {login, password}: the user with its user-token",
                    requestBody=body,
                    responses={
                        "200": _USER,
                        "400": _BAD,
                        "401": error_response("Wrong login or password", ErrorCode.INVALID_LOGIN),
                        "403": error_response("The user is disabled", ErrorCode.USER_DISABLED),
                        "429": _LIMITED,
                    },
                )
            },
            "/api/users/logout": {
                "get": _operation(
                    "logout",
                    "End the user-token sent as the user-token header",
                    responses={
                        "200": {"description": "Logged out"},
                        "401": error_response("Not an active user-token", ErrorCode.INVALID_TOKEN),
                    },
                )
            },
            "/api/users/isvalidusertoken/{token}": {
                "get": _operation(
                    "isValidUserToken",
                    "Whether a user-token is valid: true or false",
                    parameters=[_path("token")],
                    responses={
                        "200": {
                            "description": "true or false",
                            "content": {"application/json": {"schema": {"type": "boolean"}}},
                        }
                    },
                )
            },
            "/api/users/{objectId}": {"get": _read_user("getUser")},
            "/api/data/Users/{objectId}": {"get": _read_user("getUserByDataApi")},
            "/api/users/{objectId}/roles": {
                "put": _operation(
                    "setRoles",
                    "Set a user's roles (X-Admin-Key)",
                    parameters=[_path("objectId")],
                    requestBody=body,
                    responses={"200": _USER, "400": _BAD, "403": _ADMIN, "404": _unknown()},
                )
            },
            "/api/users/{objectId}/status": {
                "put": _operation(
                    "setStatus",
                    "Enable or disable a user (X-Admin-Key)",
                    parameters=[_path("objectId")],
                    requestBody=body,
                    responses={"200": _USER, "400": _BAD, "403": _ADMIN, "404": _unknown()},
                )
            },
            "/internal/tokens/introspect": {
                "post": _operation(
                    "introspect",
                    "Resolve a user-token to its user (the engine's and the gateways' only)",
                    parameters=[
                        {
                            "name": "X-Internal-Key",
                            "in": "header",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    requestBody=body,
                    responses={
                        "200": {"description": "{active, user}", "content": _JSON},
                        "400": _BAD,
                        "401": error_response("No internal credential", ErrorCode.ACCESS_DENIED),
                        "403": error_response(
                            "A wrong internal credential", ErrorCode.ACCESS_DENIED
                        ),
                    },
                )
            },
        },
        "components": {"schemas": {"ErrorBody": ErrorBody.model_json_schema()}},
    }


def _conflict() -> dict[str, Any]:
    return error_response("A user with this email exists already", ErrorCode.USER_EXISTS)


def _read_user(operation: str) -> dict[str, Any]:
    refused = error_response(
        "Not the user itself, the admin key, a FlowAdmin or a FlowViewer", ErrorCode.ACCESS_DENIED
    )
    return _operation(
        operation,
        "A user: for the user itself (its user-token), the admin key, FlowAdmin or FlowViewer",
        parameters=[_path("objectId")],
        responses={"200": _USER, "401": refused, "403": refused, "404": _unknown()},
    )


def _unknown() -> dict[str, Any]:
    return error_response("No such user", ErrorCode.UNKNOWN_USER)


COMMITTED = Path(__file__).resolve().parents[4] / "docs" / "openapi" / "auth.json"


def rendered() -> str:
    return json.dumps(document(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    COMMITTED.parent.mkdir(parents=True, exist_ok=True)
    COMMITTED.write_text(rendered())
    print(f"wrote {COMMITTED}")
