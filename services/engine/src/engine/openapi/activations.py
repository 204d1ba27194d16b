"""The engine's OpenAPI paths of the activation log: list, read, replay."""

from typing import Any

from engine.openapi.shapes import BAD_BODY, BAD_PAGE, PAGE, json_body, page, path_param, ref
from schemas.activations import (
    ActivationRecord,
    ActivationSummary,
    ReplayAnswer,
    Replayed,
    ReplayRequest,
)
from schemas.errors import ErrorCode, error_response
from schemas.events import Outcome
from schemas.system import SystemFigures

_UNKNOWN = error_response(
    "Unknown, not decided yet, or ignored by an IGNORE policy", ErrorCode.UNKNOWN_ACTIVATION
)


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


_FILTERS = [
    _query("flowId", "a flow version's id", {"type": "string"}),
    _query("triggerId", "a trigger's id", {"type": "string"}),
    _query(
        "outcome",
        "one outcome or several, comma-separated: " + ", ".join(o.value for o in Outcome),
        {"type": "string"},
    ),
    _query("since", "received at or after: epoch ms or ISO 8601 with offset", {"type": "string"}),
    _query("until", "received before: epoch ms or ISO 8601 with offset", {"type": "string"}),
]


def activation_paths() -> dict[str, Any]:
    return {
        "/api/automation/activations": {
            "get": {
                "operationId": "listActivations",
                "summary": "The activation log, newest received first: outcomes and why",
                "parameters": [*_FILTERS, *PAGE],
                "responses": {
                    "200": page("activations", ActivationRecord, "A page of the log"),
                    "400": BAD_PAGE,
                },
            }
        },
        "/api/automation/activations/summary": {
            "get": {
                "operationId": "summarizeActivations",
                "summary": "The log counted per trigger and outcome over time (the last hour "
                "in minutes unless since, until, bucketSeconds say otherwise; at most 1,440 "
                "buckets, 100,000 records, the newest)",
                "parameters": [
                    *_FILTERS,
                    _query("bucketSeconds", "1 to 86400 seconds (60)", {"type": "integer"}),
                ],
                "responses": {
                    "200": json_body(ref(ActivationSummary), "Counts per bucket, oldest first"),
                    "400": BAD_PAGE,
                },
            }
        },
        "/api/automation/system": {
            "get": {
                "operationId": "systemFigures",
                "summary": "The deployment's totals over the last hour, sampled from Kafka's "
                "offsets: accepted and decided activations, refusals, starts, dead letters",
                "responses": {"200": json_body(ref(SystemFigures), "Samples, oldest first")},
            }
        },
        "/api/automation/activations/replay": {
            "post": {
                "operationId": "replayActivations",
                "summary": "Replay every matching activation whose body is kept (FlowAdmin)",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": ref(ReplayRequest)}},
                },
                "responses": {
                    "202": json_body(ref(ReplayAnswer), "Published again, each a new activation"),
                    "400": BAD_BODY,
                },
            }
        },
        "/api/automation/activations/{activationId}": {
            "get": {
                "operationId": "getActivation",
                "summary": "What became of an activation (X-Activation-Id), why, and its body",
                "parameters": [path_param("activationId", "as the gateway answered it")],
                "responses": {
                    "200": json_body(ref(ActivationRecord), "Its record in the log"),
                    "404": _UNKNOWN,
                },
            }
        },
        "/api/automation/activations/{activationId}/replay": {
            "post": {
                "operationId": "replayActivation",
                "summary": "Send an activation again as a new one with replayOf (FlowAdmin); "
                "the same one replayed twice is one replay",
                "parameters": [path_param("activationId", "as the gateway answered it")],
                "responses": {
                    "202": json_body(ref(Replayed), "Published"),
                    "404": _UNKNOWN,
                    "409": error_response("Its body is no longer kept", ErrorCode.CONFLICT),
                },
            }
        },
    }
