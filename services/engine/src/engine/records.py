"""What the engine stores besides executions: deployed flows and waits."""

from dataclasses import dataclass
from typing import Any

from engine.core.execution import ExecutionState
from schemas.flows import FlowDefinition


@dataclass(frozen=True)
class FlowRecord:
    """A deployed flow version as stored."""

    flow_id: str
    name: str
    version: int
    created: int
    definition: FlowDefinition
    trigger_ids: dict[str, str]  # block name -> trigger id
    live: bool = True


@dataclass(frozen=True)
class Wait:
    """One execution waiting at one trigger.

    `snapshot` is the execution's expression context when it began waiting, so that a
    condition is evaluated from the wait alone. `activation_id` is set once claimed.
    """

    wait_id: str
    execution_id: str
    flow_id: str
    trigger_id: str
    created: int
    snapshot: dict[str, Any]
    activation_id: str | None = None
    rev: int = 0  # the execution's revision that began this wait
    # the execution as the store read it to find this wait (execution=<id>), so that
    # resuming does not read it again; a newer revision fails the save and is read then
    execution: ExecutionState | None = None

    @staticmethod
    def make_id(execution_id: str, trigger_id: str, wait_seq: int) -> str:
        """Deterministic id: recording the same wait again is a no-op."""
        return f"{execution_id}:{trigger_id}:{wait_seq}"
