"""The pieces the engine's OpenAPI paths are made of: references, pages, errors."""

from typing import Any

from pydantic import BaseModel

from engine.http import MAX_PAGE
from schemas.activations import (
    ActivationRecord,
    ActivationSummary,
    ReplayAnswer,
    Replayed,
    ReplayRequest,
)
from schemas.errors import ErrorBody, ErrorCode, error_response
from schemas.events import ActivationOutcome, DeadLetter
from schemas.executions import ExecutionView
from schemas.flows import DeployedFlow, FlowDefinition, FlowVersion, IssuedSecret
from schemas.system import SystemFigures

REF = "#/components/schemas/{model}"

MODELS: tuple[type[BaseModel], ...] = (
    ErrorBody,
    FlowDefinition,
    DeployedFlow,
    FlowVersion,
    IssuedSecret,
    ExecutionView,
    ActivationOutcome,
    ActivationRecord,
    ReplayRequest,
    Replayed,
    ReplayAnswer,
    ActivationSummary,
    SystemFigures,
    DeadLetter,
)


def ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def json_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def page(items: str, model: type[BaseModel], description: str) -> dict[str, Any]:
    """A page of `model`s under `items`, with the cursor of the next page."""
    return json_body(
        {
            "type": "object",
            "required": [items, "next"],
            "properties": {
                items: {"type": "array", "items": ref(model)},
                "next": {"type": ["string", "null"]},
            },
        },
        description,
    )


def path_param(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


BAD_BODY = error_response(
    "Malformed JSON, or a body that is not an object",
    ErrorCode.MALFORMED_JSON,
    ErrorCode.NOT_AN_OBJECT,
)
TOO_LARGE = error_response("The body is over 1 MiB", ErrorCode.BODY_TOO_LARGE)
MEDIA = error_response("The content type is not JSON", ErrorCode.UNSUPPORTED_MEDIA_TYPE)
PAGE = [
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
BAD_PAGE = error_response("A bad limit, status or cursor", ErrorCode.INVALID_PARAMETER)
ANY_OBJECT = {"type": "object", "additionalProperties": True}
