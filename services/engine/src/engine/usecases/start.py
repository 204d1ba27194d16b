"""Start an execution: through the API (a start command) or by an entry trigger's
activation; a redelivered start finds the execution its first delivery created."""

import logging
import uuid
from collections.abc import Callable

from engine.catalog import Catalog
from engine.core import execution as ex
from engine.core.definition import Flow
from engine.ports import Publisher, Store
from engine.usecases.activation import Activation, ExecutionFault
from engine.usecases.buffer import Buffer
from engine.usecases.requests import Requests
from schemas.events import StartExecution

logger = logging.getLogger(__name__)

# Execution ids of entry-trigger starts derive from the activation id, so that a
# redelivered activation finds the execution its first delivery created.
_ENTRY_NAMESPACE = uuid.UUID("6f1b7c1e-3d4a-4e55-9a7e-2b8f0c9d1e21")


class Starts:
    """Creates executions, once each."""

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

    async def start(self, command: StartExecution) -> ex.ExecutionState | None:
        """Start an execution (a redelivered command finds the first one's)."""
        execution_id = command.executionId.lower()
        flow = await self._catalog.compiled(command.flowId)
        if flow is None:
            logger.warning(
                "start for an unknown flow dropped",
                extra={"flow_id": command.flowId, "execution_id": execution_id},
            )
            return None
        return await self._create(
            flow,
            execution_id,
            lambda now: ex.start(
                flow, ex.new_execution(flow, execution_id, command.input, now), now
            ),
        )

    async def from_trigger(self, act: Activation) -> str:
        """Start an execution with an entry trigger's activation; its id."""
        execution_id = str(uuid.uuid5(_ENTRY_NAMESPACE, act.activation_id))
        await self._create(
            act.flow,
            execution_id,
            lambda now: ex.start_from_trigger(
                act.flow, execution_id, act.command.data, act.user, act.activation_id, now
            ),
        )
        return execution_id

    async def _create(
        self, flow: Flow, execution_id: str, first_step: Callable[[int], ex.Step]
    ) -> ex.ExecutionState | None:
        """Create an execution once; a repeat finds the one the first attempt created."""
        try:
            existing = await self._store.get_execution(execution_id)
            if existing is not None:
                # a repeat after a crash: the first attempt may not have looked at the buffer
                await self._buffer.take_buffered(flow, existing)
                return existing
            step = await self._requests.run(flow, first_step(self._now()))
            if await self._store.create_execution(step.state):
                await self._publish.execution_events(step.events)
                await self._buffer.take_buffered(flow, step.state)
                return step.state
            return await self._store.get_execution(execution_id)
        except Exception as exc:
            raise ExecutionFault(execution_id) from exc
