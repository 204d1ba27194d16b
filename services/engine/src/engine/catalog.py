"""The flow catalogue: deploy versions, compile them once, describe and announce them."""

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

from engine.core.definition import Flow, compile_flow
from engine.ports import FlowRecord, Publisher, Store
from schemas.events import FlowVersionRegistered, RegistryRecord, TriggerRegistered
from schemas.flows import DeployedFlow, ExternalCallbackBlock, FlowDefinition, TriggerInfo

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CatalogConfig:
    public_url: str  # the gateway's public base URL, for callback URLs
    cache_size: int = 1024


class Catalog:
    """Deployed flow versions: stored, compiled once and cached, announced on the registry."""

    def __init__(
        self,
        store: Store,
        publisher: Publisher,
        config: CatalogConfig,
        clock: Callable[[], int],
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self._store = store
        self._publish = publisher
        self._config = config
        self._now = clock
        self._new_id = new_id
        self._flows: dict[str, Flow] = {}

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

    async def compiled(self, flow_id: str) -> Flow | None:
        """The compiled flow, from the cache when it is there."""
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
        if len(self._flows) >= self._config.cache_size:
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
