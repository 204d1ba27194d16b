"""Generated documents stay in step with the code."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_asyncapi_document_is_current() -> None:
    spec = importlib.util.spec_from_file_location("generate", ROOT / "docs/asyncapi/generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = (ROOT / "docs/asyncapi/hookflow.json").read_text()
    assert committed == module.rendered(), (
        "docs/asyncapi/hookflow.json is stale: run `make schemas` and commit it"
    )


def test_the_asyncapi_document_names_every_topic_and_payload() -> None:
    text = (ROOT / "docs/asyncapi/hookflow.json").read_text()
    for name in (
        "hookflow.activations",
        "hookflow.execution-starts",
        "hookflow.flow-registry",
        "hookflow.auth-events",
        "hookflow.activation-outcomes",
        "hookflow.execution-events",
        "ActivateTrigger",
        "StartExecution",
        "TriggerRegistered",
        "TokenRevoked",
        "ActivationOutcome",
        "ExecutionResumed",
    ):
        assert name in text, name
