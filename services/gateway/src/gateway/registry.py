"""The flow registry in memory, fed by the engine's compacted flow-registry topic."""

import logging

from pydantic import TypeAdapter, ValidationError

from schemas.events import FlowVersionRegistered, RegistryRecord, TriggerRegistered

logger = logging.getLogger(__name__)

_RECORD: TypeAdapter[RegistryRecord] = TypeAdapter(RegistryRecord)


class Registry:
    """Which flows and triggers exist, and what each trigger demands of a caller.

    Lookups are dictionary reads: their cost does not grow with the number of flows.
    """

    def __init__(self) -> None:
        self._flows: dict[str, FlowVersionRegistered] = {}
        self._triggers: dict[tuple[str, str], TriggerRegistered] = {}
        self._positions: dict[int, int] = {}  # partition -> next offset applied

    def flow(self, flow_id: str) -> FlowVersionRegistered | None:
        return self._flows.get(flow_id.lower())

    def trigger(self, flow_id: str, trigger_id: str) -> TriggerRegistered | None:
        return self._triggers.get((flow_id.lower(), trigger_id.lower()))

    def apply(self, key: bytes | None, value: bytes | None, partition: int, offset: int) -> None:
        """Apply one record of the topic; a record without value (tombstone) deletes its key."""
        self._positions[partition] = offset + 1
        if not value:
            self._forget(key)
            return
        try:
            record = _RECORD.validate_json(value)
        except ValidationError:
            logger.warning(
                "unreadable flow-registry record skipped",
                extra={"partition": partition, "offset": offset},
            )
            return
        if isinstance(record, TriggerRegistered):
            self._triggers[(record.flowId.lower(), record.triggerId.lower())] = record
        else:
            self._flows[record.flowId.lower()] = record

    def _forget(self, key: bytes | None) -> None:
        if not key:
            return
        text = key.decode(errors="replace").lower()
        if "/" in text:
            flow_id, trigger_id = text.split("/", 1)
            self._triggers.pop((flow_id, trigger_id), None)
        else:
            self._flows.pop(text, None)

    def caught_up(self, end_offsets: dict[int, int]) -> bool:
        """Whether every partition has been applied up to the given end offsets."""
        return all(self._positions.get(p, 0) >= end for p, end in end_offsets.items() if end > 0)

    def __len__(self) -> int:
        return len(self._flows)
