"""The Store contract: one suite, run against the in-memory fake and MongoDB-wire servers.

Modules that import these tests provide a `store` fixture.
"""

import asyncio
import uuid
from dataclasses import replace
from typing import Any

from engine.adapters import ExpressionWorkers
from engine.app import wire_engine
from engine.catalog import Catalog, CatalogConfig
from engine.core.execution import ExecutionState, GroupWait
from engine.ports import EXPIRY, Buffered, FlowRecord, Resuming, Store, TriggerSecrets
from engine.usecases import Engine, EngineConfig, ExecutionFault
from schemas.events import (
    ActivateTrigger,
    ActivationOutcome,
    DeadLetter,
    DeadLetterKind,
    ExecutionResumed,
    ExecutionStatus,
    Outcome,
    StartExecution,
)
from schemas.flows import FlowDefinition
from schemas.sealing import SealedSecret

from .fakes import Clock, RecordingPublisher, ScriptedHttp, StaticTokens
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


def waiting_at(
    execution_id: str, since: int, trigger_id: str = "t-1", key: str | None = None
) -> ExecutionState:
    return replace(execution(execution_id, created=since), waiting_on=(trigger_id,), wait_key=key)


async def ids(store: Store, trigger_id: str = "t-1", key: str | None = None) -> list[str]:
    return [s.execution_id async for s in store.waiting(trigger_id, key)]


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


async def test_flows_are_listed_a_page_at_a_time_with_the_live_one_marked(store: Store) -> None:
    for n in range(1, 4):
        await store.save_flow(flow_record(f"f{n}", n, n * 10))
    first, cursor = await store.list_flows(None, 2)
    assert [(r.flow_id, r.live) for r in first] == [("f1", False), ("f2", False)]
    assert cursor is not None
    rest, end = await store.list_flows(cursor, 2)
    assert [(r.flow_id, r.live) for r in rest] == [("f3", True)]
    assert end is None


async def test_block_names_may_hold_any_text(store: Store) -> None:
    definition = FlowDefinition.model_validate(
        {"name": "odd.names $", "blocks": [{"name": "$pay.v2", "type": "external_callback"}]}
    )
    record = FlowRecord("f9", "odd.names $", 1, 5, definition, {"$pay.v2": "t-9"})
    await store.save_flow(record)
    assert await store.get_flow("f9") == record


async def test_execution_round_trips_any_json(store: Store) -> None:
    state = waiting_at("e1", 5, key='t-1:"o-1"')
    assert await store.create_execution(state)
    assert not await store.create_execution(state)
    assert await store.get_execution("E1") == state
    assert await store.get_execution("e2") is None
    other = waiting_at("e3", 6, key='t-1:"o-3"')
    assert await store.create_execution(other)
    assert await store.get_executions(["E1", "e2", "e3"]) == {"e1": state, "e3": other}
    assert await store.get_executions([]) == {}


async def test_saving_over_a_stale_version_is_refused(store: Store) -> None:
    state = execution("e1")
    await store.create_execution(state)
    first = replace(state, version=1, vars={"x": 1})
    assert await store.save_execution(first)
    assert not await store.save_execution(replace(state, version=1, vars={"x": 2}))
    assert not await store.save_execution(replace(state, execution_id="nobody", version=1))
    assert await store.get_execution("e1") == first


async def test_saves_made_together_each_get_their_own_answer(store: Store) -> None:
    states = [execution(f"e{n}") for n in range(40)]
    for state in states:
        await store.create_execution(state)
    saves = [replace(state, version=1, vars={"n": n}) for n, state in enumerate(states)]
    # two more saves of e3 race with its first for the same version: one of three wins
    saves += [replace(states[3], version=1, vars={"racing": n}) for n in range(2)]
    answers = await asyncio.gather(*(store.save_execution(save) for save in saves))
    assert answers[:3] == [True] * 3
    assert answers[4:40] == [True] * 36
    assert sorted([answers[3], *answers[40:]]) == [False, False, True]
    stored = await store.get_executions([s.execution_id for s in states])
    for n, state in enumerate(states):
        assert stored[state.execution_id].version == 1
        if n != 3:
            assert stored[state.execution_id].vars == {"n": n}
    winner = [s for s, won in zip(saves, answers, strict=True) if won and s.execution_id == "e3"]
    assert [stored["e3"].vars] == [w.vars for w in winner]


async def test_concurrent_writers_win_exactly_once_per_version(store: Store) -> None:
    await store.create_execution(execution("e1"))
    wins = 0

    async def writer(name: str) -> None:
        nonlocal wins
        for _ in range(25):
            current = await store.get_execution("e1")
            assert current is not None
            history = (*current.history, {"by": name})
            if await store.save_execution(
                replace(current, version=current.version + 1, history=history)
            ):
                wins += 1

    await asyncio.gather(*(writer(f"w{n}") for n in range(8)))
    final = await store.get_execution("e1")
    assert final is not None
    assert final.version == wins
    assert len(final.history) == wins + 1  # every win kept its entry, none was overwritten


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


async def test_a_flows_executions_of_every_status_page_in_one_creation_order(
    store: Store,
) -> None:
    statuses = list(ExecutionStatus)
    made = []
    for i in range(17):  # ties of `created` across statuses, broken by the id
        execution_id = f"e{i:02}"
        await store.create_execution(
            execution(execution_id, created=i // 3, status=statuses[(i * 7) % len(statuses)])
        )
        made.append(execution_id)
    await store.create_execution(execution("elsewhere", created=0, flow_id="f2"))
    for size in (1, 4, 5, 17, 50):
        seen: list[str] = []
        cursor: str | None = None
        while True:
            page, cursor = await store.list_executions("f1", None, cursor, size)
            assert len(page) <= size
            seen += [s.execution_id for s in page]
            if cursor is None:
                break
        assert seen == made, size


async def test_waiting_executions_are_found_by_trigger_and_by_key_oldest_first(
    store: Store,
) -> None:
    for state in (
        waiting_at("e2", 20, key="t-1:1"),
        waiting_at("e1", 10, key="t-1:2"),
        waiting_at("e3", 30, key="t-1:1"),
        waiting_at("x1", 5, trigger_id="t-2", key="t-2:1"),
        execution("done", status=ExecutionStatus.COMPLETED),
    ):
        await store.create_execution(state)
    assert await ids(store) == ["e1", "e2", "e3"]
    assert await ids(store, key="t-1:1") == ["e2", "e3"]
    assert await ids(store, key="t-1:3") == []
    assert await ids(store, "t-2", key="t-2:1") == ["x1"]
    assert (await store.anyone_waiting("t-1"), await store.anyone_waiting("t-9")) == (True, False)
    e2 = await store.get_execution("e2")
    assert e2 is not None
    resumed = replace(e2, status=ExecutionStatus.COMPLETED, waiting_on=(), wait_key=None, version=1)
    assert await store.save_execution(resumed)
    assert await ids(store, key="t-1:1") == ["e3"]
    assert await ids(store) == ["e1", "e3"]


async def test_a_group_wait_is_found_by_its_group_in_the_order_it_began(store: Store) -> None:
    arrival = {"name": "a", "triggerId": "m-1", "activationId": "x", "at": 9, "data": AWKWARD}
    group = GroupWait("Payment", "g-1", since=10, arrived=({**arrival, "user": None},))
    later = replace(
        waiting_at("e2", 20, key="g-1:7"), waiting_on=("m-2",), group=replace(group, since=20)
    )
    earlier = replace(waiting_at("e1", 10, key="g-1:7"), waiting_on=("m-1", "m-2"), group=group)
    for state in (later, earlier, waiting_at("single", 5, trigger_id="m-1")):
        await store.create_execution(state)
    assert await ids(store, "g-1") == ["e1", "e2"]
    assert await ids(store, "g-1", key="g-1:7") == ["e1", "e2"]
    assert await ids(store, "m-1") == ["single"]  # a member's id alone finds no group wait
    found = await store.get_execution("e1")
    assert found is not None
    assert (found.waiting_on, found.group, found.wait_since) == (("m-1", "m-2"), group, 10)
    # a save while it still waits (another member arrived) keeps its place in the order
    saved = replace(found, updated=99, waiting_on=("m-2",), version=1)
    assert await store.save_execution(saved)
    assert await ids(store, "g-1") == ["e1", "e2"]
    left = replace(saved, status=ExecutionStatus.COMPLETED, waiting_on=(), group=None, version=2)
    assert await store.save_execution(left)
    assert await ids(store, "g-1") == ["e2"]
    assert await store.anyone_waiting("g-1")


async def test_an_activation_records_its_choice_then_its_outcome(store: Store) -> None:
    assert await store.get_activation("a1") is None
    chosen = Resuming("a1", ("e1", "e2"))
    assert await store.begin_resuming(chosen) == chosen
    assert await store.begin_resuming(Resuming("a1", ("e3",))) == chosen  # the first one stays
    assert await store.get_activation("a1") == chosen
    outcome = ActivationOutcome(
        activationId="a1",
        flowId="f1",
        triggerId="t-1",
        outcome=Outcome.ACTIVATED,
        executionIds=["e1"],
        decidedAt=5,
    )
    assert await store.save_outcome(outcome)
    assert not await store.save_outcome(outcome.model_copy(update={"outcome": Outcome.NO_WAITER}))
    assert await store.get_activation("a1") == outcome
    later = outcome.model_copy(update={"outcome": Outcome.NO_WAITER, "executionIds": []})
    fresh = outcome.model_copy(update={"activationId": "a9"})
    assert await store.save_outcomes([later, fresh]) == {"a1"}
    assert await store.save_outcomes([later]) == {"a1"}


async def test_an_outcome_without_a_choice_is_stored_once(store: Store) -> None:
    outcome = ActivationOutcome(
        activationId="a2",
        flowId="f1",
        triggerId="t-1",
        outcome=Outcome.NO_WAITER,
        decidedAt=5,
    )
    await store.save_outcome(outcome)
    await store.save_outcome(outcome.model_copy(update={"outcome": Outcome.FILTERED}))
    assert await store.get_activation("a2") == outcome


async def test_an_idempotency_key_belongs_to_its_first_activation_until_it_expires(
    store: Store,
) -> None:
    assert await store.remember_key("f1:t-1", "k", "a1", now=1000, retention_ms=100) == "a1"
    assert await store.remember_key("f1:t-1", "k", "a2", now=1050, retention_ms=100) == "a1"
    assert await store.remember_key("f1:t-2", "k", "a3", now=1050, retention_ms=100) == "a3"
    assert await store.remember_key("f1:t-1", "k", "a4", now=1200, retention_ms=100) == "a4"
    assert await store.purge(now=1301, retention_ms=100) == 2
    assert await store.remember_key("f1:t-1", "k", "a5", now=1301, retention_ms=100) == "a5"


async def test_a_wait_with_a_deadline_has_a_timer_until_it_is_dropped(store: Store) -> None:
    timed = replace(execution("e-timed"), deadline=5_000)
    await store.create_execution(timed)
    await store.create_execution(replace(execution("e-later"), deadline=9_000))
    await store.create_execution(execution("e-none"))
    assert (await store.get_execution("e-timed")) == timed
    assert [t.execution_id for t in await store.due_timers(4_999, 10)] == []
    (due,) = await store.due_timers(5_000, 10)
    assert (due.execution_id, due.due) == ("e-timed", 5_000)
    assert [t.execution_id for t in await store.due_timers(10_000, 10)] == ["e-timed", "e-later"]
    assert len(await store.due_timers(10_000, 1)) == 1
    await store.drop_timer(due.timer_id)
    assert [t.execution_id for t in await store.due_timers(10_000, 10)] == ["e-later"]
    # waiting again with another deadline arms another timer
    again = replace(timed, deadline=7_000, version=1)
    assert await store.save_execution(again)
    assert [t.due for t in await store.due_timers(10_000, 10)] == [7_000, 9_000]


def kept(
    activation_id: str,
    arrived: int,
    key: str | None = None,
    trigger_id: str = "t-1",
    execution_id: str | None = None,
) -> Buffered:
    return Buffered(
        activation_id=activation_id,
        flow_id="f1",
        trigger_id=trigger_id,
        key=key,
        execution_id=execution_id,
        data=AWKWARD,
        user={"email": "gw@pay.example", "roles": ["PaymentGateway"]},
        arrived=arrived,
        expires=arrived + 100,
    )


async def test_buffered_activations_are_found_by_trigger_or_key_in_arrival_order(
    store: Store,
) -> None:
    first = kept("a1", 1, key="t-1:k1")
    assert await store.buffer(first) == first
    assert await store.buffer(replace(first, data={"other": 1})) == first  # a redelivery
    await store.buffer(kept("a3", 3, key="t-1:k1", execution_id="e-9"))
    await store.buffer(kept("a2", 2, key="t-1:k2"))
    await store.buffer(kept("a4", 4, key="t-2:k1", trigger_id="t-2"))
    ids = [e.activation_id for e in await store.buffered("t-1", None, now=50, limit=10)]
    assert ids == ["a1", "a2", "a3"]
    assert [e.activation_id for e in await store.buffered("t-1", "t-1:k1", 50, 10)] == ["a1", "a3"]
    assert [e.activation_id for e in await store.buffered("t-1", None, 50, 2)] == ["a1", "a2"]
    assert [e.activation_id for e in await store.buffered("t-1", None, 102, 10)] == ["a3"]
    assert (await store.buffered("t-1", "t-1:k1", 50, 10))[1].execution_id == "e-9"


async def test_a_buffered_activation_has_one_claimer_until_given_back(store: Store) -> None:
    await store.buffer(kept("a1", 1))
    await store.buffer(kept("a2", 2))
    assert await store.claim_buffered("a1", "e-1", now=50, stale_ms=1000)
    assert not await store.claim_buffered("a1", "e-2", now=50, stale_ms=1000)
    assert not await store.claim_buffered("a2", EXPIRY, now=50, stale_ms=1000)  # not expired
    assert [e.activation_id for e in await store.buffered("t-1", None, 50, 10)] == ["a2"]
    await store.release_buffered("a1", "e-2")  # not its claim: nothing changes
    assert [e.activation_id for e in await store.buffered("t-1", None, 50, 10)] == ["a2"]
    await store.release_buffered("a1", "e-1")
    assert [e.activation_id for e in await store.buffered("t-1", None, 50, 10)] == ["a1", "a2"]
    assert not await store.claim_buffered("a1", "e-1", now=101, stale_ms=1000)  # expired
    assert await store.claim_buffered("a1", EXPIRY, now=101, stale_ms=1000)
    await store.drop_buffered("a1")
    assert await store.buffered("t-1", None, 50, 10) == [replace(kept("a2", 2), claimed_by=None)]


async def test_the_sweep_sees_expired_entries_and_stale_claims(store: Store) -> None:
    await store.buffer(kept("a1", 1))  # expires at 101
    await store.buffer(kept("a2", 2))  # expires at 102, claimed at 50: stale at 60
    await store.buffer(kept("a3", 500))
    assert await store.claim_buffered("a2", "e-1", now=50, stale_ms=10)
    assert await store.due_buffered(59, 10) == []
    (stale,) = await store.due_buffered(60, 10)
    assert (stale.activation_id, stale.claimed_by) == ("a2", "e-1")
    assert [e.activation_id for e in await store.due_buffered(101, 10)] == ["a2", "a1"]
    await store.release_buffered("a2", "e-1")  # given back: due at its expiry again
    assert [e.activation_id for e in await store.due_buffered(101, 10)] == ["a1"]
    assert [e.activation_id for e in await store.due_buffered(102, 1)] == ["a1"]


async def test_a_buffered_outcome_is_settled_once(store: Store) -> None:
    def decided(outcome: Outcome, ids: list[str]) -> ActivationOutcome:
        return ActivationOutcome(
            activationId="a1",
            flowId="f1",
            triggerId="t-1",
            outcome=outcome,
            executionIds=ids,
            decidedAt=5,
        )

    assert await store.save_outcome(decided(Outcome.BUFFERED, []))
    assert await store.settle_outcome(decided(Outcome.ACTIVATED, ["e-1"]))
    assert not await store.settle_outcome(decided(Outcome.EXPIRED, []))
    assert await store.get_activation("a1") == decided(Outcome.ACTIVATED, ["e-1"])
    assert not await store.save_outcome(decided(Outcome.BUFFERED, []))
    # settled before the buffering was recorded: the record finds it taken
    fresh = decided(Outcome.EXPIRED, []).model_copy(update={"activationId": "a2"})
    assert await store.settle_outcome(fresh)
    assert not await store.save_outcome(fresh.model_copy(update={"outcome": Outcome.BUFFERED}))


async def test_a_triggers_secrets_are_replaced_by_compare_and_set(store: Store) -> None:
    first = TriggerSecrets(1, (SealedSecret(sealed="s1"),))
    assert await store.save_secrets("f1", "t-1", first)
    assert not await store.save_secrets("f1", "t-1", first)  # issued once
    assert await store.save_secrets("f1", "t-2", TriggerSecrets(1, (SealedSecret(sealed="x"),)))
    assert await store.save_secrets("f2", "t-3", TriggerSecrets(1, (SealedSecret(sealed="y"),)))
    rotated = TriggerSecrets(
        2, (SealedSecret(sealed="s2"), SealedSecret(sealed="s1", validUntil=9))
    )
    assert await store.save_secrets("f1", "t-1", rotated)
    assert not await store.save_secrets("f1", "t-1", replace(rotated, secrets=()))  # lost race
    found = await store.secrets_of("f1")
    assert found == {"t-1": rotated, "t-2": TriggerSecrets(1, (SealedSecret(sealed="x"),))}
    assert await store.secrets_of("f9") == {}


def letter(n: int, at: int, activation_id: str | None = None) -> DeadLetter:
    return DeadLetter(
        deadLetterId=f"dl-{n}",
        kind=DeadLetterKind.FAILED,
        topic="t.activations",
        partition=0,
        offset=n,
        key="k",
        value='{"a.b": {"$set": [[1]]}, "n": ' + str(2**80) + "}",
        error="boom",
        attempts=5,
        activationId=activation_id,
        at=at,
    )


async def test_dead_letters_are_kept_once_paged_in_order_and_marked_when_replayed(
    store: Store,
) -> None:
    await store.save_dead_letter(letter(1, at=200, activation_id="a1"))
    await store.save_dead_letter(letter(2, at=100))
    await store.save_dead_letter(letter(3, at=200, activation_id="a1"))
    await store.save_dead_letter(replace_letter := letter(1, at=999))  # parked again: kept
    first, cursor = await store.list_dead_letters(None, 2)
    assert [d.deadLetterId for d in first] == ["dl-2", "dl-1"]
    assert cursor is not None
    rest, last = await store.list_dead_letters(cursor, 2)
    assert ([d.deadLetterId for d in rest], last) == (["dl-3"], None)
    assert first[1] == letter(1, at=200, activation_id="a1") != replace_letter
    found = await store.dead_letter_of("a1")
    assert found is not None
    assert found.deadLetterId in ("dl-1", "dl-3")
    assert await store.dead_letter_of("a2") is None
    marked = await store.mark_replayed("dl-2", 555)
    assert marked is not None
    assert marked.replayedAt == 555
    assert (await store.get_dead_letter("dl-2")) == marked
    assert await store.mark_replayed("dl-9", 555) is None
    assert await store.get_dead_letter("dl-9") is None


# -- exactly-once through the engine, on this store -------------------------------------

KEYED_ORDER = {
    "name": "keyed",
    "blocks": [
        {"name": "s", "type": "start", "next": "paid"},
        {"name": "paid", "type": "external_callback", "condition": "data.id == input.id"},
    ],
}
SCANNED_ORDER = {
    "name": "scanned",
    "blocks": [
        {"name": "s", "type": "start", "next": "paid"},
        {"name": "paid", "type": "external_callback", "condition": "data.id + '' == input.id"},
    ],
}


class Crash(Exception):
    """The engine died here."""


class CrashingStore:
    """The store under test, dying at its `crash_at`-th call (counting from 1)."""

    def __init__(self, store: Store, crash_at: int | None = None) -> None:
        self.store, self.crash_at, self.calls = store, crash_at, 0

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.store, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.calls == self.crash_at:
                raise Crash(name)
            return target(*args, **kwargs)

        return counted


def engine_over(store: Any) -> tuple[Engine, Catalog, RecordingPublisher]:
    published = RecordingPublisher()
    clock = Clock()
    catalog = Catalog(store, published, CatalogConfig(public_url="http://gw/"), clock)
    return (
        wire_engine(
            catalog,
            store,
            published,
            ScriptedHttp(),
            StaticTokens(),
            EngineConfig(),
            clock,
            ExpressionWorkers(1, 1.0, 0),  # these flows have no guarded expression: never starts
        ),
        catalog,
        published,
    )


async def waiting_orders(
    store: Store, definition: dict[str, Any], count: int
) -> tuple[str, str, list[str]]:
    engine, catalog, _ = engine_over(store)
    deployed = await catalog.deploy(FlowDefinition.model_validate(definition))
    executions = []
    for i in range(count):
        execution_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{deployed.flowId}/{i}"))
        await engine.start(
            StartExecution(
                executionId=execution_id,
                flowId=deployed.flowId,
                input={"id": f"o{i % 2}"},
                requestedAt=1,
            )
        )
        executions.append(execution_id)
    return deployed.flowId, deployed.triggers[0].triggerId, executions


def activation(flow_id: str, trigger_id: str, execution: str | None) -> ActivateTrigger:
    return ActivateTrigger(
        activationId=f"act-{flow_id}",
        flowId=flow_id,
        triggerId=trigger_id,
        data={"id": "o0"},
        execution=execution or "all",
        receivedAt=1,
    )


SCENARIOS = [
    (KEYED_ORDER, None, ["e0", "e2"]),
    (KEYED_ORDER, "any", ["e0"]),
    (SCANNED_ORDER, None, ["e0", "e2"]),
    (SCANNED_ORDER, "any", ["e0"]),
    (KEYED_ORDER, "e2", ["e2"]),
]


async def test_a_crash_at_any_store_call_is_finished_by_the_redelivery_exactly_once(
    store: Store,
) -> None:
    for definition, selector, expected in SCENARIOS:
        crash_at = 1
        while True:
            flow_id, trigger_id, executions = await waiting_orders(store, definition, 4)
            named = {f"e{i}": e for i, e in enumerate(executions)}
            execution = named.get(selector or "", selector)
            crashing = CrashingStore(store, crash_at)
            engine, _, first = engine_over(crashing)
            command = activation(flow_id, trigger_id, execution)
            try:
                await engine.activate(command)
            except (Crash, ExecutionFault) as exc:  # a fault names the execution it met
                crashed = isinstance(exc, Crash) or isinstance(exc.__cause__, Crash)
                if not crashed:
                    raise
            else:
                crashed = False
            engine, _, again = engine_over(store)
            decided = await engine.activate(command)
            await engine.activate(command)  # and once more, after the outcome is stored
            want = sorted(named[e] for e in expected)
            assert (decided.outcome, sorted(decided.executionIds)) == (Outcome.ACTIVATED, want), (
                definition["name"],
                selector,
                crash_at,
            )
            resumed = [
                e.executionId
                for e in (*first.events, *again.events)
                if isinstance(e, ExecutionResumed)
            ]
            assert sorted(resumed) == want, (definition["name"], selector, crash_at)
            for execution_id in executions:
                state = await store.get_execution(execution_id)
                assert state is not None
                assert state.status == (
                    ExecutionStatus.COMPLETED if execution_id in want else ExecutionStatus.WAITING
                )
            if not crashed:
                break
            crash_at += 1
        assert crash_at > 3  # every scenario crossed several store calls


async def test_two_engines_racing_on_one_activation_resume_once(store: Store) -> None:
    for definition, selector, expected in SCENARIOS:
        flow_id, trigger_id, executions = await waiting_orders(store, definition, 4)
        named = {f"e{i}": e for i, e in enumerate(executions)}
        command = activation(flow_id, trigger_id, named.get(selector or "", selector))
        engines = [engine_over(store) for _ in range(2)]
        outcomes = await asyncio.gather(*(engine.activate(command) for engine, _, _ in engines))
        want = sorted(named[e] for e in expected)
        assert [sorted(o.executionIds) for o in outcomes] == [want, want]
        resumed = [
            e.executionId
            for _, _, published in engines
            for e in published.events
            if isinstance(e, ExecutionResumed)
        ]
        assert sorted(resumed) == want
