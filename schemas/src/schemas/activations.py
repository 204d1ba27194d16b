"""The activation log as the management API shows it: records, pages, filters, replays."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schemas.events import ActivationOutcome, Outcome


class ActivationRecord(ActivationOutcome):
    """One activation in the log: its outcome and why (`reason`), and while the body
    retention lasts, what was posted (`body`: the data, the execution selector, the
    caller's user)."""

    reason: str | None = None  # the same as `detail`, under the contract's name
    body: dict[str, Any] | None = None
    bodyKept: bool = False  # whether it can be replayed

    @classmethod
    def of(cls, outcome: ActivationOutcome, request: dict[str, Any] | None) -> "ActivationRecord":
        return cls.model_validate(
            {
                **outcome.model_dump(),
                "reason": outcome.detail,
                "body": request.get("data") if request else None,
                "bodyKept": request is not None,
            }
        )


class ActivationPage(BaseModel):
    model_config = ConfigDict(frozen=True)

    activations: list[ActivationRecord]
    next: str | None = None  # the cursor of the next (older) page


MAX_INSTANT = 2**63 - 1  # epoch milliseconds: what the store's 8-byte integers hold


class ActivationFilter(BaseModel):
    """Which activations a list or a replay takes: every field narrows it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    flowId: str | None = None
    triggerId: str | None = None
    outcome: list[Outcome] | None = None  # any of these
    since: int | None = Field(default=None, ge=0, le=MAX_INSTANT)  # receivedAt >= since
    until: int | None = Field(default=None, ge=0, le=MAX_INSTANT)  # receivedAt < until


class ReplayRequest(ActivationFilter):
    """`POST /activations/replay`: replay every matching activation whose body is kept,
    newest first, at most `limit`."""

    limit: int = Field(default=100, ge=1, le=1000)


class Replayed(BaseModel):
    model_config = ConfigDict(frozen=True)

    activationId: str  # the new activation
    replayOf: str


class ReplayAnswer(BaseModel):
    model_config = ConfigDict(frozen=True)

    replayed: list[Replayed]
    skipped: list[str]  # matching activations whose body is no longer kept


class ActivationSeries(BaseModel):
    model_config = ConfigDict(frozen=True)

    triggerId: str
    outcome: Outcome
    counts: list[int]  # activations received in each bucket, oldest bucket first


class ActivationSummary(BaseModel):
    """`GET /activations/summary`: the log's records counted per trigger and outcome in
    buckets of `bucketSeconds` from `since` (inclusive) to `until` (exclusive)."""

    model_config = ConfigDict(frozen=True)

    since: int
    until: int
    bucketSeconds: int
    series: list[ActivationSeries]
    counted: int
    # more records matched than a summary counts: the newest were, the oldest buckets
    # lack the rest
    truncated: bool = False
