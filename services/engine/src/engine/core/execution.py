"""Step an execution through its flow: the engine's deterministic heart.

`advance` runs blocks until the execution waits at callback blocks, ends, fails, or
needs what only the service can do: the result of an HTTP request (handed back through
`complete_http`), or the values of a block's expressions that are not bounded in cost
(evaluated under a time limit, handed back through `complete_evaluation`). Every
function returns a new state and the events to publish.
"""

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from engine.core.definition import Flow
from engine.core.expressions import Expression, ExpressionError
from schemas.events import (
    ExecutionCompleted,
    ExecutionEvent,
    ExecutionFailed,
    ExecutionResumed,
    ExecutionStarted,
    ExecutionStatus,
    ExecutionWaiting,
)
from schemas.flows import (
    AssignBlock,
    BranchBlock,
    EndBlock,
    ExternalCallbackBlock,
    HttpRequestBlock,
    StartBlock,
)

MAX_STEPS = 10_000  # blocks one execution runs in all (HTTP blocks too), then it fails
MAX_HISTORY = 1_000  # oldest entries are dropped past this
MAX_APPLIED = 32  # recent activation ids remembered to recognise a redelivery


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
    flow: Flow, execution_id: str, input_: dict[str, Any], now: int
) -> ExecutionState:
    """A fresh execution at the flow's entry block (not yet advanced)."""
    return ExecutionState(
        execution_id=execution_id,
        flow_id=flow.flow_id,
        status=ExecutionStatus.RUNNING,
        at=flow.entry,
        input=input_,
        created=now,
        updated=now,
    )


def start(flow: Flow, state: ExecutionState, now: int) -> Step:
    """Advance a fresh execution from its entry block, announcing that it started."""
    started = ExecutionStarted(executionId=state.execution_id, flowId=state.flow_id, at=now)
    step = advance(flow, _log(state, now, "started"), now)
    return replace(step, events=[started, *step.events])


def start_from_trigger(
    flow: Flow,
    execution_id: str,
    data: dict[str, Any],
    user: dict[str, Any] | None,
    activation_id: str,
    now: int,
) -> Step:
    """Start an execution whose entry block is the activated trigger; `data` is its input."""
    state = new_execution(flow, execution_id, data, now)
    state = replace(
        state, status=ExecutionStatus.WAITING, waiting_on=(flow.trigger_ids[flow.entry],)
    )
    started = ExecutionStarted(executionId=execution_id, flowId=flow.flow_id, at=now)
    step = resume(
        flow,
        _log(state, now, "started"),
        flow.trigger_ids[flow.entry],
        data,
        user,
        activation_id,
        now,
    )
    return replace(step, events=[started, *step.events])


def resume(
    flow: Flow,
    state: ExecutionState,
    trigger_id: str,
    data: dict[str, Any],
    user: dict[str, Any] | None,
    activation_id: str,
    now: int,
) -> Step:
    """Resume an execution waiting at `trigger_id` with an activation's data and user."""
    block_name = flow.trigger_blocks.get(trigger_id)
    if (
        state.status != ExecutionStatus.WAITING
        or trigger_id not in state.waiting_on
        or not block_name
    ):
        raise NotWaiting(f"execution {state.execution_id} is not waiting at trigger {trigger_id}")
    block = flow.blocks[block_name]
    results = {**state.results, block_name: {"data": data, "user": user}}
    state = replace(
        state,
        status=ExecutionStatus.RUNNING,
        waiting_on=tuple(t for t in state.waiting_on if t != trigger_id),
        results=results,
        data=data,
        user=user,
        at=block.next,
        applied=(*state.applied, activation_id)[-MAX_APPLIED:],
        wait_key=None,
        deadline=None,
    )
    state = _log(state, now, "resumed", block_name, activationId=activation_id)
    resumed = ExecutionResumed(
        executionId=state.execution_id,
        flowId=state.flow_id,
        at=now,
        triggerId=trigger_id,
        activationId=activation_id,
    )
    step = advance(flow, state, now)
    return replace(step, events=[resumed, *step.events])


def time_out(flow: Flow, state: ExecutionState, now: int) -> Step:
    """The wait of an execution ran out: go on at `onTimeout`, or fail with TIMEOUT.

    The block's result is `{"data": null, "user": null, "timedOut": true}`. Raise
    NotWaiting when it no longer waits, or its deadline is still ahead.
    """
    if (
        state.status != ExecutionStatus.WAITING
        or state.deadline is None
        or state.deadline > now
        or not state.waiting_on
    ):
        raise NotWaiting(f"execution {state.execution_id} has no wait that ran out")
    trigger_id = state.waiting_on[0]
    block_name = flow.trigger_blocks[trigger_id]
    block = flow.blocks[block_name]
    assert isinstance(block, ExternalCallbackBlock)
    late = now - state.deadline
    state = replace(
        state,
        results={**state.results, block_name: {"data": None, "user": None, "timedOut": True}},
        waiting_on=(),
        wait_key=None,
        deadline=None,
    )
    state = _log(state, now, "timedOut", block_name, lateMs=late)
    if block.onTimeout is None:
        return _fail(state, now, block_name, "TIMEOUT")
    return advance(flow, replace(state, status=ExecutionStatus.RUNNING, at=block.onTimeout), now)


def complete_http(
    flow: Flow, state: ExecutionState, block_name: str, response: dict[str, Any], now: int
) -> Step:
    """Record an HTTP block's response as its result and advance past it."""
    block = flow.blocks[block_name]
    state = replace(state, results={**state.results, block_name: response}, at=block.next)
    return advance(
        flow, _log(state, now, "http_response", block_name, status=response.get("status")), now
    )


def complete_evaluation(
    flow: Flow, state: ExecutionState, block_name: str, values: Mapping[str, Any], now: int
) -> Step:
    """Run a block with the values the service evaluated for it, and advance past it."""
    return advance(flow, state, now, (block_name, values))


def fail_evaluation(
    flow: Flow, state: ExecutionState, block_name: str, error: str, now: int
) -> Step:
    """Fail an execution whose block's expression failed or ran out of time."""
    return _fail(state, now, block_name, f"block {block_name!r}: {error}")


def fail_http(flow: Flow, state: ExecutionState, block_name: str, error: str, now: int) -> Step:
    """Fail an execution whose HTTP block could not get a response."""
    return _fail(state, now, block_name, f"block {block_name!r}: {error}")


def give_up(state: ExecutionState, reason: str, now: int) -> Step:
    """Fail an execution from outside its flow (a message about it kept failing)."""
    return _fail(state, now, None, reason)


def advance(
    flow: Flow,
    state: ExecutionState,
    now: int,
    evaluated: tuple[str, Mapping[str, Any]] | None = None,
) -> Step:
    """Run blocks from `state.at` until a wait, the end, a failure or a request.

    Args:
        evaluated: the block at `state.at` and the values of its expressions, when the
            service evaluated them (`complete_evaluation`).
    """
    events: list[ExecutionEvent] = []
    while True:
        if state.status != ExecutionStatus.RUNNING:
            return Step(state, events)
        if state.at is not None and state.steps >= MAX_STEPS:
            step = _fail(
                state,
                now,
                state.at,
                f"the execution ran {MAX_STEPS} blocks, the limit of one execution (a loop?)",
            )
            return Step(step.state, events + step.events)
        if state.at is None:
            state = _log(
                replace(state, status=ExecutionStatus.COMPLETED, updated=now), now, "completed"
            )
            events.append(
                ExecutionCompleted(executionId=state.execution_id, flowId=state.flow_id, at=now)
            )
            return Step(state, events)
        name = state.at
        block = flow.blocks[name]
        given = evaluated[1] if evaluated is not None and evaluated[0] == name else None
        evaluated = None
        if (
            given is None
            and name in flow.guarded_blocks
            and isinstance(block, AssignBlock | BranchBlock | HttpRequestBlock)
        ):
            request = Evaluation(
                name,
                tuple(flow.block_expressions(name)),
                context(flow, state),
                isinstance(block, AssignBlock),
            )
            return Step(replace(state, updated=now), events, evaluation=request)
        value_of = _values(flow, name, given)
        state = replace(state, steps=state.steps + 1)
        try:
            if isinstance(block, StartBlock):
                state = replace(_log(state, now, "block", name), at=block.next)
            elif isinstance(block, EndBlock):
                state = replace(_log(state, now, "block", name), at=None)
            elif isinstance(block, AssignBlock):
                state = _assign(flow, state, block, now, given)
            elif isinstance(block, BranchBlock):
                state = _branch(state, block, now, value_of)
            elif isinstance(block, ExternalCallbackBlock):
                trigger_id = flow.trigger_ids[name]
                correlation = flow.correlations.get(name)
                state = replace(
                    _log(state, now, "waiting", name, triggerId=trigger_id),
                    status=ExecutionStatus.WAITING,
                    waiting_on=(*state.waiting_on, trigger_id),
                    at=None,
                    updated=now,
                    wait_key=correlation.wait_key(trigger_id, context(flow, state))
                    if correlation
                    else None,
                    deadline=now + block.timeoutSeconds * 1000 if block.timeoutSeconds else None,
                )
                events.append(
                    ExecutionWaiting(
                        executionId=state.execution_id,
                        flowId=state.flow_id,
                        at=now,
                        waitingOn=list(state.waiting_on),
                    )
                )
                return Step(state, events)
            else:
                call = _http_call(flow, state, block, value_of)
                return Step(replace(state, updated=now), events, call)
        except ExpressionError as exc:
            failed = _fail(state, now, name, f"block {name!r}: {exc}")
            return Step(failed.state, events + failed.events)


def _values(
    flow: Flow, block: str, given: Mapping[str, Any] | None
) -> Callable[[str, ExecutionState], Any]:
    """How a block gets the value of its expression `key`: given, or evaluated in place."""
    if given is not None:
        return lambda key, state: given[key]
    return lambda key, state: flow.expression(block, key).evaluate(context(flow, state))


def _assign(
    flow: Flow,
    state: ExecutionState,
    block: AssignBlock,
    now: int,
    given: Mapping[str, Any] | None,
) -> ExecutionState:
    variables = dict(state.vars)
    for var in block.assign:
        key = f"assign.{var}"
        if given is not None:
            variables[var] = given[key]
        else:
            ctx = context(flow, replace(state, vars=variables))
            variables[var] = flow.expression(block.name, key).evaluate(ctx)
    state = replace(state, vars=variables, at=block.next)
    return _log(state, now, "block", block.name)


def _branch(
    state: ExecutionState,
    block: BranchBlock,
    now: int,
    value_of: Callable[[str, ExecutionState], Any],
) -> ExecutionState:
    value = value_of("if", state)
    if not isinstance(value, bool):
        raise ExpressionError(f"`if` gave {type(value).__name__} {value!r}, not a boolean")
    target = block.then if value else block.else_
    return replace(
        _log(state, now, "block", block.name, taken="then" if value else "else"), at=target
    )


def _http_call(
    flow: Flow,
    state: ExecutionState,
    block: HttpRequestBlock,
    value_of: Callable[[str, ExecutionState], Any],
) -> HttpCall:
    url = value_of("url", state)
    if not isinstance(url, str):
        raise ExpressionError(f"url gave {type(url).__name__}, not a string")
    headers = {header: str(value_of(f"headers.{header}", state)) for header in block.headers}
    body = value_of("body", state) if block.body is not None else None
    return HttpCall(block.name, block.method, url, headers, body, block.timeoutSeconds)


def _fail(state: ExecutionState, now: int, block: str | None, error: str) -> Step:
    state = _log(
        replace(
            state,
            status=ExecutionStatus.FAILED,
            error=error,
            at=None,
            waiting_on=(),
            updated=now,
            wait_key=None,
            deadline=None,
        ),
        now,
        "failed",
        block,
        detail=error,
    )
    return Step(
        state,
        [
            ExecutionFailed(
                executionId=state.execution_id, flowId=state.flow_id, at=now, error=error
            )
        ],
    )


def _log(
    state: ExecutionState, now: int, event: str, block: str | None = None, **extra: Any
) -> ExecutionState:
    entry: dict[str, Any] = {"at": now, "event": event}
    if block is not None:
        entry["block"] = block
    entry.update(copy.deepcopy(extra))
    return replace(state, history=(*state.history, entry)[-MAX_HISTORY:], updated=now)
