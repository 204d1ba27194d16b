"""The engine's OpenAPI document (the management API), also committed under docs/openapi/."""

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from engine.http import MAX_PAGE, MAX_WAIT_SECONDS
from schemas.errors import ErrorBody, ErrorCode, error_response
from schemas.events import ActivationOutcome, DeadLetter
from schemas.executions import ExecutionView
from schemas.flows import DeployedFlow, FlowDefinition, FlowVersion, IssuedSecret

_REF = "#/components/schemas/{model}"
_MODELS: tuple[type[BaseModel], ...] = (
    ErrorBody,
    FlowDefinition,
    DeployedFlow,
    FlowVersion,
    IssuedSecret,
    ExecutionView,
    ActivationOutcome,
    DeadLetter,
)


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _page(items: str, model: type[BaseModel], description: str) -> dict[str, Any]:
    """A page of `model`s under `items`, with the cursor of the next page."""
    return _json(
        {
            "type": "object",
            "required": [items, "next"],
            "properties": {
                items: {"type": "array", "items": _ref(model)},
                "next": {"type": ["string", "null"]},
            },
        },
        description,
    )


def _path(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


_BAD_BODY = error_response(
    "Malformed JSON, or a body that is not an object",
    ErrorCode.MALFORMED_JSON,
    ErrorCode.NOT_AN_OBJECT,
)
_TOO_LARGE = error_response("The body is over 1 MiB", ErrorCode.BODY_TOO_LARGE)
_MEDIA = error_response("The content type is not JSON", ErrorCode.UNSUPPORTED_MEDIA_TYPE)
_PAGE = [
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 100},
    },
    {
        "name": "cursor",
        "in": "query",
        "required": False,
        "description": "`next` of the previous page",
        "schema": {"type": "string"},
    },
]
_BAD_PAGE = error_response("A bad limit, status or cursor", ErrorCode.INVALID_PARAMETER)
_ANY_OBJECT = {"type": "object", "additionalProperties": True}


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the engine's management API."""
    flow_id = _path("flowId", "a deployed flow version")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "hookflow engine",
            "version": "1.0.0",
            "description": "Flows, executions, activation outcomes and dead letters.",
        },
        "paths": {
            "/api/automation/flows": {
                "get": {
                    "operationId": "listFlows",
                    "summary": "Every deployed flow version, oldest first, a page at a time",
                    "parameters": _PAGE,
                    "responses": {
                        "200": _page("flows", DeployedFlow, "A page of flow versions"),
                        "400": _BAD_PAGE,
                    },
                },
                "post": {
                    "operationId": "deployFlow",
                    "summary": "Deploy a flow definition as a new version",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref(FlowDefinition)}},
                    },
                    "responses": {
                        "201": _json(_ref(DeployedFlow), "Deployed; each trigger's callback URL"),
                        "400": error_response(
                            "Not a valid definition (every problem listed), or bad JSON",
                            ErrorCode.INVALID_DEFINITION,
                            ErrorCode.MALFORMED_JSON,
                            ErrorCode.NOT_AN_OBJECT,
                        ),
                        "413": _TOO_LARGE,
                        "415": _MEDIA,
                    },
                },
            },
            "/api/automation/flows/{flowId}": {
                "get": {
                    "operationId": "getFlow",
                    "summary": "A flow version with its definition and triggers",
                    "parameters": [flow_id],
                    "responses": {
                        "200": _json(_ref(FlowVersion), "The flow version"),
                        "404": error_response("No such flow", ErrorCode.UNKNOWN_FLOW),
                    },
                }
            },
            "/api/automation/expressions/evaluate": {
                "post": {
                    "operationId": "evaluateExpression",
                    "summary": "Evaluate a CEL expression on a context (the console's tester)",
                    "description": "Under the same cost budget as a flow's expressions.",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["expression"],
                                    "properties": {
                                        "expression": {"type": "string", "minLength": 1},
                                        "context": _ANY_OBJECT,
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": _json(
                            {"type": "object", "required": ["value"], "properties": {"value": {}}},
                            "The value",
                        ),
                        "400": error_response(
                            "The expression does not compile, is over the budget or fails "
                            "(with `position`: {line, column} or null), or a bad request",
                            ErrorCode.INVALID_EXPRESSION,
                            ErrorCode.INVALID_REQUEST,
                            ErrorCode.MALFORMED_JSON,
                        ),
                        "413": _TOO_LARGE,
                        "415": _MEDIA,
                    },
                }
            },
            "/api/automation/flows/{flowId}/triggers/{triggerId}/secret": {
                "post": {
                    "operationId": "rotateSigningSecret",
                    "summary": "Issue a new signing secret for a SIGNATURE trigger",
                    "description": (
                        "The secrets it replaces keep verifying for 24 hours. The new "
                        "secret is shown in this answer only."
                    ),
                    "parameters": [flow_id, _path("triggerId", "a trigger of that version")],
                    "responses": {
                        "201": _json(_ref(IssuedSecret), "The new secret"),
                        "404": error_response(
                            "No such flow or trigger",
                            ErrorCode.UNKNOWN_FLOW,
                            ErrorCode.UNKNOWN_TRIGGER,
                        ),
                        "409": error_response(
                            "The trigger is not a SIGNATURE trigger", ErrorCode.CONFLICT
                        ),
                    },
                }
            },
            "/api/automation/flow/{flowId}/execute": {
                "post": {
                    "operationId": "startExecution",
                    "summary": "Start an execution of a flow version with the body as input",
                    "parameters": [
                        flow_id,
                        {
                            "name": "wait",
                            "in": "query",
                            "required": False,
                            "description": "seconds to wait until the execution exists (a "
                            "start is carried out asynchronously) before answering",
                            "schema": {
                                "type": "integer",
                                "minimum": 0,
                                "maximum": MAX_WAIT_SECONDS,
                                "default": 0,
                            },
                        },
                    ],
                    "requestBody": {
                        "required": False,
                        "content": {"application/json": {"schema": _ANY_OBJECT}},
                    },
                    "responses": {
                        "202": _json(
                            {
                                "type": "object",
                                "required": ["executionId"],
                                "properties": {"executionId": {"type": "string"}},
                            },
                            "Start requested",
                        ),
                        "400": error_response(
                            "Malformed JSON, a body that is not an object, or a bad wait",
                            ErrorCode.MALFORMED_JSON,
                            ErrorCode.NOT_AN_OBJECT,
                            ErrorCode.INVALID_PARAMETER,
                        ),
                        "404": error_response("No such flow", ErrorCode.UNKNOWN_FLOW),
                        "413": error_response(
                            "The body is over 1 MiB, or too large for the broker",
                            ErrorCode.BODY_TOO_LARGE,
                        ),
                        "415": _MEDIA,
                        "503": error_response(
                            "Nothing was accepted: the broker is unavailable",
                            ErrorCode.BROKER_UNAVAILABLE,
                        ),
                    },
                }
            },
            "/api/automation/flow/{flowId}/executions": {
                "get": {
                    "operationId": "listExecutions",
                    "summary": "Executions of a flow version, oldest first, a page at a time",
                    "parameters": [
                        flow_id,
                        {
                            "name": "status",
                            "in": "query",
                            "required": False,
                            "schema": {
                                "type": "string",
                                "enum": ["running", "waiting", "completed", "failed"],
                            },
                        },
                        *_PAGE,
                    ],
                    "responses": {
                        "200": _page("executions", ExecutionView, "A page of executions"),
                        "400": _BAD_PAGE,
                    },
                }
            },
            "/api/automation/executions/{executionId}": {
                "get": {
                    "operationId": "getExecution",
                    "summary": "An execution: status, waits, variables, results, history",
                    "parameters": [_path("executionId", "a UUID")],
                    "responses": {
                        "200": _json(_ref(ExecutionView), "The execution"),
                        "404": error_response("No such execution", ErrorCode.UNKNOWN_EXECUTION),
                    },
                }
            },
            "/api/automation/activations/{activationId}": {
                "get": {
                    "operationId": "getActivation",
                    "summary": "What became of an activation (X-Activation-Id)",
                    "parameters": [_path("activationId", "as the gateway answered it")],
                    "responses": {
                        "200": _json(_ref(ActivationOutcome), "Its outcome"),
                        "404": error_response(
                            "Unknown, not decided yet, or ignored by an IGNORE policy",
                            ErrorCode.UNKNOWN_ACTIVATION,
                        ),
                    },
                }
            },
            "/api/automation/dead-letters": {
                "get": {
                    "operationId": "listDeadLetters",
                    "summary": "Messages the engine gave up on, in the order they were parked",
                    "parameters": _PAGE,
                    "responses": {
                        "200": _page("deadLetters", DeadLetter, "A page of dead letters"),
                        "400": _BAD_PAGE,
                    },
                }
            },
            "/api/automation/dead-letters/{deadLetterId}": {
                "get": {
                    "operationId": "getDeadLetter",
                    "summary": "One dead letter",
                    "parameters": [_path("deadLetterId", "a dead letter's id")],
                    "responses": {
                        "200": _json(_ref(DeadLetter), "The dead letter"),
                        "404": error_response("No such dead letter", ErrorCode.UNKNOWN_DEAD_LETTER),
                    },
                }
            },
            "/api/automation/dead-letters/{deadLetterId}/replay": {
                "post": {
                    "operationId": "replayDeadLetter",
                    "summary": "Publish a dead letter's message again: it is decided as if new",
                    "parameters": [_path("deadLetterId", "a dead letter's id")],
                    "responses": {
                        "202": _json(_ref(DeadLetter), "Published again; replayedAt is set"),
                        "404": error_response("No such dead letter", ErrorCode.UNKNOWN_DEAD_LETTER),
                    },
                }
            },
        },
        "components": {"schemas": _components()},
    }


def _components() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in _MODELS:
        schema = model.model_json_schema(ref_template=_REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas


COMMITTED = Path(__file__).resolve().parents[4] / "docs" / "openapi" / "engine.json"


def rendered() -> str:
    return json.dumps(document(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    COMMITTED.parent.mkdir(parents=True, exist_ok=True)
    COMMITTED.write_text(rendered())
    print(f"wrote {COMMITTED}")
