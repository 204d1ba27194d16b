"""The flow catalogue: deploy versions, compile them once, describe and announce them.

It also issues the signing secrets of SIGNATURE triggers: at deploy (the only answer
that shows them, besides a rotation) and on rotation, sealed in the store and on the
flow registry, where the gateways read them (`schemas.sealing`).
"""

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from engine.core.definition import DefinitionError, Flow, compile_flow
from engine.ports import FlowRecord, Publisher, Store, TriggerSecrets
from schemas.events import (
    FlowVersionRegistered,
    RegistryRecord,
    TriggerRegistered,
)
from schemas.flows import (
    AuthenticationType,
    DeployedFlow,
    ExternalCallbackBlock,
    FlowDefinition,
    SignatureScheme,
    StartBlock,
    StartRules,
    TriggerInfo,
)
from schemas.sealing import SealedSecret, seal
from schemas.webhooks import DEFAULT_TOLERANCE_SECONDS, new_secret

# a rotated-out secret keeps verifying this long, so that senders can switch over
SECRET_GRACE_MS = 24 * 3600 * 1000
_MAX_SECRETS = 8  # the current one and those still in their grace period, at most
_SAVE_ATTEMPTS = 5


class UnknownFlow(LookupError):
    pass


class UnknownTrigger(LookupError):
    pass


class NotSigned(ValueError):
    """The trigger does not use SIGNATURE: it has no secret."""


@dataclass(frozen=True)
class RotatedSecret:
    flow_id: str
    trigger_id: str
    secret: str
    previous_valid_until: int | None  # when the secrets it replaces stop verifying


logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CatalogConfig:
    public_url: str  # the gateway's public base URL, for callback URLs
    cache_size: int = 1024
    sealing_key: bytes | None = None  # from the activation key; needed for SIGNATURE


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
        signed = [name for name in compiled.trigger_ids if _signed(compiled, name)]
        if signed and self._config.sealing_key is None:
            raise DefinitionError(
                [
                    f"block {signed[0]!r}: SIGNATURE needs the activation key the engine "
                    "shares with the gateways (HOOKFLOW_ENGINE_ACTIVATION_KEY), which this "
                    "engine was started without"
                ]
            )
        # secrets first: a crash before the flow is stored leaves secrets nobody reads
        issued: dict[str, str] = {}
        secrets: dict[str, TriggerSecrets] = {}
        for name in signed:
            trigger_id = compiled.trigger_ids[name]
            issued[name] = new_secret()
            secrets[trigger_id] = TriggerSecrets(1, (self._seal(issued[name], trigger_id),))
            await self._store.save_secrets(flow_id, trigger_id, secrets[trigger_id])
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
        await self._publish.registry(self.registry_records(record, flow, secrets))
        logger.info("flow deployed", extra={"flow_id": flow_id, "version": version})
        return self.describe(record, flow, issued)

    async def rotate_secret(self, flow_id: str, trigger_id: str) -> RotatedSecret:
        """Issue a new signing secret; the ones it replaces verify for 24 h more."""
        found = await self.flow(flow_id)
        if found is None:
            raise UnknownFlow(flow_id)
        record, flow = found
        block = flow.trigger(trigger_id)
        if block is None:
            raise UnknownTrigger(trigger_id)
        trigger_id = trigger_id.lower()
        if block.authenticationType != AuthenticationType.SIGNATURE:
            raise NotSigned(f"trigger {block.name!r} is not a SIGNATURE trigger")
        secret = new_secret()
        for _ in range(_SAVE_ATTEMPTS):
            now = self._now()
            stored = (await self._store.secrets_of(record.flow_id)).get(trigger_id)
            current = stored.secrets if stored else ()
            until = now + SECRET_GRACE_MS
            kept = [
                s if s.validUntil is not None else s.model_copy(update={"validUntil": until})
                for s in current
                if s.validUntil is None or s.validUntil > now
            ]
            rotated = TriggerSecrets(
                (stored.version if stored else 0) + 1,
                (self._seal(secret, trigger_id), *kept[: _MAX_SECRETS - 1]),
            )
            if await self._store.save_secrets(record.flow_id, trigger_id, rotated):
                break
        else:
            raise RuntimeError(f"the secrets of trigger {trigger_id} keep changing")
        secrets = await self._store.secrets_of(record.flow_id)
        await self._publish.registry(self.registry_records(record, flow, secrets))
        logger.info("signing secret rotated", extra={"flow_id": record.flow_id})
        return RotatedSecret(record.flow_id, trigger_id, secret, until if current else None)

    def _seal(self, secret: str, trigger_id: str) -> SealedSecret:
        assert self._config.sealing_key is not None  # checked at deploy
        return SealedSecret(sealed=seal(self._config.sealing_key, secret, trigger_id))

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

    async def versions_of(self, name: str) -> list[tuple[FlowRecord, Flow]]:
        """Every version of the flow named `name`, newest (the live one) first."""
        return [(record, self.of(record)) for record in await self._store.versions_of(name)]

    def of(self, record: FlowRecord) -> Flow:
        """The compiled form of a version already read from the store."""
        return self._flows.get(record.flow_id) or self._remember(record)

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

    def describe(
        self, record: FlowRecord, flow: Flow, issued: Mapping[str, str] | None = None
    ) -> DeployedFlow:
        """A version and its triggers; with the secrets just `issued`, by block name."""
        return DeployedFlow(
            flowId=record.flow_id,
            name=record.name,
            version=record.version,
            triggers=[
                TriggerInfo(
                    triggerId=tid,
                    name=name,
                    callbackUrl=flow.callback_urls[name],
                    signingSecret=(issued or {}).get(name),
                )
                for name, tid in flow.trigger_ids.items()
            ],
        )

    def registry_records(
        self, record: FlowRecord, flow: Flow, secrets: Mapping[str, TriggerSecrets]
    ) -> list[RegistryRecord]:
        entry = flow.blocks[flow.entry]
        start = (
            StartRules(
                authenticationType=entry.authenticationType,
                requiredRoles=list(entry.requiredRoles),
                onFailPolicy=entry.onFailPolicy,
            )
            if isinstance(entry, StartBlock)
            else None
        )
        records: list[RegistryRecord] = [
            FlowVersionRegistered(
                flowId=record.flow_id,
                name=record.name,
                version=record.version,
                live=record.live,
                start=start,
            )
        ]
        for name, tid in flow.trigger_ids.items():
            block = flow.blocks[name]
            assert isinstance(block, ExternalCallbackBlock)
            signed = block.authenticationType == AuthenticationType.SIGNATURE
            found = secrets.get(tid)
            records.append(
                TriggerRegistered(
                    flowId=record.flow_id,
                    triggerId=tid,
                    name=name,
                    authenticationType=block.authenticationType,
                    requiredRoles=list(block.requiredRoles),
                    onFailPolicy=block.onFailPolicy,
                    entry=flow.entry == name,
                    signatureScheme=(
                        block.signatureScheme or SignatureScheme.STANDARD_WEBHOOKS
                        if signed
                        else None
                    ),
                    toleranceSeconds=(
                        block.toleranceSeconds or DEFAULT_TOLERANCE_SECONDS if signed else None
                    ),
                    secrets=list(found.secrets) if found else [],
                    rateLimit=block.rateLimit,
                )
            )
        return records

    async def republish_registry(self) -> int:
        """Publish every flow version's registry records again (at startup); return the count."""
        count = 0
        async for record in self._store.flows():
            flow = self.of(record)
            secrets = await self._store.secrets_of(record.flow_id)
            await self._publish.registry(self.registry_records(record, flow, secrets))
            count += 1
        return count


def _signed(flow: Flow, name: str) -> bool:
    block = flow.blocks[name]
    return (
        isinstance(block, ExternalCallbackBlock)
        and block.authenticationType == AuthenticationType.SIGNATURE
    )
