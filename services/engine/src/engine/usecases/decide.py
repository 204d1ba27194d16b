"""Decide an activation: admit it (its trigger, user, signature and idempotency key),
then start an execution (an entry trigger), resume what it selects, or buffer it; its
outcome is stored once and published."""

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from engine.catalog import Catalog
from engine.core import execution as ex
from engine.core.matching import activation_bindings, authorized
from engine.ports import Publisher, Resuming, Store, TokenResolver
from engine.usecases.activation import UNREAD, Activation, Decision, Unread
from engine.usecases.buffer import Buffer
from engine.usecases.conditions import Conditions
from engine.usecases.selection import Selection
from engine.usecases.start import Starts
from schemas import opaque
from schemas.callbacks import Selector, SelectorKind, auth_refusal
from schemas.events import (
    ActivateTrigger,
    ActivationOutcome,
    ActivationRefused,
    ActivationSource,
    Outcome,
)
from schemas.flows import AuthenticationType
from schemas.signing import user_is_signed, verification_is_signed
from schemas.users import User

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineConfig:
    idempotency_retention_ms: int = 24 * 3600 * 1000
    activation_key: str | None = None  # the gateway's, to verify the users it signed
    body_retention_ms: int = 7 * 24 * 3600 * 1000  # the log keeps bodies (0: none)
    log_retention_ms: int = 30 * 24 * 3600 * 1000  # and its records


class Decisions:
    """Decides activations, exactly once each."""

    def __init__(
        self,
        catalog: Catalog,
        store: Store,
        publisher: Publisher,
        tokens: TokenResolver,
        config: EngineConfig,
        clock: Callable[[], int],
        parts: tuple[Conditions, Starts, Selection, Buffer],
    ) -> None:
        self._catalog = catalog
        self._store = store
        self._publish = publisher
        self._tokens = tokens
        self._config = config
        self._now = clock
        self._conditions, self._starts, self._selection, self._buffer = parts
        self._last_signed: tuple[str, User | None, User | None] | None = None

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
            receivedAt=command.receivedAt,
            source=command.source,
            userId=user.objectId if (user := self._signed_user(command, warn=False)) else None,
            bodySize=body_size(command.data),
            replayOf=command.replayOf,
        )
        if self._config.body_retention_ms > 0:
            decision._request = {
                "data": command.data,
                "execution": command.execution,
                "user": user.model_dump(mode="json") if user else None,
            }
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

    async def log_refused(self, refused: ActivationRefused) -> None:
        """Write a callback a gateway refused into the activation log (only there: the
        caller had its answer, and no activation was published); a report delivered
        again finds its record and changes nothing."""
        await self._store.save_outcomes([refused.as_outcome()])

    async def read_activations(
        self, activation_ids: list[str]
    ) -> dict[str, ActivationOutcome | Resuming]:
        """What the store holds for many activations, in one read (for a batch)."""
        return await self._store.get_activations(activation_ids)

    async def read_ahead(
        self,
        commands: list[ActivateTrigger],
    ) -> dict[str, ex.ExecutionState]:
        """The executions a batch's activations name (`execution=<id>`), in one read (at
        the same time as their outcomes: one named by an activation decided before is
        read for nothing, which is rare): a resume by id then costs its compare-and-set
        alone."""
        named: dict[str, None] = {}
        for command in commands:
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
        if command.source != ActivationSource.BY_NAME:
            return await self._decide_version(command, resuming, nobody_waits, read_ahead)
        # by names: the live version first; where nobody waits there, the older
        # versions' executions waiting at a trigger of that name, newest version first
        # (their versions read only then)
        if resuming is not None and resuming.execution_ids:
            # a redelivery resumes what the first delivery chose, in that version
            first = await self._store.get_execution(resuming.execution_ids[0])
            if first is not None and first.flow_id != command.flowId.lower():
                versions = await self._older_versions(command)
                chosen = [v for v in versions if v.flowId == first.flow_id]
                command = chosen[0] if chosen else command
            return await self._decide_version(command, resuming, nobody_waits, read_ahead)
        decision = await self._decide_version(command, None, nobody_waits, read_ahead)
        if decision[0] != Outcome.NO_WAITER:
            return decision
        for older in await self._older_versions(command):
            decision = await self._decide_version(older, None, nobody_waits, read_ahead)
            if decision[0] != Outcome.NO_WAITER:
                break
        return decision

    async def _older_versions(self, command: ActivateTrigger) -> list[ActivateTrigger]:
        """The activation as it applies to each older version of its flow with a trigger
        of the same name, newest first."""
        flow = await self._catalog.compiled(command.flowId)
        block = flow.trigger(command.triggerId) if flow else None
        if flow is None or block is None:
            return []
        named: list[ActivateTrigger] = []
        versions = await self._catalog.versions_of(flow.definition.name)
        ids = [version.flow_id for _, version in versions]
        older = versions[ids.index(flow.flow_id) + 1 :] if flow.flow_id in ids else []
        for _, version in older:
            trigger_id = version.trigger_ids.get(block.name)
            if trigger_id:
                update = {"flowId": version.flow_id, "triggerId": trigger_id}
                named.append(command.model_copy(update=update))
        return named

    async def _decide_version(
        self,
        command: ActivateTrigger,
        resuming: Resuming | None,
        nobody_waits: set[str] | None,
        read_ahead: dict[str, ex.ExecutionState] | None,
    ) -> Decision:
        admitted = await self._admit(command)
        if not isinstance(admitted, _Admitted):
            return admitted
        act, selector = admitted.act, admitted.selector
        flow, block = act.flow, act.block
        if flow.entry == block.name and selector.kind != SelectorKind.ID:
            # an entry trigger starts an execution per activation, when its condition holds;
            # one naming an execution resumes that one instead (an execution started
            # through the API waits there)
            fresh = ex.new_execution(flow, str(uuid.UUID(int=0)), command.data, self._now())
            check = await self._conditions.evaluate(act, ex.context(flow, fresh))
            if not check.holds:
                return Outcome.FILTERED, [], check.error or "the entry condition is false"
            return Outcome.ACTIVATED, [await self._starts.from_trigger(act)], None
        decision = await self._selection.resume(act, selector, resuming, nobody_waits, read_ahead)
        if (
            resuming is None
            and decision[0] in (Outcome.NO_WAITER, Outcome.FILTERED)
            and block.bufferSeconds
        ):
            return await self._buffer.keep(act, selector, decision)
        return decision

    async def _admit(self, command: ActivateTrigger) -> "_Admitted | Decision":
        """The activation with what it selects, or the decision that ends it here: an
        unknown trigger, a user or signature that fails the trigger's rules, a used
        idempotency key, a selector that does not parse."""
        flow = await self._catalog.compiled(command.flowId)
        block = flow.trigger(command.triggerId) if flow else None
        if flow is None or block is None:
            return Outcome.UNKNOWN_TRIGGER, [], "no such flow or trigger"
        user = self._signed_user(command)
        if user is None and command.userToken:
            user = await self._tokens.resolve(command.userToken)
        if not authorized(block, user):
            return (
                Outcome.IGNORED_AUTH,
                [],
                auth_refusal(block.authenticationType, block.requiredRoles, user),
            )
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
        act = Activation(
            flow,
            block,
            trigger_id,
            command,
            user_context,
            activation_bindings(command.data, user_context),
        )
        return _Admitted(act, selector)

    def _signed_user(self, command: ActivateTrigger, warn: bool = True) -> User | None:
        """The activation's user if the gateway signed it; anyone else's is ignored. The
        last answer is kept: the log asks again for the activation just decided, and the
        signature is checked once."""
        last = self._last_signed
        if last is not None and last[0] == command.activationId and last[1] is command.user:
            return last[2]
        user = self._check_signature(command, warn)
        self._last_signed = (command.activationId, command.user, user)
        return user

    def _check_signature(self, command: ActivateTrigger, warn: bool) -> User | None:
        if command.user is None:
            return None
        if user_is_signed(
            self._config.activation_key,
            command.activationId,
            command.user.as_context(),
            command.userSignature,
        ):
            return command.user
        if not warn:
            return None
        logger.warning(
            "an unsigned user on an activation ignored",
            extra={"activation_id": command.activationId, "flow_id": command.flowId},
        )
        return None


@dataclass(frozen=True)
class _Admitted:
    act: Activation
    selector: Selector


def body_size(data: object) -> int:
    """The bytes of an activation's data as compact JSON."""
    try:
        return len(orjson.dumps(data))
    except orjson.JSONEncodeError:  # an integer beyond 64 bits
        return len(opaque.encode(data).encode())
