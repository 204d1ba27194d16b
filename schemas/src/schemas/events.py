"""Every event and command that crosses Kafka.

Commands are imperative (`StartExecution`, `ActivateTrigger`); events are past tense.
All are frozen. `export.py` writes their JSON Schemas to `schemas/jsonschema/`.
"""

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from schemas.callbacks import EXECUTION_ID_PATTERN
from schemas.flows import AuthenticationType, OnFailPolicy, RateLimit, SignatureScheme, StartRules
from schemas.sealing import SealedSecret
from schemas.signing import sign_user, start_nonce
from schemas.users import User

JsonObject = dict[str, Any]


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Command(BaseModel):
    """A command other services may publish: fields it does not know are ignored, so that
    publishers may extend their messages."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class ActivationSource(StrEnum):
    HTTP = "http"  # came through the gateway, which already applied the auth policy
    KAFKA = "kafka"  # published straight to Kafka by another service
    # through the gateway by the flow's and the trigger's names: it also reaches
    # executions of older versions waiting at a trigger of that name
    BY_NAME = "by-name"
    REPLAY = "replay"  # an operator replayed a logged activation (`replayOf` names it)


class StartExecution(_Command):
    """Start a new execution of a flow version with `input`."""

    executionId: Annotated[str, Field(pattern=EXECUTION_ID_PATTERN)]  # a UUID
    flowId: str
    input: JsonObject = Field(default_factory=dict)
    requestedAt: int  # epoch milliseconds
    # who starts it (its `user` and `ownerId`): as on ActivateTrigger, a `user` is
    # trusted only with the gateway's signature, else `userToken` is resolved
    user: User | None = None
    userToken: str | None = None
    userSignature: str | None = None

    @classmethod
    def started_by(
        cls,
        execution_id: str,
        flow_id: str,
        data: JsonObject,
        requested_at: int,
        starter: tuple[User | None, str | None],  # the user, and the token it came with
        activation_key: str | None,
    ) -> "StartExecution":
        """A start by `starter`: its user signed with the activation key (nonce
        `start:<executionId>`), or, without a key, its token for the engine to resolve."""
        user, token = starter
        signed = user is not None and bool(activation_key)
        return cls(
            executionId=execution_id,
            flowId=flow_id,
            input=data,
            requestedAt=requested_at,
            user=user if signed else None,
            userSignature=(
                sign_user(activation_key or "", start_nonce(execution_id), user.as_context())
                if signed and user is not None
                else None
            ),
            userToken=token if user is not None and not signed else None,
        )


class ActivateTrigger(_Command):
    """Activate an External Callback trigger with posted data.

    `execution` selects which waiting executions may resume: `all` (default), `any`
    (the oldest whose condition holds) or one execution id (a UUID). `user` is the user
    the gateway resolved, trusted only with the gateway's `userSignature`
    (`schemas.signing`); a service publishing straight to Kafka sends `userToken`, which
    the engine resolves, and any `user` it sends is ignored.
    """

    activationId: str
    flowId: str
    triggerId: str
    execution: str = "all"
    data: JsonObject = Field(default_factory=dict)
    user: User | None = None
    userToken: str | None = None
    userSignature: str | None = None
    # the gateway's proof that it verified the caller's webhook signature (SIGNATURE
    # triggers take no activation without it; schemas.signing)
    signatureVerified: str | None = None
    idempotencyKey: Annotated[str, Field(max_length=256)] | None = None
    source: ActivationSource = ActivationSource.KAFKA
    receivedAt: int  # epoch milliseconds
    replayOf: str | None = None  # the activation this one replays (source `replay`)


class Outcome(StrEnum):
    ACTIVATED = "ACTIVATED"
    FILTERED = "FILTERED"
    NO_WAITER = "NO_WAITER"
    DUPLICATE = "DUPLICATE"
    IGNORED_AUTH = "IGNORED_AUTH"
    UNKNOWN_TRIGGER = "UNKNOWN_TRIGGER"
    INVALID = "INVALID"  # the message failed validation; `detail` says why
    DEAD_LETTERED = "DEAD_LETTERED"  # it kept failing; a replay of the dead letter decides it
    BUFFERED = "BUFFERED"  # kept for an execution that begins waiting later (bufferSeconds)
    EXPIRED = "EXPIRED"  # buffered, and no execution took it in time
    # the gateway refused the request before Kafka (bad signature, bad JSON, too large,
    # auth, a limit): the caller got that error; `detail` says which (the log only)
    REFUSED = "REFUSED"


class ActivationOutcome(_Message):
    """What became of an activation; also the body of GET /activations/{id}."""

    activationId: str
    flowId: str
    triggerId: str
    outcome: Outcome
    executionIds: list[str] = Field(default_factory=list)
    detail: str | None = None  # why: the reason of every outcome but ACTIVATED
    decidedAt: int
    # the activation log's (absent from outcomes decided before it existed)
    receivedAt: int | None = None
    source: ActivationSource | None = None
    userId: str | None = None  # the caller's user, when it was resolved
    bodySize: int | None = None  # bytes of its data as JSON
    replayOf: str | None = None
    traceId: str | None = None  # the trace its decision was part of, when traced
    # what the engine keeps of the request for the log's retention time, to show and to
    # replay it (`{"data", "execution", "user"}`); never serialized, never published
    _request: dict[str, Any] | None = PrivateAttr(default=None)


class ExecutionStatus(StrEnum):
    RUNNING = "running"
    WAITING = "waiting"
    COMPLETED = "completed"
    FAILED = "failed"
    TERMINATED = "terminated"  # stopped through the API, or its start condition was false


class _ExecutionEvent(_Message):
    executionId: str
    flowId: str
    at: int


class ExecutionStarted(_ExecutionEvent):
    kind: Literal["started"] = "started"


class ExecutionWaiting(_ExecutionEvent):
    kind: Literal["waiting"] = "waiting"
    waitingOn: list[str]


class ExecutionResumed(_ExecutionEvent):
    kind: Literal["resumed"] = "resumed"
    triggerId: str
    activationId: str


class ExecutionCompleted(_ExecutionEvent):
    kind: Literal["completed"] = "completed"


class ExecutionFailed(_ExecutionEvent):
    kind: Literal["failed"] = "failed"
    error: str


class ExecutionTerminated(_ExecutionEvent):
    kind: Literal["terminated"] = "terminated"
    reason: str


ExecutionEvent = Annotated[
    ExecutionStarted
    | ExecutionWaiting
    | ExecutionResumed
    | ExecutionCompleted
    | ExecutionFailed
    | ExecutionTerminated,
    Field(discriminator="kind"),
]


class FlowVersionRegistered(_Message):
    """Flow registry record, key `flowId`: a deployed version and whether it is live."""

    kind: Literal["flow"] = "flow"
    flowId: str
    name: str
    version: int
    live: bool
    start: StartRules | None = None  # None: the flow has no start block


class TriggerRegistered(_Message):
    """Flow registry record, key `flowId/triggerId`: what the gateway needs to admit a call."""

    kind: Literal["trigger"] = "trigger"
    flowId: str
    triggerId: str
    name: str
    authenticationType: AuthenticationType
    requiredRoles: list[str]
    onFailPolicy: OnFailPolicy
    entry: bool
    # SIGNATURE triggers: how callers sign, and the secrets that verify (schemas.sealing)
    signatureScheme: SignatureScheme | None = None
    toleranceSeconds: int | None = None
    secrets: list[SealedSecret] = Field(default_factory=list)
    rateLimit: RateLimit | None = None


RegistryRecord = Annotated[FlowVersionRegistered | TriggerRegistered, Field(discriminator="kind")]


class TokenRevoked(_Message):
    """A user-token died (logout or expiry purge); caches must drop it."""

    kind: Literal["token_revoked"] = "token_revoked"
    tokenHash: str
    userId: str
    at: int


class RolesChanged(_Message):
    """A user's roles changed; cached entries for the user are stale."""

    kind: Literal["roles_changed"] = "roles_changed"
    userId: str
    roles: list[str]
    at: int


class UserDisabled(_Message):
    """A user was disabled; every token of the user is inactive."""

    kind: Literal["user_disabled"] = "user_disabled"
    userId: str
    at: int


AuthEvent = Annotated[TokenRevoked | RolesChanged | UserDisabled, Field(discriminator="kind")]


class QuotaSpent(_Command):
    """What one gateway process let through of rate-limited triggers since its last
    report (topic `quota-usage`, every gateway reads every report): `spent` maps
    `flowId/triggerId` to the callbacks it admitted."""

    gateway: str = Field(max_length=100)
    at: int
    spent: dict[Annotated[str, Field(max_length=200)], Annotated[int, Field(ge=0)]] = Field(
        max_length=10_000
    )


class ActivationRefused(_Command):
    """A callback the gateway did not publish as an activation, for the activation log
    (topic `activation-refusals`): refused with an error (`REFUSED`, `status` and `code`
    are what the caller got), dropped by its trigger's IGNORE policy (`IGNORED_AUTH`,
    answered 200 with `activationId`), or naming a trigger its flow lacks
    (`UNKNOWN_TRIGGER`). No body: what was refused is not kept."""

    activationId: str
    flowId: str = Field(max_length=200)
    triggerId: str = Field(max_length=200)
    outcome: Literal[Outcome.REFUSED, Outcome.IGNORED_AUTH, Outcome.UNKNOWN_TRIGGER]
    reason: str = Field(max_length=2000)
    status: int = Field(ge=100, le=599)
    code: int | None = None
    receivedAt: int
    source: ActivationSource = ActivationSource.HTTP
    userId: str | None = None
    bodySize: int | None = Field(default=None, ge=0)
    traceId: str | None = None

    def as_outcome(self) -> ActivationOutcome:
        """The log record it makes (decided when received)."""
        detail = self.reason if self.outcome != Outcome.REFUSED else self.refusal()
        return ActivationOutcome(
            activationId=self.activationId,
            flowId=self.flowId,
            triggerId=self.triggerId,
            outcome=self.outcome,
            detail=detail,
            decidedAt=self.receivedAt,
            receivedAt=self.receivedAt,
            source=self.source,
            userId=self.userId,
            bodySize=self.bodySize,
            traceId=self.traceId,
        )

    def refusal(self) -> str:
        code = f", code {self.code}" if self.code is not None else ""
        return f"answered {self.status}{code}: {self.reason}"


class DeadLetterKind(StrEnum):
    INVALID = "invalid"  # not a valid command: parked at once
    FAILED = "failed"  # valid, but its processing failed every attempt
    # not even its dead letter could be written: only its position, size, SHA-256 and
    # error are kept (in the store), and its partition moved on
    SKIPPED = "skipped"


class DeadLetter(_Message):
    """A message the engine gave up on, on the dead-letter topic (key: the original key).

    `value` is the original message as text, ready to be published again (a replay),
    unless `truncated`: a message too large to keep whole keeps its first characters
    only, with its `size` (bytes) and `sha256` (hex, of the original bytes). A raw
    `userToken` is never kept: it is removed from `value` and kept sealed
    (`sealedUserToken`, `schemas.sealing`) for a replay.
    """

    deadLetterId: str
    kind: DeadLetterKind
    topic: str
    partition: int
    offset: int
    key: str | None = None
    value: str
    error: str
    attempts: int
    activationId: str | None = None
    executionId: str | None = None
    at: int  # epoch milliseconds
    replayedAt: int | None = None
    size: int | None = None
    sha256: str | None = None
    truncated: bool = False
    sealedUserToken: str | None = None
