"""Give up on an execution a message kept failing on: it ends `failed` with the reason."""

from collections.abc import Callable
from dataclasses import replace

from engine.catalog import Catalog
from engine.core import execution as ex
from engine.ports import Publisher, Store
from engine.usecases.activation import SAVE_ATTEMPTS
from schemas.events import ExecutionStatus, StartExecution


class Failures:
    """Fails executions for the dead letters."""

    def __init__(
        self, catalog: Catalog, store: Store, publisher: Publisher, clock: Callable[[], int]
    ) -> None:
        self._catalog = catalog
        self._store = store
        self._publish = publisher
        self._now = clock

    async def give_up(
        self, execution_id: str, reason: str, start: StartExecution | None = None
    ) -> bool:
        """Fail an execution a message kept failing on (a start creates it failed).

        Returns whether it was failed now; one already ended is left as it is.
        """
        for _ in range(SAVE_ATTEMPTS):
            state = await self._store.get_execution(execution_id)
            now = self._now()
            if state is None:
                flow = await self._catalog.compiled(start.flowId) if start else None
                if start is None or flow is None:
                    return False
                fresh = ex.new_execution(flow, execution_id, start.input, now)
                step = ex.give_up(fresh, reason, now)
                if await self._store.create_execution(step.state):
                    await self._publish.execution_events(step.events)
                    return True
                continue
            if state.status in (
                ExecutionStatus.COMPLETED,
                ExecutionStatus.FAILED,
                ExecutionStatus.TERMINATED,
            ):
                return False
            step = ex.give_up(state, reason, now)
            if await self._store.save_execution(replace(step.state, version=state.version + 1)):
                await self._publish.execution_events(step.events)
                return True
        return False
