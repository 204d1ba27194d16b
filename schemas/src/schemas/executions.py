"""An execution as the management API shows it."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schemas.events import ExecutionStatus


class HistoryEntry(BaseModel):
    """One step of an execution: a block run, a wait, a resume or an error."""

    model_config = ConfigDict(frozen=True, extra="allow")

    at: int
    event: str
    block: str | None = None
    detail: str | None = None


class GroupMember(BaseModel):
    """A member of the triggers group an execution waits at, and whether it arrived."""

    model_config = ConfigDict(frozen=True)

    name: str
    triggerId: str
    arrivedAt: int | None = None  # epoch ms of its recorded activation (mode `all`)
    activationId: str | None = None


class GroupWaitView(BaseModel):
    """The triggers group an execution waits at."""

    model_config = ConfigDict(frozen=True)

    block: str
    since: int  # when the execution began waiting there (epoch ms)
    members: list[GroupMember]


class ExecutionView(BaseModel):
    """`GET /api/automation/executions/{executionId}`."""

    model_config = ConfigDict(frozen=True)

    executionId: str
    flowId: str
    status: ExecutionStatus
    waitingOn: list[str] = Field(default_factory=list)
    vars: dict[str, Any] = Field(default_factory=dict)
    results: dict[str, Any] = Field(default_factory=dict)
    history: list[HistoryEntry] = Field(default_factory=list)
    error: str | None = None
    deadline: int | None = None  # when the current wait times out (epoch ms)
    # while it waits at a triggers group: its members, those arrived with when
    group: GroupWaitView | None = None
    created: int
    updated: int
