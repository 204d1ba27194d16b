"""Time out the waits whose deadline has come (`timeoutSeconds`)."""

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace

from engine.catalog import Catalog
from engine.core import execution as ex
from engine.ports import Publisher, Store, Timer
from engine.usecases.activation import SAVE_ATTEMPTS
from engine.usecases.buffer import Buffer
from engine.usecases.requests import Requests
from schemas.events import ExecutionStatus

logger = logging.getLogger(__name__)

_TIMERS_AT_ONCE = 16  # due timeouts fired concurrently in one round


class Timers:
    """Fires due timers."""

    def __init__(
        self,
        catalog: Catalog,
        store: Store,
        publisher: Publisher,
        requests: Requests,
        buffer: Buffer,
        clock: Callable[[], int],
    ) -> None:
        self._catalog = catalog
        self._store = store
        self._publish = publisher
        self._requests = requests
        self._buffer = buffer
        self._now = clock

    async def fire(self, limit: int = 500) -> int:
        """Time out the waits whose deadline has come; return how many timed out.

        A timeout and an activation of the same wait race through the same
        compare-and-set on the execution: exactly one of them wins. Several engines may
        fire the same timer; only one save succeeds, the others find the wait gone.
        """
        slots = asyncio.Semaphore(_TIMERS_AT_ONCE)  # each is another execution's

        async def fire(timer: Timer) -> int:
            async with slots:
                try:
                    fired = await self._time_out(timer.execution_id, timer.due)
                except Exception:
                    logger.exception("timeout failed", extra={"execution_id": timer.execution_id})
                    return 0  # tried again at the next tick
                await self._store.drop_timer(timer.timer_id)
                return int(fired)

        due = await self._store.due_timers(self._now(), limit)
        return sum(await asyncio.gather(*(fire(timer) for timer in due)))

    async def _time_out(self, execution_id: str, due: int) -> bool:
        for _ in range(SAVE_ATTEMPTS):
            state = await self._store.get_execution(execution_id)
            if state is None or state.status != ExecutionStatus.WAITING or state.deadline != due:
                return False  # resumed, failed or waiting again since: nothing to do
            flow = await self._catalog.compiled(state.flow_id)
            if flow is None:
                return False
            step = await self._requests.run(flow, ex.time_out(flow, state, self._now()))
            saved = replace(step.state, version=state.version + 1)
            if await self._store.save_execution(saved):
                await self._publish.execution_events(step.events)
                logger.info("wait timed out", extra={"execution_id": execution_id})
                await self._buffer.take_buffered(flow, saved)
                return True
        return False
