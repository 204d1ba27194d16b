"""The engine's OpenAPI document (the management API), also committed under docs/openapi/
(`python -m engine.openapi`, `make schemas`)."""

import json
from pathlib import Path
from typing import Any

from engine.openapi.activations import activation_paths
from engine.openapi.executions import execution_paths
from engine.openapi.flows import flow_paths
from engine.openapi.letters import letter_paths
from engine.openapi.runs import run_paths
from engine.openapi.shapes import MODELS, REF


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the engine's management API."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "hookflow engine",
            "version": "1.0.0",
            "description": "Flows, executions, activation outcomes and dead letters.",
        },
        "paths": {
            **flow_paths(),
            **execution_paths(),
            **activation_paths(),
            **letter_paths(),
            **run_paths(),
        },
        "components": {"schemas": _components()},
    }


def _components() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in MODELS:
        schema = model.model_json_schema(ref_template=REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas


COMMITTED = Path(__file__).resolve().parents[5] / "docs" / "openapi" / "engine.json"


def rendered() -> str:
    return json.dumps(document(), indent=2, sort_keys=True) + "\n"
