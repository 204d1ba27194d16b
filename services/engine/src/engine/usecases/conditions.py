"""A trigger's condition, per waiting execution: in place when its cost is bounded,
else in a worker under the time limit."""

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from engine.core import execution as ex
from engine.core.expressions import ExpressionError
from engine.core.matching import ConditionResult, condition_holds, judge
from engine.ports import Evaluator, Store
from engine.usecases.activation import SAVE_ATTEMPTS, Activation


class Conditions:
    """Whether an activation's condition holds for an execution."""

    def __init__(self, store: Store, expressions: Evaluator, clock: Callable[[], int]) -> None:
        self._store = store
        self._expressions = expressions
        self._now = clock

    async def holds(self, act: Activation, state: ex.ExecutionState) -> bool:
        """The condition for `state`; an error counts as FALSE, noted in its history."""
        check = await self.evaluate(act, ex.context(act.flow, state))
        if check.error:
            await self._note(state, act.block.name, check.error)
        return check.holds

    async def evaluate(self, act: Activation, snapshot: dict[str, Any]) -> ConditionResult:
        """The trigger's condition for one execution: in place when its cost is bounded,
        else in a worker under the time limit (cut off: FALSE, with the reason)."""
        if act.block.condition is None or act.block.name not in act.flow.guarded_blocks:
            return condition_holds(act.flow, act.block, snapshot, act.bindings)
        context = {**snapshot, "data": act.command.data, "user": act.user}
        try:
            values = await self._expressions(
                [("condition", act.block.condition)], context, assigns=False
            )
        except ExpressionError as exc:
            return ConditionResult(False, str(exc))
        return judge(values["condition"])

    async def _note(self, state: ex.ExecutionState, block: str, error: str) -> None:
        """Record a condition error in the execution's history (best effort, CAS)."""
        current: ex.ExecutionState | None = state
        for _ in range(SAVE_ATTEMPTS):
            if current is None:
                return
            entry = {"at": self._now(), "event": "condition_error", "block": block, "detail": error}
            noted = replace(
                current,
                history=(*current.history, entry)[-ex.MAX_HISTORY :],
                version=current.version + 1,
            )
            if await self._store.save_execution(noted):
                return
            current = await self._store.get_execution(state.execution_id)
