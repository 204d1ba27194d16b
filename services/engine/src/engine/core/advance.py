"""Run an execution's blocks from where it is until it waits, ends, fails or needs the
service (an HTTP call, expressions evaluated under a time limit)."""

import copy
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from engine.core.definition import Flow
from engine.core.expressions import ExpressionError
from engine.core.state import (
    MAX_HISTORY,
    MAX_STEPS,
    Evaluation,
    ExecutionState,
    GroupWait,
    HttpCall,
    Step,
    context,
    with_result,
)
from schemas.events import (
    ExecutionCompleted,
    ExecutionEvent,
    ExecutionFailed,
    ExecutionStatus,
    ExecutionTerminated,
    ExecutionWaiting,
)
from schemas.flows import (
    AssignBlock,
    BranchBlock,
    EndBlock,
    ExternalCallbackBlock,
    GroupMode,
    HttpRequestBlock,
    ReturnBlock,
    StartBlock,
    TriggersGroupBlock,
)


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
            step = fail(
                state,
                now,
                state.at,
                f"the execution ran {MAX_STEPS} blocks, the limit of one execution (a loop?)",
            )
            return Step(step.state, events + step.events)
        if state.at is None:
            state = log(
                replace(state, status=ExecutionStatus.COMPLETED, updated=now, finished=now),
                now,
                "completed",
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
            and isinstance(block, AssignBlock | BranchBlock | HttpRequestBlock | ReturnBlock)
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
                state = replace(log(state, now, "block", name), at=block.next)
            elif isinstance(block, EndBlock):
                state = replace(log(state, now, "block", name), at=None)
            elif isinstance(block, AssignBlock):
                state = _assign(flow, state, block, now, given)
            elif isinstance(block, BranchBlock):
                state = _branch(state, block, now, value_of)
            elif isinstance(block, ReturnBlock):
                value = value_of("value", state)
                state = with_result(state, name, {"data": value}, now)
                state = replace(
                    log(state, now, "returned", name), returned=True, return_value=value
                )
                state = replace(state, at=block.next)
            elif isinstance(block, ExternalCallbackBlock | TriggersGroupBlock):
                state = _wait(flow, state, block, now)
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
            failed = fail(state, now, name, f"block {name!r}: {exc}")
            return Step(failed.state, events + failed.events)


def _wait(
    flow: Flow, state: ExecutionState, block: ExternalCallbackBlock | TriggersGroupBlock, now: int
) -> ExecutionState:
    """`state` waiting at a callback block, or at every member of a triggers group."""
    if isinstance(block, ExternalCallbackBlock):
        trigger_ids = [flow.trigger_ids[block.name]]
        wait_id = trigger_ids[0]
        correlated = [block.name]
        timeout = block.timeoutSeconds
        state = log(state, now, "waiting", block.name, triggerId=wait_id)
    else:
        trigger_ids = flow.members(block.name)
        wait_id = flow.wait_id(trigger_ids[0])
        correlated = [m.name for m in block.triggers]
        # `all`: its window runs from the first arrival
        timeout = block.windowSeconds if block.mode == GroupMode.ANY else None
        group = GroupWait(block.name, wait_id, now)
        state = log(replace(state, group=group), now, "waiting", block.name, triggerIds=trigger_ids)
    correlation = next((flow.correlations[n] for n in correlated if n in flow.correlations), None)
    return replace(
        state,
        status=ExecutionStatus.WAITING,
        waiting_on=(*state.waiting_on, *trigger_ids),
        at=None,
        updated=now,
        wait_key=correlation.wait_key(wait_id, context(flow, state)) if correlation else None,
        deadline=now + timeout * 1000 if timeout else None,
    )


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
    return log(state, now, "block", block.name)


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
        log(state, now, "block", block.name, taken="then" if value else "else"), at=target
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


def fail(state: ExecutionState, now: int, block: str | None, error: str) -> Step:
    state = log(
        _ended(state, ExecutionStatus.FAILED, now, error), now, "failed", block, detail=error
    )
    event = ExecutionFailed(
        executionId=state.execution_id, flowId=state.flow_id, at=now, error=error
    )
    return Step(state, [event])


def terminate(state: ExecutionState, now: int, reason: str) -> Step:
    """End an execution from outside its flow (stopped, or its start condition was
    false): TERMINATED, its waits released."""
    state = log(_ended(state, ExecutionStatus.TERMINATED, now), now, "terminated", detail=reason)
    event = ExecutionTerminated(
        executionId=state.execution_id, flowId=state.flow_id, at=now, reason=reason
    )
    return Step(state, [event])


def _ended(
    state: ExecutionState, status: ExecutionStatus, now: int, error: str | None = None
) -> ExecutionState:
    """`state` ended with `status`: nothing left to run or wait for."""
    return replace(
        state,
        status=status,
        error=error if error is not None else state.error,
        at=None,
        waiting_on=(),
        updated=now,
        wait_key=None,
        deadline=None,
        finished=now,
        group=None,
    )


def log(
    state: ExecutionState, now: int, event: str, block: str | None = None, **extra: Any
) -> ExecutionState:
    entry: dict[str, Any] = {"at": now, "event": event}
    if block is not None:
        entry["block"] = block
    entry.update(copy.deepcopy(extra))
    return replace(state, history=(*state.history, entry)[-MAX_HISTORY:], updated=now)
