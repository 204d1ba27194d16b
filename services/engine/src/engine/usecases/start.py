"""Start an execution: through the API (a start command) or by an entry trigger's
activation; a redelivered start finds the execution its first delivery created."""

import logging
import uuid
from collections.abc import Callable
from typing import Any

from engine.catalog import Catalog
from engine.core import execution as ex
from engine.core.definition import Flow
from engine.core.expressions import ExpressionError
from engine.core.matching import ConditionResult, judge
from engine.ports import Evaluator, Publisher, Store, TokenResolver
from engine.usecases.activation import Activation, ExecutionFault
from engine.usecases.buffer import Buffer
from engine.usecases.requests import Requests
from schemas.events import ExecutionStarted, StartExecution
from schemas.flows import StartBlock
from schemas.signing import start_nonce, user_is_signed
from schemas.users import UserStatus

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
        starters: tuple[TokenResolver, str | None, Evaluator],
    ) -> None:
        self._catalog = catalog
        self._store = store
        self._publish = publisher
        self._requests = requests
        self._buffer = buffer
        self._now = clock
        # who started an execution (a token, or a user the gateway signed with the
        # activation key), and the start block's condition
        self._tokens, self._activation_key, self._expressions = starters

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
        user = await self._starter(command)
        fresh = ex.new_execution(flow, execution_id, command.input, self._now(), user)
        check = await self._start_condition(flow, fresh)
        if not check.holds:
            reason = check.error or "the start condition is false"
            return await self._create(
                flow, execution_id, lambda now: _not_started(fresh, now, reason)
            )
        return await self._create(
            flow,
            execution_id,
            lambda now: ex.start(
                flow, ex.new_execution(flow, execution_id, command.input, now, user), now
            ),
        )

    async def _starter(self, command: StartExecution) -> dict[str, Any] | None:
        """The user who asked for the start: signed by a gateway, or its token's."""
        nonce = start_nonce(command.executionId.lower())
        user = None
        if command.user is not None and user_is_signed(
            self._activation_key, nonce, command.user.as_context(), command.userSignature
        ):
            user = command.user
        elif command.userToken:
            user = await self._tokens.resolve(command.userToken)
        if user is None or user.userStatus != UserStatus.ENABLED:
            return None
        return user.as_context()

    async def _start_condition(self, flow: Flow, fresh: ex.ExecutionState) -> ConditionResult:
        """The start block's condition, with `data` the initial data, in a worker under
        the time limit; TRUE without one."""
        block = flow.blocks[flow.entry]
        if not isinstance(block, StartBlock) or block.condition is None:
            return ConditionResult(True)
        context = {**ex.context(flow, fresh), "data": fresh.input}
        try:
            values = await self._expressions(
                [("condition", block.condition)], context, assigns=False
            )
        except ExpressionError as exc:
            return ConditionResult(False, str(exc))
        return judge(values["condition"])

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


def _not_started(fresh: ex.ExecutionState, now: int, reason: str) -> ex.Step:
    """An execution whose start condition failed: recorded TERMINATED, nothing run."""
    started = ExecutionStarted(executionId=fresh.execution_id, flowId=fresh.flow_id, at=now)
    step = ex.terminate(ex.log(fresh, now, "started"), now, reason)
    return ex.Step(step.state, [started, *step.events])
