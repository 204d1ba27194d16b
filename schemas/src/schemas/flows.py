"""The flow definition format (what users deploy) and what a deploy answers."""

import math
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

BlockName = Annotated[str, Field(min_length=1, max_length=200)]
Expression = Annotated[str, Field(min_length=1, max_length=10_000)]


class AuthenticationType(StrEnum):
    NONE = "NONE"
    USER = "USER"
    SIGNATURE = "SIGNATURE"  # the caller signs the request with the trigger's secret


class SignatureScheme(StrEnum):
    """How a SIGNATURE trigger's caller signs (schemas.webhooks)."""

    STANDARD_WEBHOOKS = "standard-webhooks"
    GITHUB = "github"
    STRIPE = "stripe"


class OnFailPolicy(StrEnum):
    ERROR = "ERROR"
    IGNORE = "IGNORE"


def _backendless(value: object) -> object:
    """`BACKENDLESS`, the product document's name of the user-token check, is `USER`."""
    return "USER" if value == "BACKENDLESS" else value


class RateLimit(BaseModel):
    """A trigger's rate limit, counted across every gateway: `perSecond` callbacks on
    average, `burst` at once (default: `perSecond` rounded up)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    perSecond: float = Field(gt=0, le=1_000_000)
    burst: int | None = Field(default=None, ge=1, le=1_000_000)

    @property
    def capacity(self) -> int:
        return self.burst or max(1, math.ceil(self.perSecond))


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: BlockName
    next: BlockName | None = None


class StartAuthentication(StrEnum):
    """Who may start a flow through the API (its `start` block's `authenticationType`)."""

    NONE = "NONE"  # anyone
    USER = "USER"  # a valid user-token (with `requiredRoles`)
    ADMIN = "ADMIN"  # the admin key, or a user-token of a FlowAdmin (the default)


class StartBlock(_Block):
    """The entry of a flow started through the API; it takes a callback's settings."""

    type: Literal["start"]
    authenticationType: Annotated[StartAuthentication, BeforeValidator(_backendless)] = (
        StartAuthentication.ADMIN
    )
    requiredRoles: list[str] = Field(default_factory=list)
    onFailPolicy: OnFailPolicy = OnFailPolicy.ERROR
    # evaluated with `input`, `data` (both the initial data) and `user`: FALSE starts
    # nothing (the execution is recorded TERMINATED with the reason)
    condition: Expression | None = None


class EndBlock(_Block):
    type: Literal["end"]


class AssignBlock(_Block):
    """Set variables: each value is an expression."""

    type: Literal["assign"]
    assign: dict[str, Expression] = Field(default_factory=dict)


class BranchBlock(_Block):
    """Go to `then` when `if` is true, else to `else` (either may be absent: the path ends)."""

    type: Literal["branch"]
    if_: Expression = Field(alias="if")
    then: BlockName | None = None
    else_: BlockName | None = Field(default=None, alias="else")


class ExternalCallbackBlock(_Block):
    """Pause until the trigger's callback URL is called."""

    type: Literal["external_callback"]
    authenticationType: Annotated[AuthenticationType, BeforeValidator(_backendless)] = (
        AuthenticationType.NONE
    )
    requiredRoles: list[str] = Field(default_factory=list)
    onFailPolicy: OnFailPolicy = OnFailPolicy.ERROR
    condition: Expression | None = None
    # no activation within this many seconds: go on at `onTimeout`, or fail with TIMEOUT
    timeoutSeconds: int | None = Field(default=None, ge=1, le=31_536_000)
    onTimeout: BlockName | None = None
    # an activation that finds no matching waiter is kept this long for one that begins
    # waiting later (outcome BUFFERED, then ACTIVATED or EXPIRED)
    bufferSeconds: int = Field(default=0, ge=0, le=604_800)
    # SIGNATURE only: the scheme (default standard-webhooks) and how far a signed
    # timestamp may be from now (default 300 s; github signs no timestamp)
    signatureScheme: SignatureScheme | None = None
    toleranceSeconds: int | None = Field(default=None, ge=1, le=86_400)
    # over it the gateways answer 429 (code 4291) with Retry-After
    rateLimit: RateLimit | None = None


class HttpRequestBlock(_Block):
    """Send an HTTP request; its response becomes the block's result.

    `url`, every header value and `body` are expressions.
    """

    type: Literal["http_request"]
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    url: Expression
    headers: dict[str, Expression] = Field(default_factory=dict)
    body: Expression | None = None
    timeoutSeconds: float = Field(default=10.0, gt=0, le=300)


class GroupMode(StrEnum):
    """How a triggers group goes on: at its first activation, or once every member has
    activated within its window."""

    ANY = "any"
    ALL = "all"


class TriggersGroupBlock(_Block):
    """Wait at several External Callback blocks (`triggers`, in no order) at once.

    `any`: the first member that activates resumes the execution; the others stop
    waiting. `all`: each member's first passing activation is recorded; the execution
    goes on when the last one arrives within `windowSeconds` of the first. When the
    window passes first, the recorded ones are dropped and the group waits afresh, or
    goes on at `onTimeout`. For `any`, `windowSeconds` is how long the group waits at
    all (then `onTimeout`, or failed with TIMEOUT). Members keep their own URL and
    settings and have no `next`: the group has it.
    """

    type: Literal["triggers_group"]
    mode: GroupMode
    windowSeconds: int | None = Field(default=None, ge=1, le=31_536_000)
    onTimeout: BlockName | None = None
    triggers: Annotated[list[ExternalCallbackBlock], Field(max_length=32)]


class StartRules(BaseModel):
    """Who may start a flow version through the API: its start block's settings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    authenticationType: StartAuthentication = StartAuthentication.ADMIN
    requiredRoles: list[str] = Field(default_factory=list)
    onFailPolicy: OnFailPolicy = OnFailPolicy.ERROR


class ReturnBlock(_Block):
    """Answer a blocking call (`activate-blocking`) with `value`; the flow goes on."""

    type: Literal["return"]
    value: Expression


Block = Annotated[
    StartBlock
    | EndBlock
    | AssignBlock
    | BranchBlock
    | ExternalCallbackBlock
    | HttpRequestBlock
    | ReturnBlock
    | TriggersGroupBlock,
    Field(discriminator="type"),
]


class FlowDefinition(BaseModel):
    """A flow as users write it: a name and its blocks."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(min_length=1, max_length=200)]
    blocks: Annotated[list[Block], Field(min_length=1, max_length=1000)]


class TriggerInfo(BaseModel):
    """One External Callback block of a deployed flow version."""

    model_config = ConfigDict(frozen=True)

    triggerId: str
    name: str
    callbackUrl: str
    # SIGNATURE triggers, in the deploy answer only: the secret callers sign with
    signingSecret: str | None = None


class DeployedFlow(BaseModel):
    """The answer to a deploy: the new version and every trigger in it."""

    model_config = ConfigDict(frozen=True)

    flowId: str
    name: str
    version: int
    triggers: list[TriggerInfo]


class IssuedSecret(BaseModel):
    """The answer to a rotation: the new signing secret of a SIGNATURE trigger."""

    model_config = ConfigDict(frozen=True)

    flowId: str
    triggerId: str
    signingSecret: str
    # when the secrets it replaces stop verifying (epoch ms); null when there were none
    previousSecretsValidUntil: int | None


class FlowVersion(DeployedFlow):
    """A deployed flow version with its definition."""

    live: bool
    created: int
    definition: FlowDefinition
