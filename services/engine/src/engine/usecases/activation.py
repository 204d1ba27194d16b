"""What every step of one activation shares: the activation itself, the answer a use
case gives it, and the questions asked of an execution about it."""

from dataclasses import dataclass
from typing import Any

from engine.core import execution as ex
from engine.core.definition import Flow
from engine.core.expressions import Bindings
from schemas.events import ActivateTrigger, ExecutionStatus, Outcome
from schemas.flows import ExternalCallbackBlock

# an outcome, the executions it names, and a detail for the activation log
Decision = tuple[Outcome, list[str], str | None]

SAVE_ATTEMPTS = 5  # compare-and-sets of one change before it gives up


class ExecutionFault(Exception):
    """Applying a message to this execution failed; the cause is chained."""

    def __init__(self, execution_id: str) -> None:
        super().__init__(f"while applying it to execution {execution_id}")
        self.execution_id = execution_id


class Unread:
    """The caller has not read what the store holds for an activation."""


UNREAD = Unread()


@dataclass(frozen=True)
class Activation:
    """What every step of one activation needs."""

    flow: Flow
    block: ExternalCallbackBlock
    trigger_id: str
    command: ActivateTrigger
    user: dict[str, Any] | None
    bindings: Bindings  # data and user, converted once for every condition evaluated

    @property
    def activation_id(self) -> str:
        return self.command.activationId


def waits_for(state: ex.ExecutionState, act: Activation) -> bool:
    """Whether `state` is of the activation's flow, waits at its trigger, and has not
    applied it yet."""
    return (
        state.flow_id == act.flow.flow_id
        and waits_at(state, act.trigger_id)
        and act.activation_id not in state.applied
    )


def waits_at(state: ex.ExecutionState, trigger_id: str) -> bool:
    return state.status == ExecutionStatus.WAITING and trigger_id in state.waiting_on
