"""An execution's state, the requests a step makes of the service, and the expression
context the contract gives expressions."""

from dataclasses import dataclass, field, replace
from typing import Any

from engine.core.definition import Flow
from engine.core.expressions import Expression
from schemas import opaque
from schemas.events import (
    ExecutionEvent,
    ExecutionStatus,
)

MAX_STEPS = 10_000  # blocks one execution runs in all (HTTP blocks too), then it fails
MAX_HISTORY = 1_000  # oldest entries are dropped past this
MAX_APPLIED = 32  # recent activation ids remembered to recognise a redelivery
MAX_ACTORS = 32  # users remembered as having resumed an execution (they may read it)
MAX_EARLIER = 9  # results of a block's earlier passes kept (block results by occurrence)
MAX_EARLIER_BYTES = 64 * 1024  # an earlier pass's result kept only up to this size


@dataclass(frozen=True)
class GroupWait:
    """An execution waiting at a triggers group: since when, and (mode `all`) the
    members' activations recorded so far, in arrival order, each
    `{"name", "triggerId", "activationId", "at", "data", "user"}`."""

    block: str
    wait_id: str  # what the store finds it by, for every member (`Flow.wait_id`)
    since: int
    arrived: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class ExecutionState:
    """Everything an execution is; persisted as one document."""

    execution_id: str
    flow_id: str
    status: ExecutionStatus
    at: str | None  # the next block to run while running
    input: dict[str, Any]
    created: int
    updated: int
    waiting_on: tuple[str, ...] = ()
    vars: dict[str, Any] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] | None = None  # the latest activation's data
    user: dict[str, Any] | None = None  # the latest activation's user
    history: tuple[dict[str, Any], ...] = ()
    error: str | None = None
    version: int = 0  # compare-and-set: a save succeeds only over the version it read
    applied: tuple[str, ...] = ()  # activation ids already applied, newest last
    wait_key: str | None = None  # the correlation key of the trigger it waits at, if any
    steps: int = 0  # blocks run so far, across every resume
    deadline: int | None = None  # when its wait times out (epoch ms), if its block has one
    owner_id: str | None = None  # the objectId of the user who started it
    actors: tuple[str, ...] = ()  # objectIds of users whose activations resumed it
    returned: bool = False  # a `return` block ran: `return_value` answers a blocking call
    return_value: Any = None
    finished: int | None = None  # when it completed, failed or was terminated (epoch ms)
    # block name -> the results of its passes before the latest (a loop), oldest first
    earlier: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    group: GroupWait | None = None  # the triggers group it waits at, if any

    @property
    def wait_at(self) -> str | None:
        """What the store finds the execution's wait by: its trigger, or its group."""
        if self.status != ExecutionStatus.WAITING or not self.waiting_on:
            return None
        return self.group.wait_id if self.group else self.waiting_on[0]

    @property
    def wait_since(self) -> int:
        """When its wait began (waits are taken oldest first)."""
        return self.group.since if self.group else self.updated


@dataclass(frozen=True)
class HttpCall:
    """An HTTP request the service must perform for block `block`."""

    block: str
    method: str
    url: str
    headers: dict[str, str]
    body: Any
    timeout: float


@dataclass(frozen=True)
class Evaluation:
    """The expressions of block `block` that the service must evaluate under a time limit.

    `expressions` in order, by key (as `definition.expression_sources` names them); for
    an assign block, each value is a variable the later ones see (`assigns`).
    """

    block: str
    expressions: tuple[tuple[str, Expression], ...]
    context: dict[str, Any]
    assigns: bool


@dataclass(frozen=True)
class Step:
    """The result of stepping: the new state, events to publish and maybe a request for
    the service (an HTTP call, or expressions to evaluate)."""

    state: ExecutionState
    events: list[ExecutionEvent]
    http: HttpCall | None = None
    evaluation: Evaluation | None = None


class NotWaiting(Exception):
    """The execution is not waiting at the trigger an activation names."""


def context(flow: Flow, state: ExecutionState) -> dict[str, Any]:
    """The expression context of the contract: input, vars, results, data, user, ..."""
    return {
        "input": state.input,
        "vars": state.vars,
        "results": state.results,
        "data": state.data,
        "user": state.user,
        "execution": {"id": state.execution_id, "flowId": state.flow_id},
        "callbackUrls": {
            name: f"{url}?execution={state.execution_id}"
            for name, url in flow.callback_urls.items()
        },
    }


def new_execution(
    flow: Flow,
    execution_id: str,
    input_: dict[str, Any],
    now: int,
    user: dict[str, Any] | None = None,
) -> ExecutionState:
    """A fresh execution at the flow's entry block (not yet advanced); `user` started it."""
    return ExecutionState(
        execution_id=execution_id,
        flow_id=flow.flow_id,
        status=ExecutionStatus.RUNNING,
        at=flow.entry,
        input=input_,
        created=now,
        updated=now,
        user=user,
        owner_id=user.get("objectId") if user else None,
    )


def with_result(state: ExecutionState, block: str, result: Any, now: int) -> ExecutionState:
    """`state` with `result` as the block's latest; the one it replaces, if small enough,
    kept among the block's earlier passes (a loop), the oldest dropped past MAX_EARLIER."""
    results = {**state.results, block: result}
    earlier = state.earlier
    if block in state.results:
        previous = state.results[block]
        try:
            small = len(opaque.encode(previous)) <= MAX_EARLIER_BYTES
        except (TypeError, ValueError):
            small = False
        kept = {"result": previous} if small else {"result": None, "omitted": True}
        earlier = {**earlier, block: [*earlier.get(block, []), kept][-MAX_EARLIER:]}
    return replace(state, results=results, earlier=earlier)
