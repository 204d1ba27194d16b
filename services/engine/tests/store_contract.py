"""The Store contract: one suite, run against the in-memory fake and MongoDB-wire servers.

Modules that import these tests provide a `store` fixture.
"""

from dataclasses import replace
from typing import Any

from engine.core.execution import ExecutionState
from engine.records import FlowRecord, Wait
from engine.store import Store
from schemas.events import ActivationOutcome, ExecutionStatus, Outcome
from schemas.flows import FlowDefinition

from .flows import ORDER_FLOW

AWKWARD: dict[str, Any] = {
    "matrix": [[1, 2], [3, [4]]],
    "a.b": {"$set": 1},
    "huge": 2**80,
    "text": "ünïcödé 🚀",
}


def flow_record(flow_id: str, version: int, created: int) -> FlowRecord:
    return FlowRecord(
        flow_id,
        "Order fulfilment",
        version,
        created,
        FlowDefinition.model_validate(ORDER_FLOW),
        {"Payment Confirmed": "t-1"},
    )


def execution(
    execution_id: str,
    created: int = 1,
    flow_id: str = "f1",
    status: ExecutionStatus = ExecutionStatus.WAITING,
) -> ExecutionState:
    return ExecutionState(
        execution_id=execution_id,
        flow_id=flow_id,
        status=status,
        at=None,
        input=AWKWARD,
        created=created,
        updated=created,
        waiting_on=("t-1",),
        vars={"nested": [[AWKWARD]]},
        history=({"at": 1, "event": "started"},),
    )


def wait(execution_id: str, created: int, trigger_id: str = "t-1") -> Wait:
    return Wait(
        Wait.make_id(execution_id, trigger_id, 0),
        execution_id,
        "f1",
        trigger_id,
        created,
        {"vars": {"order": {"id": execution_id}}, "m": [[1]]},
    )


async def collect(
    store: Store, activation_id: str = "a1", execution_id: str | None = None
) -> list[str]:
    return [
        w.execution_id
        async for w in store.candidate_waits("f1", "t-1", activation_id, execution_id)
    ]


async def test_versions_count_per_name(store: Store) -> None:
    assert [
        await store.next_version("a"),
        await store.next_version("a"),
        await store.next_version("b"),
    ] == [1, 2, 1]


async def test_the_newest_version_is_live(store: Store) -> None:
    await store.save_flow(flow_record("f1", 1, 10))
    await store.save_flow(flow_record("f2", 2, 20))
    old, new = await store.get_flow("F1"), await store.get_flow("f2")
    assert old is not None
    assert new is not None
    assert (old.live, new.live) == (False, True)
    assert old.definition == FlowDefinition.model_validate(ORDER_FLOW)
    assert old.trigger_ids == {"Payment Confirmed": "t-1"}
    assert [r.flow_id async for r in store.flows()] == ["f1", "f2"]
    assert await store.get_flow("nope") is None


async def test_block_names_may_hold_any_text(store: Store) -> None:
    definition = FlowDefinition.model_validate(
        {"name": "odd.names $", "blocks": [{"name": "$pay.v2", "type": "external_callback"}]}
    )
    record = FlowRecord("f9", "odd.names $", 1, 5, definition, {"$pay.v2": "t-9"})
    await store.save_flow(record)
    assert await store.get_flow("f9") == record


async def test_execution_round_trips_any_json(store: Store) -> None:
    state = execution("e1")
    assert await store.create_execution(state)
    assert not await store.create_execution(state)
    assert await store.get_execution("E1") == state


async def test_saving_a_stale_revision_is_refused(store: Store) -> None:
    state = execution("e1")
    await store.create_execution(state)
    first = replace(state, rev=1, vars={"x": 1})
    assert await store.save_execution(first)
    assert not await store.save_execution(replace(state, rev=1, vars={"x": 2}))
    assert await store.get_execution("e1") == first


async def test_executions_page_in_creation_order_by_status(store: Store) -> None:
    for i in range(5):
        await store.create_execution(execution(f"e{i}", created=100 - i))
    await store.create_execution(execution("done", created=1, status=ExecutionStatus.COMPLETED))
    await store.create_execution(execution("other", created=1, flow_id="f2"))
    page, cursor = await store.list_executions("f1", ExecutionStatus.WAITING, None, 2)
    assert [s.execution_id for s in page] == ["e4", "e3"]
    seen = [s.execution_id for s in page]
    while cursor is not None:
        page, cursor = await store.list_executions("f1", ExecutionStatus.WAITING, cursor, 2)
        seen += [s.execution_id for s in page]
    assert seen == ["e4", "e3", "e2", "e1", "e0"]
    everything, _ = await store.list_executions("f1", None, None, 10)
    assert len(everything) == 6


async def test_waits_stream_oldest_first_and_skip_others_claims(store: Store) -> None:
    await store.add_waits([wait("e2", 20), wait("e1", 10), wait("e3", 30)])
    await store.add_waits([wait("e1", 10)])  # recorded twice: still one
    assert await collect(store) == ["e1", "e2", "e3"]
    assert await store.claim(Wait.make_id("e2", "t-1", 0), "other", 5)
    assert await collect(store) == ["e1", "e3"]
    assert await collect(store, "other") == ["e1", "e2", "e3"]
    # by execution id, the wait is found through the execution that waits there
    for execution_id in ("e1", "e3"):
        await store.create_execution(execution(execution_id))
    assert await collect(store, execution_id="e3") == ["e3"]
    assert await collect(store, execution_id="e9") == []
    (first,) = [w async for w in store.candidate_waits("f1", "t-1", "a1", "e1")]
    assert first.snapshot == {"vars": {"order": {"id": "e1"}}, "m": [[1]]}


async def test_only_one_activation_claims_a_wait(store: Store) -> None:
    await store.add_waits([wait("e1", 10)])
    wait_id = Wait.make_id("e1", "t-1", 0)
    assert await store.claim(wait_id, "a1", 1)
    assert not await store.claim(wait_id, "a2", 1)
    assert await store.claim(wait_id, "a1", 2)  # a redelivery continues its own claim
    await store.release(wait_id, "a1")
    assert await store.claim(wait_id, "a2", 3)
    await store.finish_claims("a2")
    assert await collect(store) == []
    assert not await store.claim(wait_id, "a2", 4)


async def test_outcomes_are_kept_by_activation(store: Store) -> None:
    outcome = ActivationOutcome(
        activationId="a1",
        flowId="f1",
        triggerId="t-1",
        outcome=Outcome.ACTIVATED,
        executionIds=["e1"],
        decidedAt=5,
    )
    await store.save_outcome(outcome)
    await store.save_outcome(outcome.model_copy(update={"outcome": Outcome.NO_WAITER}))
    assert await store.get_outcome("a1") == outcome
    assert await store.get_outcome("a2") is None


async def test_an_idempotency_key_belongs_to_its_first_activation_until_it_expires(
    store: Store,
) -> None:
    assert await store.remember_key("f1:t-1", "k", "a1", now=1000, retention_ms=100) == "a1"
    assert await store.remember_key("f1:t-1", "k", "a2", now=1050, retention_ms=100) == "a1"
    assert await store.remember_key("f1:t-2", "k", "a3", now=1050, retention_ms=100) == "a3"
    assert await store.remember_key("f1:t-1", "k", "a4", now=1200, retention_ms=100) == "a4"
    assert await store.purge(now=1301, retention_ms=100) == 2
    assert await store.remember_key("f1:t-1", "k", "a5", now=1301, retention_ms=100) == "a5"


async def test_the_newest_revision_is_read_and_listed(store: Store) -> None:
    state = execution("e1")
    await store.create_execution(state)
    for rev in range(1, 21):
        status = ExecutionStatus.COMPLETED if rev == 20 else ExecutionStatus.WAITING
        assert await store.save_execution(replace(state, rev=rev, status=status, vars={"rev": rev}))
    for hint in (0, 7, 20):
        latest = await store.get_execution("e1", rev_hint=hint)
        assert latest is not None
        assert (latest.rev, latest.vars) == (20, {"rev": 20})
    waiting, _ = await store.list_executions("f1", ExecutionStatus.WAITING, None, 10)
    done, _ = await store.list_executions("f1", ExecutionStatus.COMPLETED, None, 10)
    assert (waiting, [s.rev for s in done]) == ([], [20])
