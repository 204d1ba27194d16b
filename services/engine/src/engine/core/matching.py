"""Decide what an activation does: auth re-check (the rule in `schemas.callbacks`), conditions."""

from dataclasses import dataclass
from typing import Any

from engine.core.definition import Flow
from engine.core.expressions import Bindings, ExpressionError
from schemas.callbacks import AuthCheck, check_user
from schemas.events import Outcome
from schemas.flows import ExternalCallbackBlock
from schemas.users import User


@dataclass(frozen=True)
class ConditionResult:
    holds: bool
    error: str | None = None


def authorized(trigger: ExternalCallbackBlock, user: User | None) -> bool:
    """Whether `user` passes the trigger's authentication type and required roles."""
    return check_user(trigger.authenticationType, trigger.requiredRoles, user) == AuthCheck.PASSED


def activation_bindings(data: dict[str, Any], user: dict[str, Any] | None) -> Bindings:
    """The names an activation binds for its conditions, converted once for all of them."""
    return Bindings({"data": data, "user": user})


def condition_holds(
    flow: Flow,
    block: ExternalCallbackBlock,
    snapshot: dict[str, Any],
    activation: Bindings,
) -> ConditionResult:
    """Evaluate the block's condition for one waiting execution, in place.

    `snapshot` is the execution's expression context taken when it started waiting;
    `activation` binds `data` and `user` of the incoming activation. A runtime error
    counts as FALSE and is reported so that it can be recorded in the execution's history.
    """
    if block.condition is None:
        return ConditionResult(True)
    activation.own = snapshot
    try:
        value = flow.expression(block.name, "condition").evaluate(activation)
    except ExpressionError as exc:
        return ConditionResult(False, str(exc))
    return judge(value)


def judge(value: Any) -> ConditionResult:
    """A condition's value as a result: only `true` holds; a non-boolean is an error."""
    if not isinstance(value, bool):
        return ConditionResult(
            False, f"condition gave {type(value).__name__} {value!r}, not a boolean"
        )
    return ConditionResult(value)


def outcome(filtered: int, activated: int) -> Outcome:
    """The outcome once every candidate was considered.

    `filtered` counts executions left waiting because their condition was false; one
    that another activation claimed first, or that no longer waits, counts for nothing.
    """
    if activated:
        return Outcome.ACTIVATED
    return Outcome.FILTERED if filtered else Outcome.NO_WAITER
