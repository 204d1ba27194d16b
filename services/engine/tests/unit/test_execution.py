from typing import Any

import pytest

from engine.core import execution as ex
from engine.core.definition import DefinitionError, Flow
from schemas.events import (
    ExecutionCompleted,
    ExecutionFailed,
    ExecutionResumed,
    ExecutionStarted,
    ExecutionStatus,
    ExecutionWaiting,
)

from ..flows import ENTRY_TRIGGER_FLOW, ORDER_FLOW, TIMED_FLOW, compiled, trigger_id_for

PAY = trigger_id_for("Payment Confirmed")
USER = {"objectId": "u1", "email": "gw@pay.example", "roles": ["PaymentGateway"]}


def started(flow: Flow, input_: dict[str, Any], now: int = 1000) -> ex.Step:
    return ex.start(flow, ex.new_execution(flow, "e1", input_, now), now)


def test_order_flow_waits_for_payment_with_its_variables() -> None:
    flow = compiled(ORDER_FLOW)
    step = started(flow, {"order": {"id": "o-7", "total": 25}})
    assert step.state.status == ExecutionStatus.WAITING
    assert step.state.waiting_on == (PAY,)
    assert step.state.vars == {"order": {"id": "o-7", "total": 25}, "total": 25}
    assert [type(e) for e in step.events] == [ExecutionStarted, ExecutionWaiting]


def test_resume_makes_data_and_user_available_to_later_blocks() -> None:
    flow = compiled(ORDER_FLOW)
    waiting = started(flow, {"order": {"id": "o-7", "total": 25}}).state
    step = ex.resume(flow, waiting, PAY, {"orderId": "o-7", "amount": 25.5}, USER, "a1", 2000)
    state = step.state
    assert state.status == ExecutionStatus.COMPLETED
    assert state.vars["status"] == "paid"
    assert state.vars["paidBy"] == "gw@pay.example"
    assert state.vars["amount"] == 25.5
    assert state.results["Payment Confirmed"] == {
        "data": {"orderId": "o-7", "amount": 25.5},
        "user": USER,
    }
    assert state.applied == ("a1",)
    assert [type(e) for e in step.events] == [ExecutionResumed, ExecutionCompleted]


def test_resume_at_a_trigger_it_does_not_wait_on_is_refused() -> None:
    flow = compiled(ORDER_FLOW)
    waiting = started(flow, {"order": {"id": "o-7", "total": 1}}).state
    done = ex.resume(flow, waiting, PAY, {}, None, "a1", 2000).state
    with pytest.raises(ex.NotWaiting):
        ex.resume(flow, done, PAY, {}, None, "a2", 3000)


def test_an_assign_error_fails_the_execution_with_a_readable_message() -> None:
    flow = compiled(ORDER_FLOW)
    step = started(flow, {"customer": "no order here"})
    assert step.state.status == ExecutionStatus.FAILED
    assert step.state.error == "block 'Process Order Details': `input.order`: no such field 'order'"
    assert isinstance(step.events[-1], ExecutionFailed)
    assert step.state.history[-1]["event"] == "failed"


def test_later_assignments_see_earlier_ones() -> None:
    flow = compiled(
        {
            "name": "f",
            "blocks": [{"name": "a", "type": "assign", "assign": {"x": "2", "y": "vars.x * 21"}}],
        }
    )
    assert started(flow, {}).state.vars == {"x": 2, "y": 42}


def test_an_expression_reads_every_context_name_it_mentions() -> None:
    # only the names an expression mentions are handed to CEL: each must still arrive
    flow = compiled(
        {
            "name": "f",
            "blocks": [
                {"name": "s", "type": "start", "next": "a"},
                {
                    "name": "a",
                    "type": "assign",
                    "assign": {
                        "first": "input.n",
                        "second": "vars.first + 1",
                        "who": "execution.id + '/' + execution.flowId",
                        "none": "[data, user, results, callbackUrls]",
                        "has": "has(input.n) && !has(input.missing)",
                        "text": "'input.n, vars and data'",
                    },
                },
            ],
        }
    )
    state = started(flow, {"n": 41}).state
    assert state.error is None
    assert state.vars == {
        "first": 41,
        "second": 42,
        "who": f"e1/{flow.flow_id}",
        "none": [None, None, {}, {}],
        "has": True,
        "text": "input.n, vars and data",
    }


def test_a_name_outside_the_context_is_an_error_naming_it() -> None:
    flow = compiled(
        {"name": "f", "blocks": [{"name": "a", "type": "assign", "assign": {"x": "order.id"}}]}
    )
    state = started(flow, {}).state
    assert state.status == ExecutionStatus.FAILED
    assert state.error is not None
    assert "order" in state.error


@pytest.mark.parametrize(("amount", "expected"), [(500, "big"), (5, "small")])
def test_branch_takes_then_or_else(amount: int, expected: str) -> None:
    flow = compiled(
        {
            "name": "f",
            "blocks": [
                {"name": "s", "type": "start", "next": "b"},
                {
                    "name": "b",
                    "type": "branch",
                    "if": "input.amount > 100",
                    "then": "big",
                    "else": "small",
                },
                {"name": "big", "type": "assign", "assign": {"size": "'big'"}, "next": "e"},
                {"name": "small", "type": "assign", "assign": {"size": "'small'"}, "next": "e"},
                {"name": "e", "type": "end"},
            ],
        }
    )
    state = started(flow, {"amount": amount}).state
    assert state.status == ExecutionStatus.COMPLETED
    assert state.vars == {"size": expected}


def test_a_branch_on_a_non_boolean_fails() -> None:
    flow = compiled(
        {
            "name": "f",
            "blocks": [
                {"name": "b", "type": "branch", "if": "input.amount", "then": "e"},
                {"name": "e", "type": "end"},
            ],
        }
    )
    state = started(flow, {"amount": 3}).state
    assert state.status == ExecutionStatus.FAILED
    assert "not a boolean" in (state.error or "")


def test_a_loop_that_never_waits_fails_instead_of_spinning() -> None:
    flow = compiled(
        {
            "name": "f",
            "blocks": [
                {"name": "s", "type": "start", "next": "b"},
                {"name": "b", "type": "branch", "if": "true", "then": "b"},
            ],
        }
    )
    state = started(flow, {}).state
    assert state.status == ExecutionStatus.FAILED
    assert "ran 10000 blocks" in (state.error or "")
    assert state.steps == ex.MAX_STEPS


def test_an_http_block_that_calls_itself_stops_at_the_budget_of_the_execution() -> None:
    flow = compiled(
        {
            "name": "f",
            "blocks": [
                {"name": "s", "type": "start", "next": "h"},
                {"name": "h", "type": "http_request", "url": "'http://x'", "next": "h"},
            ],
        }
    )
    step = started(flow, {})
    calls = 0
    while step.http is not None:
        calls += 1
        step = ex.complete_http(flow, step.state, "h", {"status": 200, "body": None}, 1200)
    assert calls == ex.MAX_STEPS - 1  # the start block counts too
    assert step.state.status == ExecutionStatus.FAILED
    assert "limit of one execution" in (step.state.error or "")


def test_the_budget_counts_across_resumes() -> None:
    flow = compiled(
        {
            "name": "f",
            "blocks": [
                {"name": "s", "type": "start", "next": "a"},
                {"name": "a", "type": "assign", "assign": {"n": "1"}, "next": "cb"},
                {"name": "cb", "type": "external_callback", "next": "a"},
            ],
        }
    )
    state = started(flow, {}).state
    for n in range(ex.MAX_STEPS):
        if state.status != ExecutionStatus.WAITING:
            break
        state = ex.resume(flow, state, flow.trigger_ids["cb"], {}, None, f"a{n}", 2000).state
    assert state.status == ExecutionStatus.FAILED
    assert n == (ex.MAX_STEPS - 1) // 2  # start once, then two blocks per round


def test_http_request_is_handed_to_the_service_and_its_response_becomes_the_result() -> None:
    flow = compiled(
        {
            "name": "f",
            "blocks": [
                {"name": "s", "type": "start", "next": "notify"},
                {
                    "name": "notify",
                    "type": "http_request",
                    "method": "POST",
                    "url": "'http://hooks.example/' + input.id",
                    "headers": {"X-Order": "input.id"},
                    "body": "{'order': input.id, 'callback': callbackUrls['cb']}",
                    "next": "cb",
                },
                {"name": "cb", "type": "external_callback", "next": "after"},
                {"name": "after", "type": "assign", "assign": {"code": "results.notify.status"}},
            ],
        }
    )
    flow = Flow(
        flow.flow_id,
        flow.definition,
        flow.blocks,
        flow.entry,
        flow.expressions,
        flow.trigger_ids,
        {"cb": "http://gw/api/automation/flow/f/trigger/t/activate"},
    )
    step = started(flow, {"id": "o1"})
    assert step.http == ex.HttpCall(
        "notify",
        "POST",
        "http://hooks.example/o1",
        {"X-Order": "o1"},
        {
            "order": "o1",
            "callback": "http://gw/api/automation/flow/f/trigger/t/activate?execution=e1",
        },
        10.0,
    )
    step = ex.complete_http(flow, step.state, "notify", {"status": 204, "body": None}, 1500)
    assert step.state.status == ExecutionStatus.WAITING
    done = ex.resume(flow, step.state, flow.trigger_ids["cb"], {}, None, "a1", 2000).state
    assert done.vars == {"code": 204}


def test_an_http_failure_fails_the_execution() -> None:
    flow = compiled(
        {"name": "f", "blocks": [{"name": "h", "type": "http_request", "url": "'http://x'"}]}
    )
    step = started(flow, {})
    failed = ex.fail_http(flow, step.state, "h", "timed out after 10s", 1200).state
    assert failed.status == ExecutionStatus.FAILED
    assert failed.error == "block 'h': timed out after 10s"


def test_an_entry_trigger_starts_with_the_data_as_input_and_result() -> None:
    flow = compiled(ENTRY_TRIGGER_FLOW)
    step = ex.start_from_trigger(flow, "e9", {"event": "signup"}, None, "a1", 5000)
    assert step.state.status == ExecutionStatus.COMPLETED
    assert step.state.input == {"event": "signup"}
    assert step.state.vars == {"seen": "signup"}
    assert step.state.results["Webhook"] == {"data": {"event": "signup"}, "user": None}
    assert [type(e) for e in step.events] == [
        ExecutionStarted,
        ExecutionResumed,
        ExecutionCompleted,
    ]


def test_context_offers_every_name_of_the_contract() -> None:
    flow = compiled(ORDER_FLOW)
    state = started(flow, {"order": {"id": "o", "total": 1}}).state
    assert set(ex.context(flow, state)) == {
        "input",
        "vars",
        "results",
        "data",
        "user",
        "execution",
        "callbackUrls",
    }
    assert ex.context(flow, state)["execution"] == {"id": "e1", "flowId": "flow-1"}


def test_a_wait_with_a_timeout_carries_its_deadline_and_a_resume_clears_it() -> None:
    flow = compiled(TIMED_FLOW)
    waiting = started(flow, {}, now=1000).state
    assert waiting.deadline == 61_000
    resumed = ex.resume(flow, waiting, flow.trigger_ids["pay"], {}, None, "a1", 2000).state
    assert (resumed.status, resumed.deadline, resumed.vars) == (
        ExecutionStatus.COMPLETED,
        None,
        {"state": "paid"},
    )


def test_a_timeout_goes_on_at_on_timeout_with_a_timed_out_result() -> None:
    flow = compiled(TIMED_FLOW)
    waiting = started(flow, {}, now=1000).state
    with pytest.raises(ex.NotWaiting):
        ex.time_out(flow, waiting, 60_999)  # not yet
    done = ex.time_out(flow, waiting, 61_500).state
    assert done.status == ExecutionStatus.COMPLETED
    assert done.vars == {"state": "reminded"}
    assert done.results["pay"] == {"data": None, "user": None, "timedOut": True}
    timed = next(e for e in done.history if e["event"] == "timedOut")
    assert (timed["block"], timed["lateMs"]) == ("pay", 500)
    with pytest.raises(ex.NotWaiting):
        ex.time_out(flow, done, 70_000)  # once only


def test_without_on_timeout_the_execution_fails_with_timeout() -> None:
    definition = {**TIMED_FLOW, "blocks": [dict(b) for b in TIMED_FLOW["blocks"]]}
    del definition["blocks"][1]["onTimeout"]
    definition["blocks"] = definition["blocks"][:3]
    flow = compiled(definition)
    failed = ex.time_out(flow, started(flow, {}, now=0).state, 60_000).state
    assert (failed.status, failed.error, failed.deadline) == (
        ExecutionStatus.FAILED,
        "TIMEOUT",
        None,
    )


def test_on_timeout_without_timeout_seconds_is_refused() -> None:
    definition = {**TIMED_FLOW, "blocks": [dict(b) for b in TIMED_FLOW["blocks"]]}
    del definition["blocks"][1]["timeoutSeconds"]
    with pytest.raises(DefinitionError, match="onTimeout needs timeoutSeconds"):
        compiled(definition)


def test_an_integer_of_any_size_survives_an_assign_that_copies_it() -> None:
    big = 123456789012345678901234567890123
    flow = compiled(
        {
            "name": "Copies",
            "blocks": [
                {"name": "s", "type": "start", "next": "Payment Confirmed"},
                {"name": "Payment Confirmed", "type": "external_callback", "next": "copy"},
                {
                    "name": "copy",
                    "type": "assign",
                    "assign": {
                        "data": "results['Payment Confirmed'].data",
                        "big": "results['Payment Confirmed'].data.big",
                        "first": 'data["items"][0]',
                        "spaced": "results [ 'Payment Confirmed' ] . data . big",
                        "sum": "data.small + 1",
                    },
                },
            ],
        }
    )
    waiting = started(flow, {}).state
    data = {"big": big, "neg": -(2**70), "items": [big], "small": 2}
    state = ex.resume(flow, waiting, PAY, data, None, "a1", 2000).state
    assert state.status == ExecutionStatus.COMPLETED, state.error
    assert state.vars["data"] == data
    assert state.vars["big"] == big
    assert isinstance(state.vars["big"], int)
    assert (state.vars["first"], state.vars["spaced"], state.vars["sum"]) == (big, big, 3)
    missing = compiled(
        {
            "name": "Missing",
            "blocks": [
                {"name": "s", "type": "start", "next": "copy"},
                {"name": "copy", "type": "assign", "assign": {"x": "input.nope.deeper"}},
            ],
        }
    )
    failed = started(missing, {"other": 1}).state
    assert failed.status == ExecutionStatus.FAILED
    assert "no such field 'nope'" in (failed.error or "")
