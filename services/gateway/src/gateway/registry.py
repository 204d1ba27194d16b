"""The flow registry in memory, fed by the engine's compacted flow-registry topic."""

import asyncio
import logging
from collections.abc import Awaitable, Callable

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
        self._live: dict[str, str] = {}  # flow name -> its newest version's id
        self._named: dict[tuple[str, str], str] = {}  # (flow id, trigger name) -> trigger id
        self._positions: dict[int, int] = {}  # partition -> next offset applied
        self._applied = asyncio.Event()  # set at every record applied

    def flow(self, flow_id: str) -> FlowVersionRegistered | None:
        return self._flows.get(flow_id.lower())

    def trigger(self, flow_id: str, trigger_id: str) -> TriggerRegistered | None:
        return self._triggers.get((flow_id.lower(), trigger_id.lower()))

    def live_flow(self, name: str) -> FlowVersionRegistered | None:
        """The live version of the flow named `name`."""
        flow_id = self._live.get(name)
        return self._flows.get(flow_id) if flow_id else None

    def trigger_named(self, flow_id: str, name: str) -> TriggerRegistered | None:
        trigger_id = self._named.get((flow_id.lower(), name))
        return self._triggers.get((flow_id.lower(), trigger_id)) if trigger_id else None

    def apply(self, key: bytes | None, value: bytes | None, partition: int, offset: int) -> None:
        """Apply one record of the topic; a record without value (tombstone) deletes its key."""
        self._positions[partition] = offset + 1
        self._applied.set()
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
            flow_id = record.flowId.lower()
            self._triggers[(flow_id, record.triggerId.lower())] = record
            self._named[(flow_id, record.name)] = record.triggerId.lower()
        else:
            flow_id = record.flowId.lower()
            self._flows[flow_id] = record
            # the newest version of a name is live (a deploy publishes only its own
            # record, so an older version's record may still say live)
            current = self.live_flow(record.name)
            if current is None or current.version <= record.version:
                self._live[record.name] = flow_id

    def _forget(self, key: bytes | None) -> None:
        if not key:
            return
        text = key.decode(errors="replace").lower()
        if "/" in text:
            flow_id, trigger_id = text.split("/", 1)
            trigger = self._triggers.pop((flow_id, trigger_id), None)
            if trigger is not None:
                self._named.pop((flow_id, trigger.name), None)
        else:
            flow = self._flows.pop(text, None)
            if flow is not None and self._live.get(flow.name) == text:
                del self._live[flow.name]

    def caught_up(self, end_offsets: dict[int, int]) -> bool:
        """Whether every partition has been applied up to the given end offsets."""
        return all(self._positions.get(p, 0) >= end for p, end in end_offsets.items() if end > 0)

    async def reach(self, end_offsets: dict[int, int]) -> None:
        """Return once every partition has been applied up to the given end offsets."""
        while not self.caught_up(end_offsets):
            self._applied.clear()
            await self._applied.wait()

    def __len__(self) -> int:
        return len(self._flows)


class Refresh:
    """Brings the registry up to the topic's end before a flow or trigger is called unknown.

    A deploy answers once its registry records are on the topic, so a gateway that, on a
    miss, reads the topic up to the end offsets it has now sees every flow deployed before
    the call. Concurrent misses share one round; a miss never joins a round that asked
    for the offsets before the miss arrived (that round could predate the deploy).
    """

    def __init__(
        self,
        registry: Registry,
        end_offsets: Callable[[], Awaitable[dict[int, int]]],
        timeout_seconds: float = 2.0,
    ) -> None:
        self._registry = registry
        self._end_offsets = end_offsets
        self._timeout = timeout_seconds
        self._round: tuple[float, asyncio.Task[None]] | None = None
        self.rounds = 0

    async def __call__(self) -> None:
        loop = asyncio.get_running_loop()
        arrived = loop.time()
        while True:
            if self._round is None or self._round[1].done():
                self._round = (loop.time(), asyncio.create_task(self._catch_up()))
            started, task = self._round
            await asyncio.shield(task)
            if started >= arrived:
                return

    async def _catch_up(self) -> None:
        self.rounds += 1
        try:
            async with asyncio.timeout(self._timeout):
                await self._registry.reach(await self._end_offsets())
        except Exception as exc:  # the broker is away: answer from what was read
            logger.warning("flow registry not refreshed", extra={"error": repr(exc)})
