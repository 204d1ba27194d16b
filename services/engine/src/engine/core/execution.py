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
    GroupWait,
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
    GroupMode,
    TriggersGroupBlock,
)

__all__ = [
    "MAX_APPLIED",
    "MAX_HISTORY",
    "MAX_STEPS",
    "Evaluation",
    "ExecutionState",
    "GroupWait",
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
    """Resume an execution waiting at `trigger_id` with an activation's data and user.

    At a triggers group in mode `all` the activation is recorded, and the execution
    goes on only once it is the last member to arrive.
    """
    block_name = flow.trigger_blocks.get(trigger_id)
    if (
        state.status != ExecutionStatus.WAITING
        or trigger_id not in state.waiting_on
        or not block_name
    ):
        raise NotWaiting(f"execution {state.execution_id} is not waiting at trigger {trigger_id}")
    actor = user.get("objectId") if user else None
    if isinstance(actor, str) and actor not in state.actors:
        state = replace(state, actors=(*state.actors, actor)[-MAX_ACTORS:])
    state = replace(state, applied=(*state.applied, activation_id)[-MAX_APPLIED:])
    group = flow.group_of(trigger_id)
    if group is not None and state.group is not None:
        arrival = {
            "name": block_name,
            "triggerId": trigger_id,
            "activationId": activation_id,
            "at": now,
            "data": data,
            "user": user,
        }
        arrived = (*state.group.arrived, arrival)
        if group.mode == GroupMode.ALL and len(arrived) < len(group.triggers):
            return _arrived(flow, state, group, arrived, now)
        return _leave_group(flow, state, group, arrived, now)
    block = flow.blocks[block_name]
    state = with_result(state, block_name, {"data": data, "user": user}, now)
    state = replace(
        state,
        status=ExecutionStatus.RUNNING,
        waiting_on=tuple(t for t in state.waiting_on if t != trigger_id),
        data=data,
        user=user,
        at=block.next,
        wait_key=None,
        deadline=None,
    )
    state = log(state, now, "resumed", block_name, activationId=activation_id)
    return _resumed(flow, state, trigger_id, activation_id, now)


def _resumed(
    flow: Flow, state: ExecutionState, trigger_id: str, activation_id: str, now: int
) -> Step:
    resumed = ExecutionResumed(
        executionId=state.execution_id,
        flowId=state.flow_id,
        at=now,
        triggerId=trigger_id,
        activationId=activation_id,
    )
    step = advance(flow, state, now)
    return replace(step, events=[resumed, *step.events])


def _arrived(
    flow: Flow,
    state: ExecutionState,
    group: TriggersGroupBlock,
    arrived: tuple[dict[str, Any], ...],
    now: int,
) -> Step:
    """A member of an `all` group arrived and others are still awaited: recorded, and the
    group's window starts at its first arrival."""
    assert state.group is not None
    assert group.windowSeconds is not None
    latest = arrived[-1]
    state = replace(
        state,
        group=replace(state.group, arrived=arrived),
        waiting_on=tuple(t for t in state.waiting_on if t != latest["triggerId"]),
        deadline=state.deadline or now + group.windowSeconds * 1000,
        updated=now,
    )
    state = log(
        state,
        now,
        "arrived",
        latest["name"],
        group=group.name,
        activationId=latest["activationId"],
        awaiting=[flow.trigger_blocks[t] for t in state.waiting_on],
    )
    return Step(state, [])


def _leave_group(
    flow: Flow,
    state: ExecutionState,
    group: TriggersGroupBlock,
    arrived: tuple[dict[str, Any], ...],
    now: int,
    timed_out: bool = False,
) -> Step:
    """A triggers group is done: each arrived member's result, in arrival order, and the
    group's `{"activated": [names]}`; the execution goes on at `next` (or `onTimeout`)."""
    for arrival in arrived:
        result = {"data": arrival["data"], "user": arrival["user"]}
        state = with_result(state, arrival["name"], result, now)
    names = [arrival["name"] for arrival in arrived]
    result_of_group: dict[str, Any] = {"activated": names}
    if timed_out:
        result_of_group["timedOut"] = True
    state = with_result(state, group.name, result_of_group, now)
    latest = arrived[-1] if arrived else None
    state = replace(
        state,
        status=ExecutionStatus.RUNNING,
        waiting_on=(),
        data=latest["data"] if latest else state.data,
        user=latest["user"] if latest else state.user,
        at=group.onTimeout if timed_out else group.next,
        wait_key=None,
        deadline=None,
        group=None,
    )
    if timed_out:
        state = log(state, now, "timedOut", group.name, activated=names)
        return advance(flow, state, now)
    assert latest is not None
    state = log(
        state, now, "resumed", group.name, activated=names, activationId=latest["activationId"]
    )
    return _resumed(flow, state, latest["triggerId"], latest["activationId"], now)


def time_out(flow: Flow, state: ExecutionState, now: int) -> Step:
    """The wait of an execution ran out: go on at `onTimeout`, or fail with TIMEOUT.

    The block's result is `{"data": null, "user": null, "timedOut": true}` (a group's:
    `{"activated": [names], "timedOut": true}`). An `all` group's window that ran out
    without `onTimeout` drops what arrived and waits afresh. Raise NotWaiting when it
    no longer waits, or its deadline is still ahead.
    """
    if (
        state.status != ExecutionStatus.WAITING
        or state.deadline is None
        or state.deadline > now
        or not state.waiting_on
    ):
        raise NotWaiting(f"execution {state.execution_id} has no wait that ran out")
    late = now - state.deadline
    if state.group is not None:
        return _group_timed_out(flow, state, now, late)
    trigger_id = state.waiting_on[0]
    block_name = flow.trigger_blocks[trigger_id]
    block = flow.blocks[block_name]
    assert isinstance(block, ExternalCallbackBlock)
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


def _group_timed_out(flow: Flow, state: ExecutionState, now: int, late: int) -> Step:
    waiting = state.group
    assert waiting is not None
    group = flow.blocks[waiting.block]
    assert isinstance(group, TriggersGroupBlock)
    if group.onTimeout is not None:
        return _leave_group(flow, state, group, waiting.arrived, now, timed_out=True)
    if group.mode == GroupMode.ANY:
        state = with_result(state, group.name, {"activated": [], "timedOut": True}, now)
        state = log(state, now, "timedOut", group.name, lateMs=late)
        return fail(state, now, group.name, "TIMEOUT")
    dropped = [arrival["name"] for arrival in waiting.arrived]
    state = replace(
        state,
        group=replace(waiting, arrived=()),
        waiting_on=tuple(flow.members(group.name)),
        deadline=None,
        updated=now,
    )
    return Step(log(state, now, "windowPassed", group.name, dropped=dropped, lateMs=late), [])


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
