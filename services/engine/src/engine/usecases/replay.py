"""Replay logged activations: the request the log kept, sent again as a new activation
with `replayOf`; the same activation replayed twice is one replay."""

import logging
import uuid
from collections.abc import Callable

from engine.ports import Publisher, Store
from schemas.activations import ReplayAnswer, Replayed, ReplayRequest
from schemas.callbacks import Selector, SelectorKind
from schemas.events import ActivateTrigger, ActivationOutcome, ActivationSource, Outcome
from schemas.signing import sign_user, sign_verification
from schemas.users import User

logger = logging.getLogger(__name__)

# a replay's id is derived from the activation it replays: sent twice, it is one
# activation, and the second is answered as the first was decided
_REPLAY_NAMESPACE = uuid.UUID("0b5e8f3c-6d1a-4c77-9a43-2f1e8d6b7c90")
_PAGE = 100


class UnknownActivation(LookupError):
    """No decided activation of that id is in the log."""


class BodyNotKept(LookupError):
    """The activation's body is past the retention time (or was never kept)."""


class Replays:
    """Sends logged activations again."""

    def __init__(
        self,
        store: Store,
        publisher: Publisher,
        activation_key: str | None,
        clock: Callable[[], int],
    ) -> None:
        self._store = store
        self._publish = publisher
        self._key = activation_key
        self._now = clock

    async def replay(self, activation_id: str) -> Replayed:
        found = await self._store.activation_record(activation_id)
        if found is None:
            raise UnknownActivation(activation_id)
        outcome, request = found
        if request is None:
            raise BodyNotKept(
                f"the body of activation {activation_id} is no longer kept "
                "(HOOKFLOW_ENGINE_ACTIVATION_BODY_RETENTION_DAYS): it cannot be replayed"
            )
        return await self._send(outcome, request)

    async def replay_matching(self, where: ReplayRequest) -> ReplayAnswer:
        """Every matching activation whose body is kept, newest first, up to the limit."""
        replayed: list[Replayed] = []
        skipped: list[str] = []
        cursor = None
        while len(replayed) < where.limit:
            page, cursor = await self._store.list_activations(where, cursor, _PAGE)
            for outcome, request in page:
                if len(replayed) >= where.limit:
                    break
                if request is None:
                    skipped.append(outcome.activationId)
                else:
                    replayed.append(await self._send(outcome, request))
            if cursor is None:
                break
        return ReplayAnswer(replayed=replayed, skipped=skipped)

    async def _send(self, outcome: ActivationOutcome, request: dict[str, object]) -> Replayed:
        new_id = str(uuid.uuid5(_REPLAY_NAMESPACE, outcome.activationId))
        user = User.model_validate(request["user"]) if request.get("user") else None
        key = self._key
        # the user the engine verified then travels signed again; a webhook signature
        # verified then (the activation passed its trigger's checks) is vouched for again
        vouched = outcome.outcome != Outcome.IGNORED_AUTH
        execution = str(request.get("execution") or "all")
        command = ActivateTrigger(
            activationId=new_id,
            flowId=outcome.flowId,
            triggerId=outcome.triggerId,
            execution=execution,
            data=request.get("data") or {},
            user=user,
            userSignature=sign_user(key, new_id, user.as_context()) if key and user else None,
            signatureVerified=sign_verification(key, new_id) if key and vouched else None,
            source=ActivationSource.REPLAY,
            receivedAt=self._now(),
            replayOf=outcome.activationId,
        )
        try:
            selector = Selector.parse(execution)
        except ValueError:  # it was decided NO_WAITER for it: the replay will be too
            selector = Selector(SelectorKind.ALL)
        # keyed as the gateway keys a callback: by execution when it names one
        partition_key = selector.execution_id or outcome.triggerId
        await self._publish.activation(command, partition_key)
        logger.info(
            "activation replayed",
            extra={"activation_id": new_id, "replay_of": outcome.activationId},
        )
        return Replayed(activationId=new_id, replayOf=outcome.activationId)
