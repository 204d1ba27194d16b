"""The engine's OpenAPI paths of FlowRunner's execution API: context, status, block
result, stop, the blocking call."""

from typing import Any

from engine.http.runs import DEFAULT_BLOCKING_SECONDS, MAX_BLOCKING_SECONDS, RUNNER_STATUSES
from engine.openapi.shapes import ANY_OBJECT, json_body, path_param
from schemas.errors import ErrorCode, error_response

_RUNNER_STATUS = {"type": "string", "enum": RUNNER_STATUSES}
_NULLABLE_INT = {"type": ["integer", "null"]}
_STATUS = {
    "type": "object",
    "properties": {
        "executionId": {"type": "string"},
        "flowId": {"type": "string"},
        "flowName": {"type": ["string", "null"]},
        "flowVersion": _NULLABLE_INT,
        "status": _RUNNER_STATUS,
        "startedAt": {"type": "integer", "description": "epoch milliseconds"},
        "finishedAt": _NULLABLE_INT,
        "durationMs": _NULLABLE_INT,
        "completion": {"type": ["string", "null"], "enum": ["NORMAL", "ERROR", None]},
        "hasErrors": {"type": "boolean"},
        "error": {"type": ["string", "null"]},
    },
}
_READ_REFUSED = error_response(
    "Not the admin key, FlowAdmin, FlowViewer, nor the user who started or resumed it",
    ErrorCode.ACCESS_DENIED,
)
_NOT_FOUND = error_response(
    "No such execution, or one of another flow", ErrorCode.EXECUTION_NOT_FOUND
)


def run_paths() -> dict[str, Any]:
    flow = "/api/automation/flow"
    execution = flow + "/{flowId}/execution/{executionId}"
    ids = [
        path_param("flowId", "the execution's flow version"),
        path_param("executionId", "a UUID"),
    ]
    return {
        flow + "/execution-context/{executionId}": {
            "get": {
                "operationId": "getExecutionContext",
                "summary": "What an execution's expressions see: input, vars, results, user",
                "parameters": [path_param("executionId", "a UUID")],
                "responses": {
                    "200": json_body(
                        {
                            "type": "object",
                            "properties": {
                                "executionId": {"type": "string"},
                                "flowId": {"type": "string"},
                                "status": _RUNNER_STATUS,
                                "input": ANY_OBJECT,
                                "vars": ANY_OBJECT,
                                "results": ANY_OBJECT,
                                "user": {"type": ["object", "null"]},
                            },
                        },
                        "The context",
                    ),
                    "401": _READ_REFUSED,
                    "403": _READ_REFUSED,
                    "404": _NOT_FOUND,
                },
            }
        },
        execution: {
            "get": {
                "operationId": "getExecutionStatus",
                "summary": "An execution's status, as FlowRunner answers it",
                "parameters": ids,
                "responses": {
                    "200": json_body(_STATUS, "Its status"),
                    "401": _READ_REFUSED,
                    "403": _READ_REFUSED,
                    "404": _NOT_FOUND,
                },
            }
        },
        execution + "/block/result": {
            "get": {
                "operationId": "getBlockResult",
                "summary": "A block's result: its latest pass, or the one `occurrence` names",
                "parameters": [
                    *ids,
                    {
                        "name": "alias",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "occurrence",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1},
                    },
                ],
                "responses": {
                    "200": json_body(
                        {
                            "type": "object",
                            "properties": {
                                "executionId": {"type": "string"},
                                "alias": {"type": "string"},
                                "executedAt": {"type": "integer"},
                                "occurrence": {"type": "integer"},
                                "occurrenceCount": {"type": "integer"},
                                "result": ANY_OBJECT,
                            },
                        },
                        "The result",
                    ),
                    "400": error_response(
                        "No alias, or an occurrence out of range",
                        ErrorCode.INVALID_PARAMETER,
                        ErrorCode.OCCURRENCE_OUT_OF_RANGE,
                    ),
                    "401": _READ_REFUSED,
                    "403": _READ_REFUSED,
                    "404": error_response(
                        "No such execution; a block that did not run in a finished one; a "
                        "block that has not run yet",
                        ErrorCode.EXECUTION_NOT_FOUND,
                        ErrorCode.BLOCK_UNKNOWN,
                        ErrorCode.BLOCK_NOT_RUN,
                    ),
                },
            }
        },
        execution + "/stop": {
            "post": {
                "operationId": "stopExecution",
                "summary": "End an execution TERMINATED; its waits are released",
                "parameters": ids,
                "responses": {
                    "200": json_body(_STATUS, "Its status after the stop"),
                    "401": _READ_REFUSED,
                    "403": error_response(
                        "Not the admin key, FlowAdmin, nor the user who started it",
                        ErrorCode.ACCESS_DENIED,
                    ),
                    "404": _NOT_FOUND,
                    "409": error_response(
                        "It has completed or failed already", ErrorCode.EXECUTION_ENDED
                    ),
                },
            }
        },
        flow + "/{flowIdOrName}/activate-blocking": {
            method: _blocking(method) for method in ("get", "post")
        },
    }


def _blocking(method: str) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": f"activateBlocking{method.capitalize()}",
        "summary": "Start a flow (the live version of a name) and answer when the execution "
        "ends or reaches a `return` block; the query (and the body) is the initial data",
        "parameters": [
            path_param("flowIdOrName", "a flow version's id, or a flow's name"),
            {
                "name": "waitResponseTimeoutSeconds",
                "in": "query",
                "required": False,
                "schema": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_BLOCKING_SECONDS,
                    "default": DEFAULT_BLOCKING_SECONDS,
                },
            },
        ],
        "responses": {
            "200": json_body(
                {
                    "type": "object",
                    "properties": {
                        "executionId": {"type": ["string", "null"]},
                        "status": {"type": ["string", "null"]},
                        "result": {},
                    },
                },
                "The execution ended or returned (all null: an IGNORE policy dropped it)",
            ),
            "400": error_response(
                "A bad wait or a key in both query and body; or the wait ran out",
                ErrorCode.BLOCKING_INVALID,
                ErrorCode.BLOCKING_TIMEOUT,
                ErrorCode.MALFORMED_JSON,
                ErrorCode.NOT_AN_OBJECT,
            ),
            "401": error_response(
                "The start block's rules refuse the caller", ErrorCode.AUTH_FAILED
            ),
            "403": error_response("A role the start block needs is missing", ErrorCode.AUTH_FAILED),
            "404": error_response("No flow has this id or name", ErrorCode.UNKNOWN_FLOW_NAME),
            "503": error_response("The broker is unavailable", ErrorCode.BROKER_UNAVAILABLE),
        },
    }
    if method == "post":
        operation["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": ANY_OBJECT}},
        }
    return operation
