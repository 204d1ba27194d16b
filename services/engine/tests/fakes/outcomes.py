"""Activation outcomes, the choices of activations on their way, idempotency keys."""

from engine.ports import (
    Resuming,
)
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
        self.outcomes[outcome.activationId] = outcome
        self.resuming.pop(outcome.activationId, None)
        return True
