"""Generate docs/asyncapi/hookflow.json from the services' FastStream brokers.

    .venv/bin/python docs/asyncapi/generate.py      (or: make schemas)

Every channel, payload and description comes from the subscribers and publishers the
services declare; a test fails when the committed document is stale.
"""

import json
import logging
from pathlib import Path
from typing import Any

from faststream.specification import AsyncAPI

from auth.app import create_app as auth_app
from auth.settings import Settings as AuthSettings
from engine.app import create_app as engine_app
from engine.settings import Settings as EngineSettings
from gateway.app import create_app as gateway_app
from gateway.settings import Settings as GatewaySettings

TARGET = Path(__file__).resolve().parent / "hookflow.json"
DESCRIPTION = (
    "Topics of hookflow under the default prefix `hookflow`. Services may publish "
    "ActivateTrigger to `hookflow.activations` directly (with `userToken` instead of "
    "`user`): the engine applies the trigger's auth policy, condition and idempotency key "
    "exactly as for a call through the gateway, and records IGNORED_AUTH on an auth failure."
)


def rendered() -> str:
    logging.disable(logging.CRITICAL)  # building the apps must not print configuration noise
    try:
        apps = [
            gateway_app(GatewaySettings(), configure_logging=False),
            engine_app(EngineSettings(), configure_logging=False),
            auth_app(AuthSettings(), configure_logging=False),
        ]
    finally:
        logging.disable(logging.NOTSET)
    spec = AsyncAPI(
        *(app.state.broker for app in apps),
        title="hookflow",
        version="1.0.0",
        description=DESCRIPTION,
    )
    document = spec.to_specification().to_jsonable()
    return json.dumps(_one_record_per_message(document), indent=2, sort_keys=True) + "\n"


def _one_record_per_message(document: dict[str, Any]) -> dict[str, Any]:
    """Show a batch subscriber's payload as what travels: one record per Kafka message.

    FastStream describes a batch subscriber's payload as an array of its records; a
    producer still publishes each record as a message of its own.
    """
    schemas = document.get("components", {}).get("schemas", {})
    for message in document.get("components", {}).get("messages", {}).values():
        ref = message.get("payload", {}).get("$ref", "")
        name = ref.rsplit("/", 1)[-1]
        schema = schemas.get(name, {})
        if schema.get("type") == "array" and "$ref" in schema.get("items", {}):
            message["payload"] = {"$ref": schema["items"]["$ref"]}
            del schemas[name]
    return document


if __name__ == "__main__":
    TARGET.write_text(rendered())
    print(f"wrote {TARGET}")
