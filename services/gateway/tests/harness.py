"""A gateway on FastStream's test broker with a registry and users of our choosing."""

import base64
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from faststream.kafka import KafkaBroker, TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage

from gateway.app import create_app
from gateway.settings import Settings
from gateway.tokens import AuthUnavailable
from schemas.events import FlowVersionRegistered, TriggerRegistered
from schemas.flows import AuthenticationType, OnFailPolicy, SignatureScheme
from schemas.sealing import SealedSecret, seal, sealing_key
from schemas.topics import Topics
from schemas.users import TokenIntrospection, User

TOPICS = Topics("unit")
FLOW = str(uuid.uuid4())
OPEN = str(uuid.uuid4())  # NONE trigger
PAY = str(uuid.uuid4())  # USER trigger, role PaymentGateway, ERROR
QUIET = str(uuid.uuid4())  # USER trigger, role PaymentGateway, IGNORE
# SIGNATURE triggers, ERROR: one per scheme; and a standard-webhooks one under IGNORE
SIGNED = {scheme: str(uuid.uuid4()) for scheme in SignatureScheme}
SIGNED_QUIET = str(uuid.uuid4())
SECRET = "whsec_" + base64.b64encode(b"unit signing secret, 32 bytes..!").decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"an older secret in its grace 24h").decode()

PAYER = User(
    objectId="U1",
    ownerId="U1",
    email="pay@gw.example",
    created=1,
    roles=["PaymentGateway"],
    firstName="Pay",
)
CLERK = User(objectId="U2", ownerId="U2", email="clerk@shop.example", created=1, roles=["Clerk"])
USERS = {"payer-token": PAYER, "clerk-token": CLERK}
ADMIN_KEY = "unit-admin-key"
ACTIVATION_KEY = "unit-activation-key"


def trigger(
    trigger_id: str, name: str, auth: AuthenticationType, policy: OnFailPolicy, roles: list[str]
) -> TriggerRegistered:
    return TriggerRegistered(
        flowId=FLOW,
        triggerId=trigger_id,
        name=name,
        authenticationType=auth,
        requiredRoles=roles,
        onFailPolicy=policy,
        entry=False,
    )


def signed(trigger_id: str, scheme: SignatureScheme, policy: OnFailPolicy) -> TriggerRegistered:
    """A SIGNATURE trigger with SECRET current and OLD_SECRET valid for an hour more, as
    the engine announces them: sealed with the key the gateway shares."""
    key = sealing_key(ACTIVATION_KEY)
    in_an_hour = int(time.time() * 1000) + 3_600_000
    return trigger(
        trigger_id, f"Signed {scheme}", AuthenticationType.SIGNATURE, policy, []
    ).model_copy(
        update={
            "signatureScheme": scheme,
            "toleranceSeconds": 300,
            "secrets": [
                SealedSecret(sealed=seal(key, SECRET, trigger_id)),
                SealedSecret(sealed=seal(key, OLD_SECRET, trigger_id), validUntil=in_an_hour),
                # expired an hour ago: no longer verifies
                SealedSecret(
                    sealed=seal(key, "whsec_ZXhwaXJlZA==", trigger_id),
                    validUntil=in_an_hour - 7_200_000,
                ),
            ],
        }
    )


REGISTRY: list[FlowVersionRegistered | TriggerRegistered] = [
    FlowVersionRegistered(flowId=FLOW, name="Orders", version=1, live=True),
    trigger(OPEN, "Open", AuthenticationType.NONE, OnFailPolicy.ERROR, []),
    trigger(PAY, "Pay", AuthenticationType.USER, OnFailPolicy.ERROR, ["PaymentGateway"]),
    trigger(QUIET, "Quiet", AuthenticationType.USER, OnFailPolicy.IGNORE, ["PaymentGateway"]),
    *(signed(tid, scheme, OnFailPolicy.ERROR) for scheme, tid in SIGNED.items()),
    signed(SIGNED_QUIET, SignatureScheme.STANDARD_WEBHOOKS, OnFailPolicy.IGNORE),
]


@dataclass
class Harness:
    http: httpx.AsyncClient
    broker: KafkaBroker
    activations: list[dict[str, Any]] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)  # the activation messages as published
    keys: list[bytes | None] = field(default_factory=list)
    starts: list[dict[str, Any]] = field(default_factory=list)
    refusals: list[dict[str, Any]] = field(default_factory=list)  # for the activation log
    introspections: list[str] = field(default_factory=list)
    auth_down: bool = False
    app: Any = None  # the ASGI app, for requests httpx cannot make (a body that stalls)

    def url(self, trigger_id: str, flow_id: str = FLOW, query: str = "") -> str:
        return f"/api/automation/flow/{flow_id}/trigger/{trigger_id}/activate{query}"


@contextlib.asynccontextmanager
async def gateway(
    offsets: Callable[[str], Awaitable[dict[int, int]]] | None = None, **overrides: Any
) -> AsyncIterator[Harness]:
    """`offsets`: the registry topic's end offsets as the gateway reads them (default: the
    topic was empty when the gateway started)."""
    broker = KafkaBroker()
    harness = Harness(http=None, broker=broker)  # type: ignore[arg-type]

    @broker.subscriber(TOPICS.activations)
    async def on_activation(message: KafkaMessage) -> None:
        harness.raw.append(message.body)
        harness.activations.append(json.loads(message.body))
        harness.keys.append(message.raw_message.key)  # type: ignore[union-attr]

    @broker.subscriber(TOPICS.activation_refusals)
    async def on_refusal(body: dict[str, Any]) -> None:
        harness.refusals.append(body)

    @broker.subscriber(TOPICS.execution_starts)
    async def on_start(body: dict[str, Any]) -> None:
        harness.starts.append(body)

    async def introspect(token: str) -> TokenIntrospection:
        harness.introspections.append(token)
        if harness.auth_down:
            raise AuthUnavailable("connection refused")
        user = USERS.get(token)
        return TokenIntrospection(active=user is not None, user=user)

    async def no_offsets(topic: str) -> dict[int, int]:
        return {0: 0}  # the registry topic exists and was empty when the gateway started

    overrides.setdefault("admin_key", ADMIN_KEY)
    overrides.setdefault("activation_key", ACTIVATION_KEY)
    settings = Settings(topic_prefix="unit", **overrides)
    app = create_app(
        settings,
        broker=broker,
        introspect=introspect,
        end_offsets=offsets or no_offsets,
        configure_logging=False,
    )
    async with TestKafkaBroker(broker) as test_broker, app.router.lifespan_context(app):
        for record in REGISTRY:
            key = (
                f"{record.flowId}/{record.triggerId}"
                if isinstance(record, TriggerRegistered)
                else record.flowId
            )
            await test_broker.publish(
                record.model_dump(mode="json"), TOPICS.flow_registry, key=key.encode()
            )
        transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 4000))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://gateway", headers={"X-Admin-Key": ADMIN_KEY}
        ) as http:
            harness.http = http
            harness.app = app
            yield harness
