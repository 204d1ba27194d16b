"""Stop an execution through the API: it ends TERMINATED and its waits are released (a
later activation of them finds NO_WAITER); one that has ended already stays as it is."""

from collections.abc import Callable
from dataclasses import replace

from engine.core import execution as ex
from engine.ports import Publisher, Store
from engine.usecases.activation import SAVE_ATTEMPTS
from schemas.events import ExecutionStatus

ENDED = (ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.TERMINATED)


class Stops:
    """Terminates executions, by a compare-and-set on their version: a resume that
    raced it and lost reads the execution again and finds it no longer waiting."""

    def __init__(self, store: Store, publisher: Publisher, clock: Callable[[], int]) -> None:
        self._store = store
        self._publish = publisher
        self._now = clock

    async def stop(self, execution_id: str, reason: str) -> ex.ExecutionState | None:
        """The execution after the stop (as it was, if it had ended); None: unknown."""
        for _ in range(SAVE_ATTEMPTS):
            state = await self._store.get_execution(execution_id)
            if state is None or state.status in ENDED:
                return state
            step = ex.terminate(state, self._now(), reason)
            stopped = replace(step.state, version=state.version + 1)
            if await self._store.save_execution(stopped):
                await self._publish.execution_events(step.events)
                return stopped
        raise RuntimeError(f"execution {execution_id} kept changing while it was stopped")
