from pydantic import BaseModel

from schemas import events, export


def test_committed_json_schemas_match_the_models() -> None:
    committed = {p.name: p.read_text() for p in export.DEFAULT_DIR.glob("*.json")}
    assert committed == export.rendered(), (
        "schemas/jsonschema is stale: run `make schemas` and commit the result"
    )


def test_every_message_model_is_exported() -> None:
    messages = {
        value
        for name, value in vars(events).items()
        if isinstance(value, type)
        and issubclass(value, BaseModel)
        and value.__module__ == events.__name__
        and not name.startswith("_")
    }
    assert messages == set(export.MODELS)
