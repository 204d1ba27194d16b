"""Activation outcomes, the choices of activations on their way, idempotency keys."""

from typing import Any

from engine.ports import (
    Resuming,
)
from schemas.activations import ActivationFilter
from schemas.events import (
    ActivationOutcome,
    Outcome,
)

from .data import Data, suspend


class Outcomes(Data):
    """Activation outcomes, the choices of activations on their way, idempotency keys."""

    async def get_activation(self, activation_id: str) -> ActivationOutcome | Resuming | None:
        await suspend()
        return self.outcomes.get(activation_id) or self.resuming.get(activation_id)

    async def get_activations(
        self, activation_ids: list[str]
    ) -> dict[str, ActivationOutcome | Resuming]:
        found = {a: await self.get_activation(a) for a in activation_ids}
        return {a: f for a, f in found.items() if f is not None}

    async def begin_resuming(self, resuming: Resuming) -> Resuming:
        return self.resuming.setdefault(resuming.activation_id, resuming)

    async def save_outcome(self, outcome: ActivationOutcome) -> bool:
        await suspend()
        if outcome.activationId in self.outcomes:
            return False
        self.outcomes[outcome.activationId] = outcome
        self.resuming.pop(outcome.activationId, None)
        return True

    async def save_outcomes(self, outcomes: list[ActivationOutcome]) -> set[str]:
        return {o.activationId for o in outcomes if not await self.save_outcome(o)}

    async def remember_key(
        self, scope: str, key: str, activation_id: str, now: int, retention_ms: int
    ) -> str:
        key_id = f"{scope}:{key}"
        owner = self.keys.get(key_id)
        if owner is None or owner[1] < now - retention_ms:
            self.keys[key_id] = (activation_id, now)
            return activation_id
        return owner[0]

    async def purge(self, now: int, retention_ms: int) -> int:
        expired = [k for k, (_, created) in self.keys.items() if created < now - retention_ms]
        for key in expired:
            del self.keys[key]
        return len(expired)

    async def settle_outcome(self, outcome: ActivationOutcome) -> bool:
        await suspend()
        stored = self.outcomes.get(outcome.activationId)
        if stored is not None and stored.outcome != Outcome.BUFFERED:
            return False
        if stored is not None:  # as an update of the stored fields: what it has not stays
            merged = stored.model_copy(update=outcome.model_dump(exclude_none=True))
            merged._request = stored._request
            outcome = merged
        self.outcomes[outcome.activationId] = outcome
        self.resuming.pop(outcome.activationId, None)
        return True

    async def activation_record(
        self, activation_id: str
    ) -> tuple[ActivationOutcome, dict[str, Any] | None] | None:
        await suspend()
        found = self.outcomes.get(activation_id)
        return None if found is None else (found, found._request)

    async def list_activations(
        self, where: ActivationFilter, cursor: str | None, limit: int
    ) -> tuple[list[tuple[ActivationOutcome, dict[str, Any] | None]], str | None]:
        await suspend()
        matching = self._matching(where)
        if cursor:
            at, after = cursor.split("/", 1)
            matching = [o for o in matching if (o.receivedAt, o.activationId) < (int(at), after)]
        page = matching[:limit]
        more = len(matching) > limit
        last = page[-1] if page else None
        next_cursor = f"{last.receivedAt}/{last.activationId}" if more and last else None
        return [(o, o._request) for o in page], next_cursor

    async def activation_times(
        self, where: ActivationFilter, limit: int
    ) -> list[tuple[int, str, str]]:
        await suspend()
        return [(o.receivedAt or 0, o.triggerId, o.outcome.value) for o in self._matching(where)][
            :limit
        ]

    def _matching(self, where: ActivationFilter) -> list[ActivationOutcome]:
        return sorted(
            (
                o
                for o in self.outcomes.values()
                if o.receivedAt is not None
                and (not where.flowId or o.flowId == where.flowId.lower())
                and (not where.triggerId or o.triggerId == where.triggerId.lower())
                and (not where.outcome or o.outcome in where.outcome)
                and (where.since is None or o.receivedAt >= where.since)
                and (where.until is None or o.receivedAt < where.until)
            ),
            key=lambda o: (o.receivedAt, o.activationId),
            reverse=True,
        )

    async def purge_activations(self, now: int, body_ms: int, log_ms: int) -> tuple[int, int]:
        bodies = records = 0
        for activation_id, o in list(self.outcomes.items()):
            if o.receivedAt is None:
                continue
            if o.receivedAt < now - log_ms:
                del self.outcomes[activation_id]
                records += 1
            elif o.receivedAt < now - body_ms and o._request is not None:
                o._request = None
                bodies += 1
        return bodies, records
