"""The engine's OpenAPI paths of executions: start, list, read; an activation's outcome."""

from typing import Any

from engine.http import MAX_WAIT_SECONDS
from engine.openapi.shapes import (
    ANY_OBJECT,
    BAD_PAGE,
    MEDIA,
    PAGE,
    json_body,
    page,
    path_param,
    ref,
)
from schemas.errors import ErrorCode, error_response
from schemas.executions import ExecutionView


def execution_paths() -> dict[str, Any]:
    flow_id = path_param("flowId", "a deployed flow version")
    return {
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
                    "content": {"application/json": {"schema": ANY_OBJECT}},
                },
                "responses": {
                    "202": json_body(
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
                    "415": MEDIA,
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
                            "enum": ["running", "waiting", "completed", "failed", "terminated"],
                        },
                    },
                    *PAGE,
                ],
                "responses": {
                    "200": page("executions", ExecutionView, "A page of executions"),
                    "400": BAD_PAGE,
                },
            }
        },
        "/api/automation/executions/{executionId}": {
            "get": {
                "operationId": "getExecution",
                "summary": "An execution: status, waits, variables, results, history",
                "parameters": [path_param("executionId", "a UUID")],
                "responses": {
                    "200": json_body(ref(ExecutionView), "The execution"),
                    "404": error_response("No such execution", ErrorCode.UNKNOWN_EXECUTION),
                },
            }
        },
    }
