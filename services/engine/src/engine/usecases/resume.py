"""Resume one execution with an activation: a compare-and-set on its version, tried
again on a change, so that a redelivery or a rival resumes it at most once."""

from collections.abc import Callable
from dataclasses import replace

from engine.core import execution as ex
from engine.ports import Publisher, Store
from engine.usecases.activation import SAVE_ATTEMPTS, Activation, waits_at
from engine.usecases.conditions import Conditions
from engine.usecases.requests import Requests


class Resumer:
    """Applies an activation to one execution, exactly once."""

    def __init__(
        self,
        store: Store,
        publisher: Publisher,
        requests: Requests,
        conditions: Conditions,
        clock: Callable[[], int],
    ) -> None:
        self._store = store
        self._publish = publisher
        self._requests = requests
        self._conditions = conditions
        self._now = clock

    async def resume_once(
        self, act: Activation, state: ex.ExecutionState | None, checked: bool
    ) -> ex.ExecutionState | None:
        """The execution as `act` left it, or None when it no longer waits for `act`.

        Args:
            checked: the condition held for this very `state` (a save over it needs no
                second look; a state read again is looked at again).
        """
        for _ in range(SAVE_ATTEMPTS):
            if state is None:
                return None
            if act.activation_id in state.applied:
                return state  # an earlier delivery resumed it
            if not waits_at(state, act.trigger_id):
                return None
            if not checked and not await self._conditions.holds(act, state):
                return None
            now = self._now()
            step = ex.resume(
                act.flow,
                state,
                act.trigger_id,
                act.command.data,
                act.user,
                act.activation_id,
                now,
            )
            step = await self._requests.run(act.flow, step)
            saved = replace(step.state, version=state.version + 1)
            if await self._store.save_execution(saved):
                await self._publish.execution_events(step.events)
                return saved
            # changed since it was read: read it again and decide again
            state, checked = await self._store.get_execution(state.execution_id), False
        raise RuntimeError(
            f"execution {state and state.execution_id} keeps changing "
            f"under activation {act.activation_id}"
        )
