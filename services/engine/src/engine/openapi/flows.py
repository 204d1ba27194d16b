"""The engine's OpenAPI paths of flows: deploy, list, read, rotate a secret; the
expression tester."""

from typing import Any

from engine.openapi.shapes import (
    ANY_OBJECT,
    BAD_PAGE,
    MEDIA,
    PAGE,
    TOO_LARGE,
    json_body,
    page,
    path_param,
    ref,
)
from schemas.errors import ErrorCode, error_response
from schemas.flows import DeployedFlow, FlowDefinition, FlowVersion, IssuedSecret


def flow_paths() -> dict[str, Any]:
    flow_id = path_param("flowId", "a deployed flow version")
    return {
        "/api/automation/flows": {
            "get": {
                "operationId": "listFlows",
                "summary": "Every deployed flow version, oldest first, a page at a time",
                "parameters": PAGE,
                "responses": {
                    "200": page("flows", DeployedFlow, "A page of flow versions"),
                    "400": BAD_PAGE,
                },
            },
            "post": {
                "operationId": "deployFlow",
                "summary": "Deploy a flow definition as a new version",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": ref(FlowDefinition)}},
                },
                "responses": {
                    "201": json_body(ref(DeployedFlow), "Deployed; each trigger's callback URL"),
                    "400": error_response(
                        "Not a valid definition (every problem listed), or bad JSON",
                        ErrorCode.INVALID_DEFINITION,
                        ErrorCode.MALFORMED_JSON,
                        ErrorCode.NOT_AN_OBJECT,
                    ),
                    "413": TOO_LARGE,
                    "415": MEDIA,
                },
            },
        },
        "/api/automation/flows/{flowId}": {
            "get": {
                "operationId": "getFlow",
                "summary": "A flow version with its definition and triggers",
                "parameters": [flow_id],
                "responses": {
                    "200": json_body(ref(FlowVersion), "The flow version"),
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
                                    "context": ANY_OBJECT,
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": json_body(
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
                    "413": TOO_LARGE,
                    "415": MEDIA,
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
                "parameters": [flow_id, path_param("triggerId", "a trigger of that version")],
                "responses": {
                    "201": json_body(ref(IssuedSecret), "The new secret"),
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
    }
