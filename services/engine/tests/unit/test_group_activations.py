"""Triggers groups through the engine's use cases: outcomes, races between members,
redeliveries, buffered members and windows, over the in-memory store."""

import asyncio
import random
import uuid
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import ExecutionResumed, ExecutionStatus, Outcome
from schemas.flows import FlowDefinition

from ..flows import group_flow
from .test_service import World, new_world

ORDER = {"orderId": "o-1"}


async def _waiting(world: World, definition: dict[str, Any]) -> tuple[str, dict[str, str], str]:
    flow_id, triggers = await world.deploy(definition)
    execution_id = await world.start(flow_id, dict(ORDER))
    assert await world.status(execution_id) == ExecutionStatus.WAITING
    return flow_id, triggers, execution_id


def _resumes(world: World, execution_id: str) -> int:
    return sum(
        isinstance(e, ExecutionResumed) and e.executionId == execution_id
        for e in world.published.events
    )


async def test_members_are_triggers_with_their_own_urls(world: World) -> None:
    deployed = await world.catalog.deploy(FlowDefinition.model_validate(group_flow("any")))
    assert [t.name for t in deployed.triggers] == ["Payment Confirmed", "Payment Failed"]
    urls = {t.callbackUrl for t in deployed.triggers}
    assert len(urls) == 2
    assert all(f"/trigger/{t.triggerId}/activate" in t.callbackUrl for t in deployed.triggers)


async def test_any_the_first_member_resumes_and_the_other_finds_no_waiter(world: World) -> None:
    flow_id, triggers, execution_id = await _waiting(world, group_flow("any"))
    first = await world.activate(flow_id, triggers["Payment Failed"], ORDER)
    assert first.outcome == Outcome.ACTIVATED
    assert first.executionIds == [execution_id]
    later = await world.activate(flow_id, triggers["Payment Confirmed"], ORDER)
    assert later.outcome == Outcome.NO_WAITER
    state = await world.store.get_execution(execution_id)
    assert state is not None
    assert state.status == ExecutionStatus.COMPLETED
    assert state.vars["outcome"] == ["Payment Failed"]


async def test_any_members_activated_together_resume_once(world: World) -> None:
    flow_id, triggers, execution_id = await _waiting(world, group_flow("any"))
    outcomes = await asyncio.gather(
        world.activate(flow_id, triggers["Payment Failed"], ORDER),
        world.activate(flow_id, triggers["Payment Confirmed"], ORDER),
    )
    assert sorted(o.outcome for o in outcomes) == [Outcome.ACTIVATED, Outcome.NO_WAITER]
    assert _resumes(world, execution_id) == 1


async def test_all_each_arrival_is_activated_and_the_last_goes_on(world: World) -> None:
    flow_id, triggers, execution_id = await _waiting(world, group_flow("all", window=3600))
    captured = await world.activate(flow_id, triggers["Payment Captured"], ORDER)
    assert (captured.outcome, captured.executionIds) == (Outcome.ACTIVATED, [execution_id])
    assert await world.status(execution_id) == ExecutionStatus.WAITING
    again = await world.activate(flow_id, triggers["Payment Captured"], ORDER)
    assert again.outcome == Outcome.NO_WAITER  # its member arrived already
    other = await world.activate(flow_id, triggers["Stock Reserved"], {"orderId": "o-2"})
    assert other.outcome == Outcome.FILTERED  # another order's
    reserved = await world.activate(flow_id, triggers["Stock Reserved"], ORDER)
    assert reserved.outcome == Outcome.ACTIVATED
    state = await world.store.get_execution(execution_id)
    assert state is not None
    assert state.status == ExecutionStatus.COMPLETED
    assert state.vars["outcome"] == ["Payment Captured", "Stock Reserved"]
    assert _resumes(world, execution_id) == 1


async def test_a_redelivered_arrival_is_recorded_once(world: World) -> None:
    flow_id, triggers, execution_id = await _waiting(world, group_flow("all", window=3600))
    activation = str(uuid.uuid4())
    first = await world.activate(
        flow_id, triggers["Stock Reserved"], ORDER, activationId=activation
    )
    again = await world.activate(
        flow_id, triggers["Stock Reserved"], ORDER, activationId=activation
    )
    assert first == again
    state = await world.store.get_execution(execution_id)
    assert state is not None
    assert state.group is not None
    assert [a["activationId"] for a in state.group.arrived] == [activation]


async def test_the_window_passing_makes_the_group_wait_afresh(world: World) -> None:
    flow_id, triggers, execution_id = await _waiting(world, group_flow("all", window=60))
    await world.activate(flow_id, triggers["Stock Reserved"], ORDER)
    world.clock.now += 61_000
    assert await world.engine.fire_timers() == 1
    state = await world.store.get_execution(execution_id)
    assert state is not None
    assert state.status == ExecutionStatus.WAITING
    assert state.history[-1]["event"] == "windowPassed"
    # the dropped member is awaited again; both are needed once more
    assert (await world.activate(flow_id, triggers["Payment Captured"], ORDER)).outcome == (
        Outcome.ACTIVATED
    )
    assert await world.status(execution_id) == ExecutionStatus.WAITING
    await world.activate(flow_id, triggers["Stock Reserved"], ORDER)
    assert await world.status(execution_id) == ExecutionStatus.COMPLETED


async def test_buffered_members_are_taken_when_the_group_begins_waiting(world: World) -> None:
    flow_id, triggers = await world.deploy(group_flow("all", window=3600, buffer=600))
    early = await world.activate(flow_id, triggers["Stock Reserved"], ORDER)
    also = await world.activate(flow_id, triggers["Payment Captured"], ORDER)
    assert (early.outcome, also.outcome) == (Outcome.BUFFERED, Outcome.BUFFERED)
    execution_id = await world.start(flow_id, dict(ORDER))
    state = await world.store.get_execution(execution_id)
    assert state is not None
    assert state.status == ExecutionStatus.COMPLETED
    assert state.vars["outcome"] == ["Stock Reserved", "Payment Captured"]  # arrival order
    settled = {o.activationId: o.outcome for o in world.published.decided}
    assert settled[early.activationId] == settled[also.activationId] == Outcome.ACTIVATED


async def test_a_grouped_wait_is_found_by_key_among_many(world: World) -> None:
    flow_id, triggers = await world.deploy(group_flow("any"))
    ids = [await world.start(flow_id, {"orderId": f"o-{n}"}) for n in range(20)]
    outcome = await world.activate(flow_id, triggers["Payment Confirmed"], {"orderId": "o-7"})
    assert outcome.executionIds == [ids[7]]
    assert [await world.status(i) for i in ids].count(ExecutionStatus.COMPLETED) == 1


@settings(max_examples=40, deadline=None)
@given(
    mode=st.sampled_from(["any", "all"]),
    seed=st.integers(0, 2**32 - 1),
    copies=st.integers(1, 3),
)
def test_concurrent_and_redelivered_member_activations_go_on_exactly_once(
    mode: str, seed: int, copies: int
) -> None:
    """Every member activated `copies` times, some deliveries repeated, all at once in a
    random order (the store lets them interleave at every await): the group goes on once,
    and in `all` mode only after every member arrived."""

    async def run() -> None:
        world = new_world()
        try:
            flow_id, triggers, execution_id = await _waiting(world, group_flow(mode, window=3600))
            rng = random.Random(seed)
            sends = []
            for name in triggers:
                for _ in range(copies):
                    activation = str(uuid.uuid4())
                    for _ in range(rng.randint(1, 2)):  # a redelivery of the same activation
                        sends.append((name, activation))
            rng.shuffle(sends)
            outcomes = await asyncio.gather(
                *(
                    world.activate(flow_id, triggers[name], ORDER, activationId=activation)
                    for name, activation in sends
                )
            )
            state = await world.store.get_execution(execution_id)
            assert state is not None
            assert state.status == ExecutionStatus.COMPLETED
            assert _resumes(world, execution_id) == 1
            by_activation: dict[str, set[Outcome]] = {}
            for (_, activation), outcome in zip(sends, outcomes, strict=True):
                by_activation.setdefault(activation, set()).add(outcome.outcome)
            assert all(len(seen) == 1 for seen in by_activation.values())  # one answer each
            taken = [a for a, seen in by_activation.items() if seen == {Outcome.ACTIVATED}]
            assert len(taken) == (1 if mode == "any" else len(triggers))
            arrived = state.results["Payment"]["activated"]
            assert sorted(arrived) == (sorted(triggers) if mode == "all" else arrived)
            assert len(arrived) == (len(triggers) if mode == "all" else 1)
        finally:
            await world.workers.close()

    asyncio.run(run())
