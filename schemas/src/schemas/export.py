"""Export every Kafka message model as JSON Schema: `python -m schemas.export [DIR]`.

The files are committed; a test fails when they are stale.
"""

import json
import sys
from pathlib import Path

from pydantic import BaseModel

from schemas import events

MODELS: tuple[type[BaseModel], ...] = (
    events.StartExecution,
    events.ActivateTrigger,
    events.ActivationOutcome,
    events.ExecutionStarted,
    events.ExecutionWaiting,
    events.ExecutionResumed,
    events.ExecutionCompleted,
    events.ExecutionFailed,
    events.ExecutionTerminated,
    events.FlowVersionRegistered,
    events.TriggerRegistered,
    events.TokenRevoked,
    events.RolesChanged,
    events.UserDisabled,
    events.DeadLetter,
    events.QuotaSpent,
    events.ActivationRefused,
)

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "jsonschema"


def rendered() -> dict[str, str]:
    """File name -> JSON Schema text, for every model."""
    return {
        f"{model.__name__}.json": json.dumps(model.model_json_schema(), indent=2, sort_keys=True)
        + "\n"
        for model in MODELS
    }


def main(argv: list[str]) -> int:
    target = Path(argv[1]) if len(argv) > 1 else DEFAULT_DIR
    target.mkdir(parents=True, exist_ok=True)
    files = rendered()
    for stale in set(p.name for p in target.glob("*.json")) - set(files):
        (target / stale).unlink()
    for name, text in files.items():
        (target / name).write_text(text)
    print(f"wrote {len(files)} schemas to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
