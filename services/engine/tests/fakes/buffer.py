"""The early-callback buffer and its claims."""

from dataclasses import replace

from engine.ports import (
    EXPIRY,
    Buffered,
)

from .data import Data, suspend


class BufferedActivations(Data):
    """The early-callback buffer and its claims."""

    async def buffer(self, entry: Buffered) -> Buffered:
        await suspend()
        kept, _ = self.kept.setdefault(entry.activation_id, (entry, entry.expires))
        return kept

    async def buffered(
        self, trigger_id: str, key: str | None, now: int, limit: int
    ) -> list[Buffered]:
        await suspend()
        found = [
            entry
            for entry, _ in self.kept.values()
            if entry.trigger_id == trigger_id
            and (key is None or entry.key == key)
            and entry.claimed_by is None
            and entry.expires > now
        ]
        return sorted(found, key=lambda e: (e.arrived, e.activation_id))[:limit]

    async def claim_buffered(
        self, activation_id: str, claimer: str, now: int, stale_ms: int
    ) -> bool:
        await suspend()
        found = self.kept.get(activation_id)
        if found is None or found[0].claimed_by is not None:
            return False
        entry = found[0]
        if (entry.expires <= now) != (claimer == EXPIRY):
            return False
        self.kept[activation_id] = (replace(entry, claimed_by=claimer), now + stale_ms)
        return True

    async def release_buffered(self, activation_id: str, claimer: str) -> None:
        found = self.kept.get(activation_id)
        if found is not None and found[0].claimed_by == claimer:
            self.kept[activation_id] = (replace(found[0], claimed_by=None), found[0].expires)

    async def drop_buffered(self, activation_id: str) -> None:
        self.kept.pop(activation_id, None)

    async def due_buffered(self, now: int, limit: int) -> list[Buffered]:
        due = sorted((d, e.activation_id, e) for e, d in self.kept.values() if d <= now)
        return [entry for _, _, entry in due[:limit]]
