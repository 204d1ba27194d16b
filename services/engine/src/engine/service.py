"""The engine's use cases: start executions and apply activations, exactly once per effect.

I/O goes through the ports; every decision is made by the pure core. An activation is
applied through single-document steps that a redelivery can repeat (docs/design.md):
its outcome, if stored, is the answer; an execution is resumed by a compare-and-set
on its version and remembers the activations it applied; an `all`/`any` activation
records the executions it chose before resuming the first, so that a redelivery after
a crash finishes exactly those.
"""

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

from engine.catalog import Catalog
from engine.core import execution as ex
from engine.core.correlation import MISSING
from engine.core.definition import Flow
from engine.core.expressions import Bindings, ExpressionError
from engine.core.matching import (
    ConditionResult,
    activation_bindings,
    authorized,
    condition_holds,
    judge,
    outcome,
)
from engine.ports import (
    EXPIRY,
    Buffered,
    Evaluator,
    HttpError,
    HttpRunner,
    Publisher,
    Resuming,
    Store,
    Timer,
    TokenResolver,
)
from schemas.callbacks import Selector, SelectorKind
from schemas.events import (
    ActivateTrigger,
    ActivationOutcome,
    ExecutionStatus,
    Outcome,
    StartExecution,
)
from schemas.flows import AuthenticationType, ExternalCallbackBlock
from schemas.signing import user_is_signed, verification_is_signed
from schemas.users import User

logger = logging.getLogger(__name__)

# Execution ids of entry-trigger starts derive from the activation id, so that a
# redelivered activation finds the execution its first delivery created.
_ENTRY_NAMESPACE = uuid.UUID("6f1b7c1e-3d4a-4e55-9a7e-2b8f0c9d1e21")
_SAVE_ATTEMPTS = 5
# `any` resumes the oldest execution whose condition holds; it records this many, in
# order, so that one taken meanwhile by another activation leaves it the next
_ANY_CHOICES = 8
_TIMERS_AT_ONCE = 16  # due timeouts fired concurrently in one round
# a buffered activation claimed by an execution and still there this long after (its
# claimer stopped before dropping it) is finished or given back by the sweep
_CLAIM_STALE_MS = 60_000
_BUFFER_LOOKUP = 100  # buffered activations tried, oldest first, when a wait begins

Decision = tuple[Outcome, list[str], str | None]


class ExecutionFault(Exception):
    """Applying a message to this execution failed; the cause is chained."""

    def __init__(self, execution_id: str) -> None:
        super().__init__(f"while applying it to execution {execution_id}")
        self.execution_id = execution_id


class _Take(Enum):
    """What came of offering a buffered activation to a waiting execution."""

    TAKEN = "taken"  # it resumed the execution
    PASSED = "passed"  # its condition is false, or another claimer has it
    MOVED_ON = "moved on"  # the execution no longer waits there


class Unread:
    """The caller has not read what the store holds for an activation."""


UNREAD = Unread()


@dataclass(frozen=True)
class EngineConfig:
    idempotency_retention_ms: int = 24 * 3600 * 1000
    activation_key: str | None = None  # the gateway's, to verify the users it signed


@dataclass(frozen=True)
class _Activation:
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


class Engine:
    """Starts executions and applies activations, exactly once per effect."""

    def __init__(
        self,
        catalog: Catalog,
        store: Store,
        publisher: Publisher,
        http: HttpRunner,
        tokens: TokenResolver,
        config: EngineConfig,
        clock: Callable[[], int],
        expressions: Evaluator,
    ) -> None:
        self._catalog = catalog
        self._expressions = expressions
        self._store = store
        self._publish = publisher
        self._http = http
        self._tokens = tokens
        self._config = config
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

    async def _create(
        self, flow: Flow, execution_id: str, first_step: Callable[[int], ex.Step]
    ) -> ex.ExecutionState | None:
        """Create an execution once; a repeat finds the one the first attempt created."""
        try:
            existing = await self._store.get_execution(execution_id)
            if existing is not None:
                # a repeat after a crash: the first attempt may not have looked at the buffer
                await self._take_buffered(flow, existing)
                return existing
            step = await self._run_requests(flow, first_step(self._now()))
            if await self._store.create_execution(step.state):
                await self._publish.execution_events(step.events)
                await self._take_buffered(flow, step.state)
                return step.state
            return await self._store.get_execution(execution_id)
        except Exception as exc:
            raise ExecutionFault(execution_id) from exc

    async def activate(self, command: ActivateTrigger) -> ActivationOutcome:
        """Apply an activation once; a redelivery answers the outcome already decided."""
        decision, fresh = await self.decide(command)
        if fresh:
            (decision,) = await self.record([decision])
        else:
            await self.republish(decision)
        return decision

    async def decide(
        self,
        command: ActivateTrigger,
        found: ActivationOutcome | Resuming | Unread | None = UNREAD,
        nobody_waits: set[str] | None = None,
        read_ahead: dict[str, ex.ExecutionState] | None = None,
    ) -> tuple[ActivationOutcome, bool]:
        """Apply an activation and return its outcome, and whether it is newly decided.

        A new outcome must then be passed to `record` (a batch records its outcomes at
        once); until it is, a redelivery decides again, from what was applied.

        Args:
            found: what the store holds for the activation, when the caller read it.
            nobody_waits: trigger ids found with no execution waiting, shared by the
                activations of one batch: the next activation of such a trigger in the
                batch is NO_WAITER without a lookup. That is the answer it would get had
                its trigger's records been handled before the batch's other keys, whose
                order relative to them Kafka does not fix either.
            read_ahead: executions named by the batch's activations (`execution=<id>`),
                read in one statement (`read_ahead`); each is used once, and only where
                it shows the execution waiting for this activation.
        """
        activation_id = command.activationId
        if isinstance(found, Unread):
            found = await self._store.get_activation(activation_id)
        if isinstance(found, ActivationOutcome):
            return found, False
        result, ids, detail = await self._decide(command, found, nobody_waits, read_ahead)
        decision = ActivationOutcome(
            activationId=activation_id,
            flowId=command.flowId.lower(),
            triggerId=command.triggerId.lower(),
            outcome=result,
            executionIds=ids,
            detail=detail,
            decidedAt=self._now(),
        )
        logger.info(
            "activation decided",
            extra={
                "activation_id": activation_id,
                "flow_id": decision.flowId,
                "outcome": result.value,
                "execution_ids": ids,
            },
        )
        return decision, True

    async def record(self, decisions: list[ActivationOutcome]) -> list[ActivationOutcome]:
        """Store newly decided outcomes, then publish what is final: where another delivery
        of the same activation stored its outcome first (a race after a rebalance), that
        one, not this delivery's view of what was left to do."""
        if not decisions:
            return []
        taken = await self._store.save_outcomes(decisions)
        if taken:
            stored = await self._store.get_activations(sorted(taken))
            decisions = [
                found if isinstance(found := stored.get(d.activationId), ActivationOutcome) else d
                for d in decisions
            ]
        await self._publish.outcomes(decisions)
        return decisions

    async def republish(self, decision: ActivationOutcome) -> None:
        """Answer an outcome decided before again (a redelivery)."""
        await self._publish.outcomes([decision])

    async def read_activations(
        self, activation_ids: list[str]
    ) -> dict[str, ActivationOutcome | Resuming]:
        """What the store holds for many activations, in one read (for a batch)."""
        return await self._store.get_activations(activation_ids)

    async def read_ahead(
        self,
        commands: list[ActivateTrigger],
        found: dict[str, ActivationOutcome | Resuming],
    ) -> dict[str, ex.ExecutionState]:
        """The executions a batch's undecided activations name (`execution=<id>`), in one
        read: a resume by id then costs its compare-and-set alone."""
        named: dict[str, None] = {}
        for command in commands:
            if isinstance(found.get(command.activationId), ActivationOutcome):
                continue
            try:
                execution_id = Selector.parse(command.execution).execution_id
            except ValueError:
                continue
            if execution_id is not None:
                named[execution_id] = None
        return await self._store.get_executions(list(named))

    async def _decide(
        self,
        command: ActivateTrigger,
        resuming: Resuming | None,
        nobody_waits: set[str] | None,
        read_ahead: dict[str, ex.ExecutionState] | None,
    ) -> Decision:
        flow = await self._catalog.compiled(command.flowId)
        block = flow.trigger(command.triggerId) if flow else None
        if flow is None or block is None:
            return Outcome.UNKNOWN_TRIGGER, [], "no such flow or trigger"
        user = self._signed_user(command)
        if user is None and command.userToken:
            user = await self._tokens.resolve(command.userToken)
        if not authorized(block, user):
            return Outcome.IGNORED_AUTH, [], "user missing, inactive or lacking required roles"
        if block.authenticationType == AuthenticationType.SIGNATURE and not verification_is_signed(
            self._config.activation_key, command.activationId, command.signatureVerified
        ):
            return Outcome.IGNORED_AUTH, [], "no webhook signature verified by a gateway"
        trigger_id = command.triggerId.lower()
        if command.idempotencyKey:
            owner = await self._store.remember_key(
                f"{flow.flow_id}:{trigger_id}",
                command.idempotencyKey,
                command.activationId,
                self._now(),
                self._config.idempotency_retention_ms,
            )
            if owner != command.activationId:
                return Outcome.DUPLICATE, [], f"idempotency key already used by activation {owner}"
        try:
            selector = Selector.parse(command.execution)
        except ValueError as exc:  # only from Kafka: the gateway answers 400
            return Outcome.NO_WAITER, [], str(exc)
        user_context = user.as_context() if user else None
        act = _Activation(
            flow,
            block,
            trigger_id,
            command,
            user_context,
            activation_bindings(command.data, user_context),
        )
        if flow.entry == block.name and selector.kind != SelectorKind.ID:
            # an entry trigger starts an execution per activation, when its condition holds;
            # one naming an execution resumes that one instead (an execution started
            # through the API waits there)
            fresh = ex.new_execution(flow, str(uuid.UUID(int=0)), command.data, self._now())
            check = await self._condition(act, ex.context(flow, fresh))
            if not check.holds:
                return Outcome.FILTERED, [], check.error or "the entry condition is false"
            return Outcome.ACTIVATED, [await self._start_from_trigger(act)], None
        if resuming is not None:
            return await self._finish_resuming(act, resuming, selector)
        if selector.execution_id is not None:
            decision = await self._resume_one(act, selector.execution_id, read_ahead)
        else:
            decision = await self._resume_waiting(act, selector, nobody_waits)
        if decision[0] in (Outcome.NO_WAITER, Outcome.FILTERED) and block.bufferSeconds:
            return await self._keep(act, selector, decision)
        return decision

    def _signed_user(self, command: ActivateTrigger) -> User | None:
        """The activation's user if the gateway signed it; anyone else's is ignored."""
        if command.user is None:
            return None
        if user_is_signed(
            self._config.activation_key,
            command.activationId,
            command.user.as_context(),
            command.userSignature,
        ):
            return command.user
        logger.warning(
            "an unsigned user on an activation ignored",
            extra={"activation_id": command.activationId, "flow_id": command.flowId},
        )
        return None

    async def _start_from_trigger(self, act: _Activation) -> str:
        execution_id = str(uuid.uuid5(_ENTRY_NAMESPACE, act.activation_id))
        await self._create(
            act.flow,
            execution_id,
            lambda now: ex.start_from_trigger(
                act.flow, execution_id, act.command.data, act.user, act.activation_id, now
            ),
        )
        return execution_id

    async def _resume_one(
        self,
        act: _Activation,
        execution_id: str,
        read_ahead: dict[str, ex.ExecutionState] | None = None,
    ) -> Decision:
        """`execution=<id>`: read that execution; a redelivery finds itself in `applied`.

        A state read ahead for the batch may be stale: it is used only where it shows the
        execution waiting for this activation (the compare-and-set refuses it if it changed
        since, and the execution is read again); any other answer is read afresh.
        """
        state = read_ahead.pop(execution_id, None) if read_ahead else None
        if state is None or not _waits_for(state, act):
            state = await self._store.get_execution(execution_id)
        if state is None or state.flow_id != act.flow.flow_id:
            return Outcome.NO_WAITER, [], None
        if act.activation_id in state.applied:
            return Outcome.ACTIVATED, [state.execution_id], None
        if not _waits_at(state, act.trigger_id):
            return Outcome.NO_WAITER, [], None
        if not await self._holds(act, state):
            return Outcome.FILTERED, [], None
        if await self._resume(act, state):
            return Outcome.ACTIVATED, [state.execution_id], None
        return Outcome.NO_WAITER, [], None

    async def _resume_waiting(
        self, act: _Activation, selector: Selector, nobody_waits: set[str] | None
    ) -> Decision:
        """`all` or `any`: find the candidates, by correlation key when the condition has one."""
        if nobody_waits is not None and act.trigger_id in nobody_waits:
            return Outcome.NO_WAITER, [], None
        correlation = act.flow.correlations.get(act.block.name)
        key = None
        if correlation is not None:
            if not await self._store.anyone_waiting(act.trigger_id):
                if nobody_waits is not None:
                    nobody_waits.add(act.trigger_id)
                return Outcome.NO_WAITER, [], None
            found = correlation.lookup_key(act.trigger_id, act.command.data)
            if found is MISSING:  # the condition cannot hold for any execution
                path = ".".join(("data", *correlation.data_path))
                return Outcome.FILTERED, [], f"{path} is missing: the condition holds for nobody"
            assert isinstance(found, str)
            key = found
        holders: list[ex.ExecutionState] = []
        filtered = seen = 0
        async for state in self._store.waiting(act.trigger_id, key):
            seen += 1
            if await self._holds(act, state):
                holders.append(state)
                if selector.kind == SelectorKind.ANY and len(holders) == _ANY_CHOICES:
                    break
            else:
                filtered += 1
        if not seen and key is None and nobody_waits is not None:
            nobody_waits.add(act.trigger_id)
        if correlation is not None and not holders:
            filtered += 1  # executions wait at the trigger, none with this key
        if not holders:
            return outcome(filtered, 0), [], None
        chosen = Resuming(act.activation_id, tuple(s.execution_id for s in holders))
        plan = await self._store.begin_resuming(chosen)
        read = {s.execution_id: s for s in holders} if plan == chosen else {}
        activated = await self._resume_planned(act, plan, selector, read)
        return outcome(filtered, len(activated)), activated, None

    async def _finish_resuming(
        self, act: _Activation, resuming: Resuming, selector: Selector
    ) -> Decision:
        """A redelivery after a crash: resume what the first delivery chose, no more."""
        activated = await self._resume_planned(act, resuming, selector, {})
        return outcome(0, len(activated)), activated, None

    async def _resume_planned(
        self,
        act: _Activation,
        plan: Resuming,
        selector: Selector,
        read: dict[str, ex.ExecutionState],
    ) -> list[str]:
        activated = []
        for execution_id in plan.execution_ids:
            state = read.get(execution_id) or await self._store.get_execution(execution_id)
            if state is None:
                continue
            checked = execution_id in read
            if await self._resume(act, state, checked=checked):
                activated.append(execution_id)
                if selector.kind == SelectorKind.ANY:
                    break
        return activated

    async def _holds(self, act: _Activation, state: ex.ExecutionState) -> bool:
        check = await self._condition(act, ex.context(act.flow, state))
        if check.error:
            await self._note(act.flow, state, act.block.name, check.error)
        return check.holds

    async def _condition(self, act: _Activation, snapshot: dict[str, Any]) -> ConditionResult:
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

    async def _resume(
        self, act: _Activation, state: ex.ExecutionState, checked: bool = True
    ) -> bool:
        """Resume one execution by compare-and-set; False when it no longer waits for this.

        Where it then waits at a trigger that buffers, it takes a buffered activation.
        """
        try:
            after = await self._resume_once(act, state, checked)
            if after is not None:
                await self._take_buffered(act.flow, after)
        except Exception as exc:
            raise ExecutionFault(state.execution_id) from exc
        return after is not None

    async def _resume_once(
        self, act: _Activation, state: ex.ExecutionState | None, checked: bool
    ) -> ex.ExecutionState | None:
        """The execution as `act` left it, or None when it no longer waits for `act`."""
        for _ in range(_SAVE_ATTEMPTS):
            if state is None:
                return None
            if act.activation_id in state.applied:
                return state  # an earlier delivery resumed it
            if not _waits_at(state, act.trigger_id):
                return None
            if not checked and not await self._holds(act, state):
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
            step = await self._run_requests(act.flow, step)
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

    async def fire_timers(self, limit: int = 500) -> int:
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
        for _ in range(_SAVE_ATTEMPTS):
            state = await self._store.get_execution(execution_id)
            if state is None or state.status != ExecutionStatus.WAITING or state.deadline != due:
                return False  # resumed, failed or waiting again since: nothing to do
            flow = await self._catalog.compiled(state.flow_id)
            if flow is None:
                return False
            step = await self._run_requests(flow, ex.time_out(flow, state, self._now()))
            saved = replace(step.state, version=state.version + 1)
            if await self._store.save_execution(saved):
                await self._publish.execution_events(step.events)
                logger.info("wait timed out", extra={"execution_id": execution_id})
                await self._take_buffered(flow, saved)
                return True
        return False

    async def _keep(self, act: _Activation, selector: Selector, decision: Decision) -> Decision:
        """Buffer an activation that found no matching waiter (`bufferSeconds`).

        Kept first, then the waiters looked up again: an execution that began waiting
        meanwhile looked at the buffer before this entry was in it. Each side writes, then
        reads the other's; the claim on the entry lets exactly one of them take it.
        """
        key = None
        correlation = act.flow.correlations.get(act.block.name)
        if correlation is not None:
            found = correlation.lookup_key(act.trigger_id, act.command.data)
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
                candidates = [s async for s in self._store.waiting(act.trigger_id, key)]
            for state in candidates:
                if await self._take(act, kept, state) == _Take.TAKEN:
                    return Outcome.ACTIVATED, [state.execution_id], None
        elif kept.claimed_by != EXPIRY:  # a redelivery: an execution took it already
            taker = await self._store.get_execution(kept.claimed_by)
            if taker is not None and act.activation_id in taker.applied:
                return Outcome.ACTIVATED, [taker.execution_id], None
        return Outcome.BUFFERED, [], f"kept for a waiter for {act.block.bufferSeconds} s"

    async def _take(self, act: _Activation, entry: Buffered, state: ex.ExecutionState) -> "_Take":
        """Resume `state` with a buffered activation if its condition holds and the claim
        on the entry is won; give the entry back when the execution moved on meanwhile."""
        if entry.execution_id not in (None, state.execution_id):
            return _Take.PASSED
        if not _waits_at(state, act.trigger_id):
            return _Take.MOVED_ON
        if not await self._holds(act, state):
            return _Take.PASSED
        claimer = state.execution_id
        if not await self._store.claim_buffered(
            entry.activation_id, claimer, self._now(), _CLAIM_STALE_MS
        ):
            return _Take.PASSED  # another execution, or the expiry, took it
        # the condition held for this very state: a save over it needs no second look
        if await self._resume(act, state):
            return _Take.TAKEN
        await self._store.release_buffered(entry.activation_id, claimer)
        return _Take.MOVED_ON

    async def _take_buffered(self, flow: Flow, state: ex.ExecutionState) -> None:
        """An execution that waits at a trigger that buffers takes the oldest buffered
        activation whose condition holds for it, and settles that one ACTIVATED."""
        if state.status != ExecutionStatus.WAITING or not state.waiting_on:
            return
        trigger_id = state.waiting_on[0]
        block = flow.trigger(trigger_id)
        if block is None or not block.bufferSeconds:
            return
        key = None
        if block.name in flow.correlations:
            if state.wait_key is None:
                return  # its condition holds for no activation
            key = state.wait_key
        for entry in await self._store.buffered(trigger_id, key, self._now(), _BUFFER_LOOKUP):
            act = self._buffered_activation(flow, block, entry)
            taken = await self._take(act, entry, state)
            if taken == _Take.TAKEN:
                await self._settle(entry, Outcome.ACTIVATED, [state.execution_id])
                await self._store.drop_buffered(entry.activation_id)
            if taken != _Take.PASSED:
                return  # taken, or resumed or ended meanwhile (another activation, a timeout)

    def _buffered_activation(
        self, flow: Flow, block: ExternalCallbackBlock, entry: Buffered
    ) -> _Activation:
        command = ActivateTrigger(
            activationId=entry.activation_id,
            flowId=flow.flow_id,
            triggerId=entry.trigger_id,
            execution=entry.execution_id or SelectorKind.ALL.value,
            data=entry.data,
            receivedAt=entry.arrived,
        )
        return _Activation(
            flow,
            block,
            entry.trigger_id,
            command,
            entry.user,
            activation_bindings(entry.data, entry.user),
        )

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

    async def sweep_buffer(self, limit: int = 500) -> int:
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
            act = self._buffered_activation(flow, block, entry)
            taken = await self._resume(act, state, checked=False)
        if not taken:
            await self._store.release_buffered(entry.activation_id, execution_id)
            return False
        await self._settle(entry, Outcome.ACTIVATED, [execution_id])
        await self._store.drop_buffered(entry.activation_id)
        return True

    async def give_up(
        self, execution_id: str, reason: str, start: StartExecution | None = None
    ) -> bool:
        """Fail an execution a message kept failing on (a start creates it failed).

        Returns whether it was failed now; one already ended is left as it is.
        """
        for _ in range(_SAVE_ATTEMPTS):
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
            if state.status in (ExecutionStatus.COMPLETED, ExecutionStatus.FAILED):
                return False
            step = ex.give_up(state, reason, now)
            if await self._store.save_execution(replace(step.state, version=state.version + 1)):
                await self._publish.execution_events(step.events)
                return True
        return False

    async def _note(self, flow: Flow, state: ex.ExecutionState, block: str, error: str) -> None:
        """Record a condition error in the execution's history (best effort, CAS)."""
        current: ex.ExecutionState | None = state
        for _ in range(_SAVE_ATTEMPTS):
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

    async def _run_requests(self, flow: Flow, step: ex.Step) -> ex.Step:
        """Do what the core asked for (HTTP calls, guarded expressions) until it asks no more."""
        events = list(step.events)
        while step.http is not None or step.evaluation is not None:
            if step.evaluation is not None:
                request = step.evaluation
                sources = [(key, e.source) for key, e in request.expressions]
                try:
                    values = await self._expressions(sources, request.context, request.assigns)
                except ExpressionError as exc:
                    step = ex.fail_evaluation(
                        flow, step.state, request.block, str(exc), self._now()
                    )
                else:
                    step = ex.complete_evaluation(
                        flow, step.state, request.block, values, self._now()
                    )
            elif step.http is not None:
                call = step.http
                try:
                    response = await self._http(call)
                except HttpError as exc:
                    step = ex.fail_http(flow, step.state, call.block, str(exc), self._now())
                else:
                    step = ex.complete_http(flow, step.state, call.block, response, self._now())
            events.extend(step.events)
        return replace(step, events=events)


def _waits_for(state: ex.ExecutionState, act: _Activation) -> bool:
    """Whether `state` is of the activation's flow, waits at its trigger, and has not
    applied it yet."""
    return (
        state.flow_id == act.flow.flow_id
        and _waits_at(state, act.trigger_id)
        and act.activation_id not in state.applied
    )


def _waits_at(state: ex.ExecutionState, trigger_id: str) -> bool:
    return state.status == ExecutionStatus.WAITING and trigger_id in state.waiting_on
