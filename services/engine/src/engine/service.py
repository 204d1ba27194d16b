"""The engine's use cases: deploy, start, activate. I/O through ports; decisions in core."""

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from engine.core import execution as ex
from engine.core.definition import Flow, compile_flow
from engine.core.matching import Selector, SelectorKind, authorized, condition_holds, outcome
from engine.ports import HttpError, HttpRunner, Publisher, TokenResolver
from engine.records import FlowRecord, Wait
from engine.store import Store
from schemas.events import (
    ActivateTrigger,
    ActivationOutcome,
    ExecutionStatus,
    FlowVersionRegistered,
    Outcome,
    RegistryRecord,
    StartExecution,
    TriggerRegistered,
)
from schemas.flows import DeployedFlow, ExternalCallbackBlock, FlowDefinition, TriggerInfo

logger = logging.getLogger(__name__)

# Execution ids of entry-trigger starts derive from the activation id, so that a
# redelivered activation finds the execution its first delivery created.
_ENTRY_NAMESPACE = uuid.UUID("6f1b7c1e-3d4a-4e55-9a7e-2b8f0c9d1e21")
_SAVE_ATTEMPTS = 5


@dataclass(frozen=True)
class EngineConfig:
    public_url: str  # the gateway's public base URL, for callback URLs
    idempotency_retention_ms: int = 24 * 3600 * 1000
    flow_cache_size: int = 1024


class Engine:
    """Deploys flows, starts executions and applies activations, exactly once per effect."""

    def __init__(
        self,
        store: Store,
        publisher: Publisher,
        http: HttpRunner,
        tokens: TokenResolver,
        config: EngineConfig,
        clock: Callable[[], int],
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self._store = store
        self._publish = publisher
        self._http = http
        self._tokens = tokens
        self._config = config
        self._now = clock
        self._new_id = new_id
        self._flows: dict[str, Flow] = {}

    # -- flows ---------------------------------------------------------------------------

    async def deploy(self, definition: FlowDefinition) -> DeployedFlow:
        """Validate, store and announce a new version; raise DefinitionError when invalid."""
        flow_id = self._new_id().lower()
        compiled = compile_flow(definition, flow_id, lambda _name: self._new_id())
        version = await self._store.next_version(definition.name)
        record = FlowRecord(
            flow_id,
            definition.name,
            version,
            self._now(),
            definition,
            dict(compiled.trigger_ids),
        )
        await self._store.save_flow(record)
        flow = self._remember(record, compiled)
        await self._publish.registry(self.registry_records(record, flow))
        logger.info("flow deployed", extra={"flow_id": flow_id, "version": version})
        return self.describe(record, flow)

    async def flow(self, flow_id: str) -> tuple[FlowRecord, Flow] | None:
        """A deployed version and its compiled form (compiled once, then cached)."""
        record = await self._store.get_flow(flow_id)
        if record is None:
            return None
        cached = self._flows.get(record.flow_id)
        return record, cached or self._remember(record)

    async def _compiled(self, flow_id: str) -> Flow | None:
        cached = self._flows.get(flow_id.lower())
        if cached is not None:
            return cached
        found = await self.flow(flow_id)
        return found[1] if found else None

    def _remember(self, record: FlowRecord, compiled: Flow | None = None) -> Flow:
        flow = compiled or compile_flow(
            record.definition, record.flow_id, record.trigger_ids.__getitem__
        )
        flow = replace(
            flow,
            callback_urls={
                name: self.callback_url(record.flow_id, tid)
                for name, tid in flow.trigger_ids.items()
            },
        )
        if len(self._flows) >= self._config.flow_cache_size:
            self._flows.pop(next(iter(self._flows)))
        self._flows[record.flow_id] = flow
        return flow

    def callback_url(self, flow_id: str, trigger_id: str) -> str:
        base = self._config.public_url.rstrip("/")
        return f"{base}/api/automation/flow/{flow_id}/trigger/{trigger_id}/activate"

    def describe(self, record: FlowRecord, flow: Flow) -> DeployedFlow:
        return DeployedFlow(
            flowId=record.flow_id,
            name=record.name,
            version=record.version,
            triggers=[
                TriggerInfo(triggerId=tid, name=name, callbackUrl=flow.callback_urls[name])
                for name, tid in flow.trigger_ids.items()
            ],
        )

    def registry_records(self, record: FlowRecord, flow: Flow) -> list[RegistryRecord]:
        records: list[RegistryRecord] = [
            FlowVersionRegistered(
                flowId=record.flow_id, name=record.name, version=record.version, live=record.live
            )
        ]
        for name, tid in flow.trigger_ids.items():
            block = flow.blocks[name]
            assert isinstance(block, ExternalCallbackBlock)
            records.append(
                TriggerRegistered(
                    flowId=record.flow_id,
                    triggerId=tid,
                    name=name,
                    authenticationType=block.authenticationType,
                    requiredRoles=list(block.requiredRoles),
                    onFailPolicy=block.onFailPolicy,
                    entry=flow.entry == name,
                )
            )
        return records

    async def republish_registry(self) -> int:
        """Publish every flow version's registry records again (at startup); return the count."""
        count = 0
        async for record in self._store.flows():
            flow = self._flows.get(record.flow_id) or self._remember(record)
            await self._publish.registry(self.registry_records(record, flow))
            count += 1
        return count

    # -- executions ----------------------------------------------------------------------

    async def start(self, command: StartExecution) -> ex.ExecutionState | None:
        """Start an execution (a redelivered command finishes the first one's work)."""
        execution_id = command.executionId.lower()
        flow = await self._compiled(command.flowId)
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
        """Create an execution once; a repeat finishes what the first attempt began."""
        existing = await self._store.get_execution(execution_id)
        if existing is not None:
            await self._store.add_waits(self._waits(flow, existing))
            return existing
        step = await self._run_http(flow, first_step(self._now()))
        if await self._store.create_execution(step.state):
            await self._store.add_waits(self._waits(flow, step.state))
            await self._publish.execution_events(step.events)
            return step.state
        return await self._store.get_execution(execution_id)

    async def activate(self, command: ActivateTrigger) -> ActivationOutcome:
        """Apply an activation once; a redelivery answers the outcome already decided."""
        activation_id = command.activationId
        decided = await self._store.get_outcome(activation_id)
        if decided is not None:
            await self._publish.outcome(decided)
            return decided
        result, ids, detail = await self._decide(command)
        decision = ActivationOutcome(
            activationId=activation_id,
            flowId=command.flowId.lower(),
            triggerId=command.triggerId.lower(),
            outcome=result,
            executionIds=ids,
            detail=detail,
            decidedAt=self._now(),
        )
        await asyncio.gather(self._persist_outcome(decision), self._publish.outcome(decision))
        logger.info(
            "activation decided",
            extra={
                "activation_id": activation_id,
                "flow_id": decision.flowId,
                "outcome": result.value,
                "execution_ids": ids,
            },
        )
        return decision

    async def _persist_outcome(self, decision: ActivationOutcome) -> None:
        # the outcome first: a redelivery that finds it does not look for claims again
        await self._store.save_outcome(decision)
        await self._store.finish_claims(decision.activationId)

    async def _decide(self, command: ActivateTrigger) -> tuple[Outcome, list[str], str | None]:
        flow = await self._compiled(command.flowId)
        block = flow.trigger(command.triggerId) if flow else None
        if flow is None or block is None:
            return Outcome.UNKNOWN_TRIGGER, [], "no such flow or trigger"
        user = command.user
        if user is None and command.userToken:
            user = await self._tokens.resolve(command.userToken)
        if not authorized(block, user):
            return Outcome.IGNORED_AUTH, [], "user missing, inactive or lacking required roles"
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
        user_json = user.as_context() if user else None
        if flow.entry == block.name and Selector.parse(command.execution).kind != SelectorKind.ID:
            # an entry trigger starts an execution per activation; one naming an execution
            # resumes that one instead (an execution started through the API waits there)
            execution_id = await self._start_from_trigger(flow, command, user_json)
            return Outcome.ACTIVATED, [execution_id], None
        return await self._resume_waiting(flow, block, trigger_id, command, user_json)

    async def _start_from_trigger(
        self, flow: Flow, command: ActivateTrigger, user: dict[str, Any] | None
    ) -> str:
        execution_id = str(uuid.uuid5(_ENTRY_NAMESPACE, command.activationId))
        await self._create(
            flow,
            execution_id,
            lambda now: ex.start_from_trigger(
                flow, execution_id, command.data, user, command.activationId, now
            ),
        )
        return execution_id

    async def _resume_waiting(
        self,
        flow: Flow,
        block: ExternalCallbackBlock,
        trigger_id: str,
        command: ActivateTrigger,
        user: dict[str, Any] | None,
    ) -> tuple[Outcome, list[str], str | None]:
        selector = Selector.parse(command.execution)
        filtered, activated = 0, []
        waits = self._store.candidate_waits(
            flow.flow_id, trigger_id, command.activationId, selector.execution_id
        )
        async for wait in waits:
            if wait.activation_id != command.activationId:
                check = condition_holds(flow, block, wait.snapshot, command.data, user)
                if check.error:
                    await self._note(flow, wait.execution_id, block.name, check.error)
                if not check.holds:
                    filtered += 1
                    continue
                if not await self._store.claim(wait.wait_id, command.activationId, self._now()):
                    continue  # another activation took it first
            if await self._resume(flow, wait, command, user):
                activated.append(wait.execution_id)
                if selector.kind == SelectorKind.ANY:
                    break
        return outcome(filtered, len(activated)), activated, None

    async def _resume(
        self, flow: Flow, wait: Wait, command: ActivateTrigger, user: dict[str, Any] | None
    ) -> bool:
        known = wait.execution  # read by the store while finding the wait, if it had to
        for _ in range(_SAVE_ATTEMPTS):
            state = known or await self._store.get_execution(wait.execution_id, rev_hint=wait.rev)
            known = None
            if state is None:
                return False
            if command.activationId in state.applied:
                await self._store.add_waits(self._waits(flow, state))
                return True  # an earlier delivery resumed it; finish its bookkeeping
            now = self._now()
            try:
                step = ex.resume(
                    flow, state, wait.trigger_id, command.data, user, command.activationId, now
                )
            except ex.NotWaiting:
                return False  # a stale wait: removed with the activation's claims
            step = await self._run_http(flow, step)
            saved = replace(step.state, rev=state.rev + 1)
            if await self._store.save_execution(saved):
                await asyncio.gather(
                    self._store.add_waits(self._waits(flow, saved)),
                    self._publish.execution_events(step.events),
                )
                return True
        raise RuntimeError(
            f"execution {wait.execution_id} keeps changing under activation {command.activationId}"
        )

    async def _note(self, flow: Flow, execution_id: str, block: str, error: str) -> None:
        """Record a condition error in the execution's history (best effort, CAS)."""
        for _ in range(_SAVE_ATTEMPTS):
            state = await self._store.get_execution(execution_id)
            if state is None:
                return
            entry = {"at": self._now(), "event": "condition_error", "block": block, "detail": error}
            noted = replace(
                state, history=(*state.history, entry)[-ex.MAX_HISTORY :], rev=state.rev + 1
            )
            if await self._store.save_execution(noted):
                return

    async def _run_http(self, flow: Flow, step: ex.Step) -> ex.Step:
        events = list(step.events)
        while step.http is not None:
            call = step.http
            try:
                response = await self._http(call)
            except HttpError as exc:
                step = ex.fail_http(flow, step.state, call.block, str(exc), self._now())
            else:
                step = ex.complete_http(flow, step.state, call.block, response, self._now())
            events.extend(step.events)
        return replace(step, events=events)

    def _waits(self, flow: Flow, state: ex.ExecutionState) -> list[Wait]:
        if state.status != ExecutionStatus.WAITING:
            return []
        snapshot = ex.context(flow, state)
        del snapshot["data"], snapshot["user"]  # bound to the incoming activation instead
        return [
            Wait(
                Wait.make_id(state.execution_id, tid, state.wait_seq),
                state.execution_id,
                state.flow_id,
                tid,
                state.updated,
                snapshot,
                rev=state.rev,
            )
            for tid in state.waiting_on
        ]
