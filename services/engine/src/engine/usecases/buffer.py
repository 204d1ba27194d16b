"""The early-callback buffer (`bufferSeconds`): activations that found no waiter are
kept, and an execution that begins waiting takes the oldest whose condition holds.

Every resume goes through `Buffer.resume`: an execution that then waits at a trigger
that buffers looks at the buffer at once. The claim on an entry lets exactly one of an
execution and an arriving activation take it; the sweep settles what nobody took.
"""

import logging
from collections.abc import Callable
from enum import Enum

from engine.catalog import Catalog
from engine.core import execution as ex
from engine.core.correlation import MISSING
from engine.core.definition import Flow
from engine.core.matching import activation_bindings
from engine.ports import EXPIRY, Buffered, Publisher, Store
from engine.usecases.activation import (
    Activation,
    Decision,
    ExecutionFault,
    waits_at,
)
from engine.usecases.conditions import Conditions
from engine.usecases.resume import Resumer
from schemas.callbacks import Selector, SelectorKind
from schemas.events import ActivateTrigger, ActivationOutcome, ExecutionStatus, Outcome
from schemas.flows import ExternalCallbackBlock

logger = logging.getLogger(__name__)

# a buffered activation claimed by an execution and still there this long after (its
# claimer stopped before dropping it) is finished or given back by the sweep
_CLAIM_STALE_MS = 60_000
_BUFFER_LOOKUP = 100  # buffered activations tried, oldest first, when a wait begins


class _Take(Enum):
    """What came of offering a buffered activation to a waiting execution."""

    TAKEN = "taken"  # it resumed the execution
    PASSED = "passed"  # its condition is false, or another claimer has it
    MOVED_ON = "moved on"  # the execution no longer waits there


class Buffer:
    """Keeps, offers, settles and sweeps buffered activations."""

    def __init__(
        self,
        catalog: Catalog,
        store: Store,
        publisher: Publisher,
        resumer: Resumer,
        conditions: Conditions,
        clock: Callable[[], int],
    ) -> None:
        self._catalog = catalog
        self._store = store
        self._publish = publisher
        self._resumer = resumer
        self._conditions = conditions
        self._now = clock

    async def resume(self, act: Activation, state: ex.ExecutionState, checked: bool = True) -> bool:
        """Resume one execution by compare-and-set; False when it no longer waits for this.

        Where it then waits at a trigger that buffers, it takes a buffered activation.
        """
        try:
            after = await self._resumer.resume_once(act, state, checked)
            if after is not None:
                await self.take_buffered(act.flow, after)
        except Exception as exc:
            raise ExecutionFault(state.execution_id) from exc
        return after is not None

    async def keep(self, act: Activation, selector: Selector, decision: Decision) -> Decision:
        """Buffer an activation that found no matching waiter (`bufferSeconds`).

        Kept first, then the waiters looked up again: an execution that began waiting
        meanwhile looked at the buffer before this entry was in it. Each side writes, then
        reads the other's; the claim on the entry lets exactly one of them take it.
        """
        key = None
        wait_id = act.flow.wait_id(act.trigger_id)
        correlation = act.flow.correlations.get(act.block.name)
        if correlation is not None:
            found = correlation.lookup_key(wait_id, act.command.data)
            if found is MISSING:
                return decision  # its condition holds for no execution, now or later
            assert isinstance(found, str)
            key = found
        now = self._now()
        kept = await self._store.buffer(
            Buffered(
                activation_id=act.activation_id,
                flow_id=act.flow.flow_id,
                trigger_id=act.trigger_id,
                key=key,
                execution_id=selector.execution_id,
                data=act.command.data,
                user=act.user,
                arrived=now,
                expires=now + act.block.bufferSeconds * 1000,
            )
        )
        if kept.claimed_by is None:
            if selector.execution_id is not None:
                one = await self._store.get_execution(selector.execution_id)
                candidates = [one] if one is not None else []
            else:
                candidates = [s async for s in self._store.waiting(wait_id, key)]
            for state in candidates:
                if await self._take(act, kept, state) == _Take.TAKEN:
                    return Outcome.ACTIVATED, [state.execution_id], None
        elif kept.claimed_by != EXPIRY:  # a redelivery: an execution took it already
            taker = await self._store.get_execution(kept.claimed_by)
            if taker is not None and act.activation_id in taker.applied:
                return Outcome.ACTIVATED, [taker.execution_id], None
        return Outcome.BUFFERED, [], f"kept for a waiter for {act.block.bufferSeconds} s"

    async def take_buffered(self, flow: Flow, state: ex.ExecutionState) -> None:
        """An execution that waits at a trigger that buffers takes the oldest buffered
        activation whose condition holds for it, and settles that one ACTIVATED."""
        if state.status != ExecutionStatus.WAITING:
            return
        offers: list[tuple[Buffered, Activation]] = []
        for trigger_id in state.waiting_on:  # a group's members: each that buffers
            block = flow.trigger(trigger_id)
            if block is None or not block.bufferSeconds:
                continue
            key = None
            if block.name in flow.correlations:
                if state.wait_key is None:
                    continue  # its condition holds for no activation
                key = state.wait_key
            for entry in await self._store.buffered(trigger_id, key, self._now(), _BUFFER_LOOKUP):
                offers.append((entry, _activation_of(flow, block, entry)))
        offers.sort(key=lambda offer: (offer[0].arrived, offer[0].activation_id))
        for entry, act in offers:  # in arrival order
            taken = await self._take(act, entry, state)
            if taken == _Take.TAKEN:
                await self._settle(entry, Outcome.ACTIVATED, [state.execution_id])
                await self._store.drop_buffered(entry.activation_id)
            if taken != _Take.PASSED:
                # taken (its resume looked at the buffer again for what the execution
                # waits at next), or resumed or ended meanwhile (an activation, a timeout)
                return

    async def sweep(self, limit: int = 500) -> int:
        """Settle buffered activations whose time ran out (EXPIRED, then dropped), and
        finish or give back claims whose claimer stopped; return how many were settled."""
        settled = 0
        for entry in await self._store.due_buffered(self._now(), limit):
            try:
                settled += await self._sweep(entry)
            except Exception:
                logger.exception(
                    "buffered activation not swept", extra={"activation_id": entry.activation_id}
                )
        return settled

    async def _take(self, act: Activation, entry: Buffered, state: ex.ExecutionState) -> _Take:
        """Resume `state` with a buffered activation if its condition holds and the claim
        on the entry is won; give the entry back when the execution moved on meanwhile."""
        if entry.execution_id not in (None, state.execution_id):
            return _Take.PASSED
        if not waits_at(state, act.trigger_id):
            return _Take.MOVED_ON
        if not await self._conditions.holds(act, state):
            return _Take.PASSED
        claimer = state.execution_id
        if not await self._store.claim_buffered(
            entry.activation_id, claimer, self._now(), _CLAIM_STALE_MS
        ):
            return _Take.PASSED  # another execution, or the expiry, took it
        # the condition held for this very state: a save over it needs no second look
        if await self.resume(act, state):
            return _Take.TAKEN
        await self._store.release_buffered(entry.activation_id, claimer)
        return _Take.MOVED_ON

    async def _settle(self, entry: Buffered, result: Outcome, execution_ids: list[str]) -> None:
        """Give a buffered activation its final outcome, once, and publish it."""
        decision = ActivationOutcome(
            activationId=entry.activation_id,
            flowId=entry.flow_id,
            triggerId=entry.trigger_id,
            outcome=result,
            executionIds=execution_ids,
            detail="buffered" if result == Outcome.ACTIVATED else "no execution took it in time",
            decidedAt=self._now(),
        )
        if await self._store.settle_outcome(decision):
            await self._publish.outcomes([decision])
            logger.info(
                "buffered activation settled",
                extra={
                    "activation_id": entry.activation_id,
                    "outcome": result.value,
                    "execution_ids": execution_ids,
                },
            )

    async def _sweep(self, entry: Buffered) -> bool:
        if entry.claimed_by is None and not await self._store.claim_buffered(
            entry.activation_id, EXPIRY, self._now(), _CLAIM_STALE_MS
        ):
            return False  # taken meanwhile
        if entry.claimed_by in (None, EXPIRY):
            await self._settle(entry, Outcome.EXPIRED, [])
            await self._store.drop_buffered(entry.activation_id)
            return True
        execution_id = entry.claimed_by
        state = await self._store.get_execution(execution_id)
        flow = await self._catalog.compiled(entry.flow_id)
        block = flow.trigger(entry.trigger_id) if flow else None
        taken = state is not None and entry.activation_id in state.applied
        if not taken and state is not None and flow is not None and block is not None:
            act = _activation_of(flow, block, entry)
            taken = await self.resume(act, state, checked=False)
        if not taken:
            await self._store.release_buffered(entry.activation_id, execution_id)
            return False
        await self._settle(entry, Outcome.ACTIVATED, [execution_id])
        await self._store.drop_buffered(entry.activation_id)
        return True


def _activation_of(flow: Flow, block: ExternalCallbackBlock, entry: Buffered) -> Activation:
    """A buffered entry as the activation it was."""
    command = ActivateTrigger(
        activationId=entry.activation_id,
        flowId=flow.flow_id,
        triggerId=entry.trigger_id,
        execution=entry.execution_id or SelectorKind.ALL.value,
        data=entry.data,
        receivedAt=entry.arrived,
    )
    return Activation(
        flow,
        block,
        entry.trigger_id,
        command,
        entry.user,
        activation_bindings(entry.data, entry.user),
    )
