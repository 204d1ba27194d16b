"""The gateway's OpenAPI document (public endpoints), also committed under docs/openapi/."""

import json
from pathlib import Path
from typing import Any

from schemas.errors import ErrorBody, ErrorCode, error_response

_COMMON_ERRORS = {
    "400": error_response(
        "Malformed JSON, a body that is not an object, or a bad parameter",
        ErrorCode.MALFORMED_JSON,
        ErrorCode.NOT_AN_OBJECT,
        ErrorCode.INVALID_PARAMETER,
    ),
    "404": error_response(
        "Unknown flow or trigger", ErrorCode.UNKNOWN_FLOW, ErrorCode.UNKNOWN_TRIGGER
    ),
    "408": error_response("The body did not arrive in time", ErrorCode.REQUEST_TIMEOUT),
    "413": error_response(
        "The body is over the limit (1 MiB by default), or too large for the broker",
        ErrorCode.BODY_TOO_LARGE,
    ),
    "415": error_response("The content type is not JSON", ErrorCode.UNSUPPORTED_MEDIA_TYPE),
    "429": error_response(
        "A limit is reached; see Retry-After: the caller's address (4290), the trigger's "
        "rateLimit counted across every gateway (4291), the engine's lag over the lag "
        "guard (4292)",
        ErrorCode.RATE_LIMITED,
        ErrorCode.TRIGGER_RATE_LIMITED,
        ErrorCode.OVERLOADED,
    ),
    "503": error_response(
        "Nothing was accepted: the broker or the auth service is unavailable",
        ErrorCode.BROKER_UNAVAILABLE,
        ErrorCode.AUTH_UNAVAILABLE,
    ),
}

_ANY_OBJECT = {"type": "object", "additionalProperties": True}


# the headers a signed callback carries, by scheme (docs/contract.md, "Signed callbacks")
_SIGNATURE_HEADERS = (
    ("webhook-id", "standard-webhooks", "the message id (or svix-id)"),
    ("webhook-timestamp", "standard-webhooks", "unix seconds (or svix-timestamp)"),
    (
        "webhook-signature",
        "standard-webhooks",
        "v1,<base64 HMAC-SHA256> (space-separated; or svix-signature)",
    ),
    (
        "X-Hub-Signature-256",
        "github",
        "sha256=<hex HMAC-SHA256 of the body>; the message id is the body's SHA-256",
    ),
    ("Stripe-Signature", "stripe", "t=<unix seconds>,v1=<hex HMAC-SHA256>"),
)


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the gateway's public endpoints."""
    uuid_param = {"in": "path", "required": True, "schema": {"type": "string"}}
    activate: dict[str, Any] = {
        "operationId": "activateTrigger",
        "summary": "Activate an External Callback trigger",
        "parameters": [
            {"name": "flowId", **uuid_param},
            {"name": "triggerId", **uuid_param},
            {
                "name": "execution",
                "in": "query",
                "required": False,
                "description": "all (default), any, or an execution id",
                "schema": {"type": "string"},
            },
            {
                "name": "user-token",
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
            },
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "for a SIGNATURE trigger, its message id takes this place",
                "schema": {"type": "string", "maxLength": 256},
            },
            *(
                {
                    "name": name,
                    "in": "header",
                    "required": False,
                    "description": f"SIGNATURE triggers ({scheme}): {meaning}",
                    "schema": {"type": "string"},
                }
                for name, scheme, meaning in _SIGNATURE_HEADERS
            ),
        ],
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": _ANY_OBJECT}},
        },
        "responses": {
            "200": {
                "description": "Accepted (acknowledged by Kafka), or ignored "
                "by an IGNORE policy; empty body",
                "headers": {"X-Activation-Id": {"schema": {"type": "string"}}},
            },
            "401": error_response(
                "No valid user for a USER trigger, or no valid signature for a SIGNATURE "
                "trigger (policy ERROR)",
                ErrorCode.AUTH_FAILED,
                ErrorCode.SIGNATURE_INVALID,
            ),
            "403": error_response(
                "The user lacks a required role (policy ERROR)", ErrorCode.AUTH_FAILED
            ),
            **_COMMON_ERRORS,
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "hookflow gateway",
            "version": "1.0.0",
            "description": "External Callback activations and execution starts.",
        },
        "paths": {
            "/api/automation/flow/{flowId}/trigger/{triggerId}/activate": {
                "post": activate,
                "get": {
                    **{k: v for k, v in activate.items() if k != "requestBody"},
                    "operationId": "activateTriggerByGet",
                    "summary": "Activate an External Callback trigger with a GET: the query "
                    "string is the data (a repeated key gives a list; `execution` is not data)",
                },
            },
            "/api/automation/flow/{flowId}/execute": {
                "post": _start(
                    "startExecution",
                    "Start an execution of a flow version (refusals: code 1001)",
                    [{"name": "flowId", **uuid_param}],
                    "202",
                    ErrorCode.ACCESS_DENIED,
                )
            },
            "/api/automation/flow/{flowId}/activate": {
                "post": _start(
                    "activateFlowById",
                    "Start an execution of a flow version under its start block's rules; "
                    "the body is the initial data",
                    [{"name": "flowId", **uuid_param}],
                    "200",
                    ErrorCode.AUTH_FAILED,
                )
            },
            "/api/automation/flow/activate-by-name": {
                "post": {
                    **_start(
                        "activateFlowByName",
                        "Start the live version of the flow named `name` with `initialData`",
                        [],
                        "200",
                        ErrorCode.AUTH_FAILED,
                    ),
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["name"],
                                    "properties": {
                                        "name": {"type": "string"},
                                        "initialData": _ANY_OBJECT,
                                    },
                                }
                            }
                        },
                    },
                }
            },
            "/api/automation/flow/trigger/activate-by-name": {
                "post": {
                    **activate,
                    "operationId": "activateTriggerByName",
                    "summary": "Activate the trigger named `triggerName` of the live version "
                    "of the flow named `flowName`; where nobody waits there, older versions' "
                    "executions waiting at a trigger of that name",
                    "parameters": [
                        {
                            "name": "flowName",
                            "in": "query",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "triggerName",
                            "in": "query",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                        *activate["parameters"][2:],
                    ],
                    "responses": {
                        **activate["responses"],
                        "404": error_response(
                            "No flow or trigger of that name",
                            ErrorCode.UNKNOWN_FLOW_NAME,
                            ErrorCode.UNKNOWN_TRIGGER_NAME,
                        ),
                    },
                }
            },
            "/api/info": {
                "get": {
                    "operationId": "appInfo",
                    "summary": "What the Backendless SDK reads at initApp",
                    "responses": {
                        "200": {
                            "description": "The application",
                            "content": {"application/json": {"schema": _ANY_OBJECT}},
                        }
                    },
                }
            },
        },
        "components": {"schemas": {"ErrorBody": ErrorBody.model_json_schema()}},
    }


def _start(
    operation: str, summary: str, parameters: list[Any], ok: str, refused: ErrorCode
) -> dict[str, Any]:
    """A start: the answer names the new execution (null when an IGNORE policy dropped it)."""
    return {
        "operationId": operation,
        "summary": summary,
        "parameters": [
            *parameters,
            {"name": "user-token", "in": "header", "required": False, "schema": {"type": "string"}},
        ],
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": _ANY_OBJECT}},
        },
        "responses": {
            ok: {
                "description": "Start requested (executionId null: dropped by IGNORE)",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["executionId"],
                            "properties": {"executionId": {"type": ["string", "null"]}},
                        }
                    }
                },
            },
            "401": error_response("No valid credential for the start block's rules", refused),
            "403": error_response("A role the start block needs is missing", refused),
            **_COMMON_ERRORS,
            "404": error_response(
                "Unknown flow", ErrorCode.UNKNOWN_FLOW, ErrorCode.UNKNOWN_FLOW_NAME
            ),
        },
    }


COMMITTED = Path(__file__).resolve().parents[4] / "docs" / "openapi" / "gateway.json"


def rendered() -> str:
    return json.dumps(document(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    COMMITTED.parent.mkdir(parents=True, exist_ok=True)
    COMMITTED.write_text(rendered())
    print(f"wrote {COMMITTED}")
