"""Step an execution through its flow: the engine's deterministic heart.

`advance` runs blocks until the execution waits at callback blocks, ends, fails, or
needs what only the service can do: the result of an HTTP request (handed back through
`complete_http`), or the values of a block's expressions that are not bounded in cost
(evaluated under a time limit, handed back through `complete_evaluation`). Every
function returns a new state and the events to publish.
"""

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from engine.core.advance import advance, fail, log, terminate
from engine.core.definition import Flow
from engine.core.state import (
    MAX_ACTORS,
    MAX_APPLIED,
    MAX_HISTORY,
    MAX_STEPS,
    Evaluation,
    ExecutionState,
    HttpCall,
    NotWaiting,
    Step,
    context,
    new_execution,
    with_result,
)
from schemas.events import (
    ExecutionResumed,
    ExecutionStarted,
    ExecutionStatus,
)
from schemas.flows import (
    ExternalCallbackBlock,
)

__all__ = [
    "MAX_APPLIED",
    "MAX_HISTORY",
    "MAX_STEPS",
    "Evaluation",
    "ExecutionState",
    "HttpCall",
    "NotWaiting",
    "Step",
    "advance",
    "complete_evaluation",
    "complete_http",
    "context",
    "fail_evaluation",
    "fail_http",
    "give_up",
    "log",
    "new_execution",
    "resume",
    "start",
    "start_from_trigger",
    "terminate",
    "time_out",
]


def start(flow: Flow, state: ExecutionState, now: int) -> Step:
    """Advance a fresh execution from its entry block, announcing that it started."""
    started = ExecutionStarted(executionId=state.execution_id, flowId=state.flow_id, at=now)
    step = advance(flow, log(state, now, "started"), now)
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
        log(state, now, "started"),
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
    state = with_result(state, block_name, {"data": data, "user": user}, now)
    actor = user.get("objectId") if user else None
    if isinstance(actor, str) and actor not in state.actors:
        state = replace(state, actors=(*state.actors, actor)[-MAX_ACTORS:])
    state = replace(
        state,
        status=ExecutionStatus.RUNNING,
        waiting_on=tuple(t for t in state.waiting_on if t != trigger_id),
        data=data,
        user=user,
        at=block.next,
        applied=(*state.applied, activation_id)[-MAX_APPLIED:],
        wait_key=None,
        deadline=None,
    )
    state = log(state, now, "resumed", block_name, activationId=activation_id)
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
    state = with_result(state, block_name, {"data": None, "user": None, "timedOut": True}, now)
    state = replace(
        state,
        waiting_on=(),
        wait_key=None,
        deadline=None,
    )
    state = log(state, now, "timedOut", block_name, lateMs=late)
    if block.onTimeout is None:
        return fail(state, now, block_name, "TIMEOUT")
    return advance(flow, replace(state, status=ExecutionStatus.RUNNING, at=block.onTimeout), now)


def complete_http(
    flow: Flow, state: ExecutionState, block_name: str, response: dict[str, Any], now: int
) -> Step:
    """Record an HTTP block's response as its result and advance past it."""
    block = flow.blocks[block_name]
    state = replace(with_result(state, block_name, response, now), at=block.next)
    return advance(
        flow, log(state, now, "http_response", block_name, status=response.get("status")), now
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
    return fail(state, now, block_name, f"block {block_name!r}: {error}")


def fail_http(flow: Flow, state: ExecutionState, block_name: str, error: str, now: int) -> Step:
    """Fail an execution whose HTTP block could not get a response."""
    return fail(state, now, block_name, f"block {block_name!r}: {error}")


def give_up(state: ExecutionState, reason: str, now: int) -> Step:
    """Fail an execution from outside its flow (a message about it kept failing)."""
    return fail(state, now, None, reason)
