"""Triggers groups in the core: `any` races, `all` meets within a window, and the
rules a definition with groups must follow."""

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from engine.core import execution as ex
from engine.core.definition import DefinitionError, Flow
from schemas.events import ExecutionCompleted, ExecutionResumed, ExecutionStatus
from schemas.flows import FlowDefinition

from ..flows import compiled, group_flow, trigger_id_for

CONFIRMED, FAILED = trigger_id_for("Payment Confirmed"), trigger_id_for("Payment Failed")
CAPTURED, RESERVED = trigger_id_for("Payment Captured"), trigger_id_for("Stock Reserved")
ORDER = {"orderId": "o-1"}


def waiting(flow: Flow, now: int = 1000) -> ex.ExecutionState:
    state = ex.start(flow, ex.new_execution(flow, "e1", dict(ORDER), now), now).state
    assert state.status == ExecutionStatus.WAITING
    return state


def test_a_group_waits_at_every_member_under_one_wait_id_and_key() -> None:
    flow = compiled(group_flow("any"))
    state = waiting(flow)
    assert state.waiting_on == (CONFIRMED, FAILED)
    assert state.wait_at == flow.wait_id(CONFIRMED) == flow.wait_id(FAILED)
    assert state.wait_at not in (CONFIRMED, FAILED)
    # both members' conditions compare with input.orderId: one stored key finds it for both
    key = flow.correlations["Payment Failed"].lookup_key(flow.wait_id(FAILED), ORDER)
    assert state.wait_key == key
    assert state.history[-1]["triggerIds"] == [CONFIRMED, FAILED]


def test_any_goes_on_at_the_first_member_and_releases_the_others() -> None:
    flow = compiled(group_flow("any"))
    step = ex.resume(flow, waiting(flow), FAILED, {"orderId": "o-1", "why": "card"}, None, "a1", 2)
    state = step.state
    assert state.status == ExecutionStatus.COMPLETED
    assert state.results["Payment Failed"] == {
        "data": {"orderId": "o-1", "why": "card"},
        "user": None,
    }
    assert "Payment Confirmed" not in state.results
    assert state.results["Payment"] == {"activated": ["Payment Failed"]}
    assert state.vars["outcome"] == ["Payment Failed"]
    assert state.group is None
    assert [type(e) for e in step.events] == [ExecutionResumed, ExecutionCompleted]
    resumed = step.events[0]
    assert isinstance(resumed, ExecutionResumed)
    assert resumed.triggerId == FAILED
    with pytest.raises(ex.NotWaiting):
        ex.resume(flow, state, CONFIRMED, ORDER, None, "a2", 3)


def test_all_records_arrivals_and_goes_on_with_the_last_in_arrival_order() -> None:
    flow = compiled(group_flow("all", window=3600))
    first = ex.resume(flow, waiting(flow), RESERVED, {"orderId": "o-1", "n": 1}, None, "a1", 5000)
    state = first.state
    assert first.events == []
    assert state.status == ExecutionStatus.WAITING
    assert state.waiting_on == (CAPTURED,)
    assert state.deadline == 5000 + 3_600_000  # the window runs from the first arrival
    assert state.applied == ("a1",)
    assert "Stock Reserved" not in state.results  # recorded, not yet a result
    assert state.history[-1] == {
        "at": 5000,
        "event": "arrived",
        "block": "Stock Reserved",
        "group": "Payment",
        "activationId": "a1",
        "awaiting": ["Payment Captured"],
    }
    with pytest.raises(ex.NotWaiting):  # a member counts once
        ex.resume(flow, state, RESERVED, ORDER, None, "a2", 6000)
    user = {"objectId": "u9", "roles": []}
    last = ex.resume(flow, state, CAPTURED, {"orderId": "o-1", "n": 2}, user, "a3", 7000)
    done = last.state
    assert done.status == ExecutionStatus.COMPLETED
    assert done.results["Payment"] == {"activated": ["Stock Reserved", "Payment Captured"]}
    assert done.results["Stock Reserved"]["data"]["n"] == 1
    assert done.results["Payment Captured"] == {"data": {"orderId": "o-1", "n": 2}, "user": user}
    assert (done.data, done.user) == ({"orderId": "o-1", "n": 2}, user)  # the latest's
    assert done.actors == ("u9",)
    assert done.applied == ("a1", "a3")
    assert [type(e) for e in last.events] == [ExecutionResumed, ExecutionCompleted]


def test_an_all_window_that_passes_drops_the_arrivals_and_waits_afresh() -> None:
    flow = compiled(group_flow("all", window=60))
    state = ex.resume(flow, waiting(flow), CAPTURED, ORDER, None, "a1", 10_000).state
    with pytest.raises(ex.NotWaiting):  # not yet due
        ex.time_out(flow, state, 69_999)
    step = ex.time_out(flow, state, 70_000)
    again = step.state
    assert step.events == []
    assert again.status == ExecutionStatus.WAITING
    assert again.waiting_on == (CAPTURED, RESERVED)
    assert again.group is not None
    assert again.group.arrived == ()
    assert again.deadline is None  # the next window starts at the next first arrival
    assert again.wait_since == state.wait_since  # keeps its place among the waiting
    assert again.history[-1]["event"] == "windowPassed"
    assert again.history[-1]["dropped"] == ["Payment Captured"]
    state = ex.resume(flow, again, RESERVED, ORDER, None, "a2", 80_000).state
    assert state.deadline == 140_000
    done = ex.resume(flow, state, CAPTURED, ORDER, None, "a3", 90_000).state
    assert done.results["Payment"] == {"activated": ["Stock Reserved", "Payment Captured"]}


def test_an_all_window_with_on_timeout_goes_there_with_what_arrived() -> None:
    flow = compiled(group_flow("all", window=60, onTimeout="Late"))
    state = ex.resume(flow, waiting(flow), RESERVED, {"orderId": "o-1"}, None, "a1", 1000).state
    done = ex.time_out(flow, state, 61_000).state
    assert done.status == ExecutionStatus.COMPLETED
    assert done.vars["outcome"] == "late"
    assert done.results["Payment"] == {"activated": ["Stock Reserved"], "timedOut": True}
    assert done.results["Stock Reserved"]["data"] == {"orderId": "o-1"}


def test_an_any_group_with_a_window_and_no_on_timeout_fails_with_timeout() -> None:
    flow = compiled(group_flow("any", window=30))
    state = waiting(flow, now=1000)
    assert state.deadline == 31_000  # `any`: the window runs from when the wait began
    failed = ex.time_out(flow, state, 31_000).state
    assert failed.status == ExecutionStatus.FAILED
    assert failed.error == "TIMEOUT"
    assert failed.results["Payment"] == {"activated": [], "timedOut": True}
    assert failed.waiting_on == ()
    assert failed.group is None


def test_ending_an_execution_releases_its_group() -> None:
    flow = compiled(group_flow("all", window=60))
    state = ex.terminate(waiting(flow), 2000, "stopped").state
    assert (state.waiting_on, state.group, state.wait_at) == ((), None, None)


def test_members_correlated_on_different_values_share_no_key() -> None:
    definition = group_flow("any")
    members = definition["blocks"][1]["triggers"]
    members[1]["condition"] = "data.ref == input.ref"
    flow = compiled(definition)
    assert set(flow.correlations) == {"Payment Confirmed"}  # the other scans its group


def _invalid(definition: dict[str, Any]) -> list[str]:
    with pytest.raises(DefinitionError) as raised:
        compiled(definition)
    return raised.value.problems


def test_a_group_needs_two_members() -> None:
    definition = group_flow("any")
    del definition["blocks"][1]["triggers"][1]
    assert _invalid(definition) == [
        "triggers group 'Payment' has 1 member(s): a group needs at least two "
        "(one trigger is an external_callback block)"
    ]


def test_members_are_reached_only_through_their_group() -> None:
    definition = group_flow("any")
    definition["blocks"][0]["next"] = "Payment Failed"
    problems = _invalid(definition)
    assert (
        "block 's' continues with 'Payment Failed', a member of triggers group 'Payment': "
        "continue with the group"
    ) in problems


def test_a_member_has_no_next_or_timeout_of_its_own() -> None:
    definition = group_flow("any")
    definition["blocks"][1]["triggers"][0].update(next="Done", timeoutSeconds=5)
    problems = _invalid(definition)
    assert any("member has no next" in p for p in problems)
    assert any("member has no timeoutSeconds" in p for p in problems)


def test_a_member_name_used_twice_is_refused() -> None:
    definition = group_flow("any")
    definition["blocks"].append({"name": "Payment Failed", "type": "end"})
    assert "block name 'Payment Failed' is used more than once" in _invalid(definition)


def test_all_needs_a_window_and_on_timeout_needs_one() -> None:
    assert _invalid(group_flow("all")) == [
        "triggers group 'Payment': mode all needs windowSeconds (how long after the first "
        "activation the others may arrive)"
    ]
    assert "triggers group 'Payment': onTimeout needs windowSeconds" in _invalid(
        group_flow("any", onTimeout="Late")
    )


@pytest.mark.parametrize("window", [0, 31_536_001])
def test_a_window_out_of_range_is_refused(window: int) -> None:
    definition = group_flow("all")
    definition["blocks"][1]["windowSeconds"] = window
    with pytest.raises(ValidationError, match="windowSeconds"):
        FlowDefinition.model_validate(definition)


def test_a_group_cannot_be_the_entry() -> None:
    definition = group_flow("any")
    del definition["blocks"][0]
    assert "triggers group 'Payment' cannot be the entry block: begin with a start block" in (
        _invalid(definition)
    )


# --- every arrival order and window, against a model of the rules -----------------------

_MEMBERS = (CAPTURED, RESERVED, trigger_id_for("Invoice Sent"))


def _three_members(window: int) -> Flow:
    definition = group_flow("all", window=window)
    definition["blocks"][1]["triggers"].append(
        {"name": "Invoice Sent", "type": "external_callback"}
    )
    return compiled(definition)


@settings(max_examples=300, deadline=None)
@given(
    window=st.integers(min_value=1, max_value=30),
    arrivals=st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 20_000)), min_size=1, max_size=12
    ),
)
def test_all_goes_on_once_exactly_when_every_member_arrives_in_one_window(
    window: int, arrivals: list[tuple[int, int]]
) -> None:
    flow = _three_members(window)
    state = waiting(flow, now=0)
    now = 0
    # the model: the open round's first arrival time and members, and whether it finished
    first: int | None = None
    members: list[int] = []
    finished_with: list[int] | None = None
    resumed = 0
    for number, (member, gap) in enumerate(arrivals):
        now += gap
        # the timer fires at the deadline, before any arrival at or after it
        if first is not None and now >= first + window * 1000 and finished_with is None:
            state = ex.time_out(flow, state, now).state
            first, members = None, []
        activation = f"a{number}"
        expected_taken = finished_with is None and member not in members
        try:
            step = ex.resume(flow, state, _MEMBERS[member], {"n": number}, None, activation, now)
        except ex.NotWaiting:
            assert not expected_taken
            continue
        assert expected_taken
        state = step.state
        resumed += sum(isinstance(e, ExecutionResumed) for e in step.events)
        first = now if first is None else first
        members.append(member)
        if len(members) == 3:
            finished_with = members
    assert resumed == (1 if finished_with is not None else 0)
    if finished_with is None:
        assert state.status == ExecutionStatus.WAITING
        assert state.group is not None
        assert [a["triggerId"] for a in state.group.arrived] == [_MEMBERS[m] for m in members]
    else:
        assert state.status == ExecutionStatus.COMPLETED
        names = [flow.trigger_blocks[_MEMBERS[m]] for m in finished_with]
        assert state.results["Payment"] == {"activated": names}
