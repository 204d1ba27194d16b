"""Triggers' sealed signing secrets."""

from engine.ports import (
    TriggerSecrets,
)

from .data import Data, suspend


class Secrets(Data):
    """Triggers' sealed signing secrets."""

    async def save_secrets(self, flow_id: str, trigger_id: str, secrets: TriggerSecrets) -> bool:
        await suspend()
        stored = self.secrets.get(trigger_id)
        if (stored[1].version if stored else 0) != secrets.version - 1:
            return False
        self.secrets[trigger_id] = (flow_id, secrets)
        return True

    async def secrets_of(self, flow_id: str) -> dict[str, TriggerSecrets]:
        return {t: s for t, (f, s) in self.secrets.items() if f == flow_id}
