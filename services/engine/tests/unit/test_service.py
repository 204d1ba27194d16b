import asyncio
import uuid
from dataclasses import dataclass, replace
from typing import Any

import pytest

from engine.adapters import ExpressionWorkers
from engine.app import wire_engine
from engine.catalog import Catalog, CatalogConfig, NotSigned, UnknownFlow, UnknownTrigger
from engine.core.definition import DefinitionError
from engine.core.expressions import ExpressionError
from engine.usecases import Engine, EngineConfig
from schemas.events import (
    ActivateTrigger,
    ActivationOutcome,
    ExecutionCompleted,
    ExecutionFailed,
    ExecutionResumed,
    ExecutionStatus,
    FlowVersionRegistered,
    Outcome,
    StartExecution,
    TriggerRegistered,
)
from schemas.flows import FlowDefinition
from schemas.sealing import sealing_key, unseal
from schemas.signing import sign_user, sign_verification
from schemas.users import User

from ..fakes import Clock, InMemoryStore, RecordingPublisher, ScriptedHttp, StaticTokens
from ..flows import BUFFERED_FLOW, ENTRY_TRIGGER_FLOW, ORDER_FLOW, SIGNED_FLOW, TIMED_FLOW, compiled

GATEWAY = User(
    objectId="u1", ownerId="u1", email="gw@pay.example", created=1, roles=["PaymentGateway"]
)
PAID = {"orderId": "o-1", "amount": 10}
ACTIVATION_KEY = "unit-activation-key"
NOBODY = User(objectId="u2", ownerId="u2", email="x@y", created=1, roles=[])


@dataclass
class World:
    catalog: Catalog
    engine: Engine
    store: InMemoryStore
    published: RecordingPublisher
    http: ScriptedHttp
    tokens: StaticTokens
    workers: ExpressionWorkers
    clock: Clock

    async def deploy(self, definition: dict[str, Any]) -> tuple[str, dict[str, str]]:
        deployed = await self.catalog.deploy(FlowDefinition.model_validate(definition))
        return deployed.flowId, {t.name: t.triggerId for t in deployed.triggers}

    async def start(self, flow_id: str, input_: dict[str, Any]) -> str:
        execution_id = str(uuid.uuid4())
        await self.engine.start(
            StartExecution(executionId=execution_id, flowId=flow_id, input=input_, requestedAt=1)
        )
        return execution_id

    async def activate(
        self, flow_id: str, trigger_id: str, data: dict[str, Any] | None = None, **extra: Any
    ) -> Any:
        extra.setdefault("activationId", str(uuid.uuid4()))
        if isinstance(extra.get("user"), User) and "userSignature" not in extra:
            # as the gateway sends it: the user it resolved, signed
            extra["userSignature"] = sign_user(
                ACTIVATION_KEY, extra["activationId"], extra["user"].as_context()
            )
        extra.setdefault("receivedAt", 1)
        command = ActivateTrigger(flowId=flow_id, triggerId=trigger_id, data=data or {}, **extra)
        return await self.engine.activate(command)

    async def status(self, execution_id: str) -> ExecutionStatus:
        state = await self.store.get_execution(execution_id)
        assert state is not None
        return state.status


def new_world() -> World:
    """An engine over the in-memory store, its catalogue and fakes (close its workers)."""
    store, published, http = InMemoryStore(), RecordingPublisher(), ScriptedHttp()
    tokens = StaticTokens({"good-token": GATEWAY})
    clock = Clock()
    config = CatalogConfig(public_url="http://gw:8080/", sealing_key=sealing_key(ACTIVATION_KEY))
    catalog = Catalog(store, published, config, clock)
    workers = ExpressionWorkers(1, 0.5, 512 * 1024 * 1024)
    engine_config = EngineConfig(activation_key=ACTIVATION_KEY)
    engine = wire_engine(catalog, store, published, http, tokens, engine_config, clock, workers)
    return World(catalog, engine, store, published, http, tokens, workers, clock)


async def order(world: World, order_id: str = "o-1") -> tuple[str, str, str]:
    flow_id, triggers = await world.deploy(ORDER_FLOW)
    execution_id = await world.start(flow_id, {"order": {"id": order_id, "total": 10}})
    return flow_id, triggers["Payment Confirmed"], execution_id


async def test_deploy_names_every_trigger_and_publishes_the_registry(world: World) -> None:
    deployed = await world.catalog.deploy(FlowDefinition.model_validate(ORDER_FLOW))
    (trigger,) = deployed.triggers
    assert deployed.version == 1
    assert trigger.name == "Payment Confirmed"
    assert trigger.callbackUrl == (
        f"http://gw:8080/api/automation/flow/{deployed.flowId}/trigger/{trigger.triggerId}/activate"
    )
    flow_record, trigger_record = world.published.records
    assert isinstance(flow_record, FlowVersionRegistered)
    assert isinstance(trigger_record, TriggerRegistered)
    assert trigger_record.requiredRoles == ["PaymentGateway"]
    assert not trigger_record.entry
    again = await world.catalog.deploy(FlowDefinition.model_validate(ORDER_FLOW))
    assert again.version == 2
    assert again.flowId != deployed.flowId


async def test_an_invalid_definition_is_not_stored(world: World) -> None:
    with pytest.raises(DefinitionError):
        await world.deploy({"name": "bad", "blocks": [{"name": "a", "type": "end", "next": "z"}]})
    assert world.store.flow_records == {}


async def test_a_matching_callback_completes_the_order(world: World) -> None:
    flow_id, trigger_id, execution_id = await order(world)
    assert await world.status(execution_id) == ExecutionStatus.WAITING
    outcome = await world.activate(
        flow_id, trigger_id.upper(), {"orderId": "o-1", "amount": 10}, user=GATEWAY
    )
    assert outcome.outcome == Outcome.ACTIVATED
    assert outcome.executionIds == [execution_id]
    state = await world.store.get_execution(execution_id)
    assert state is not None
    assert state.status == ExecutionStatus.COMPLETED
    assert state.vars["paidBy"] == "gw@pay.example"
    assert state.vars["amount"] == 10
    assert not await world.store.anyone_waiting(trigger_id)
    assert world.published.decided == [outcome]


async def test_a_false_condition_leaves_the_execution_waiting(world: World) -> None:
    flow_id, trigger_id, execution_id = await order(world)
    outcome = await world.activate(flow_id, trigger_id, {"orderId": "other"}, user=GATEWAY)
    assert outcome.outcome == Outcome.FILTERED
    assert await world.status(execution_id) == ExecutionStatus.WAITING
    again = await world.activate(flow_id, trigger_id, {"orderId": "o-1"}, user=GATEWAY)
    assert again.outcome == Outcome.ACTIVATED


async def test_a_condition_error_is_false_and_lands_in_the_history(world: World) -> None:
    flow_id, triggers = await world.deploy(WAIT_FLOW)
    execution_id = await world.start(flow_id, {"min": 1})
    outcome = await world.activate(flow_id, triggers["cb"], {"wrong": 1})
    assert outcome.outcome == Outcome.FILTERED
    state = await world.store.get_execution(execution_id)
    assert state is not None
    assert state.history[-1]["event"] == "condition_error"
    assert "no such field 'n'" in state.history[-1]["detail"]
    assert (await world.activate(flow_id, triggers["cb"], {"n": 2})).outcome == Outcome.ACTIVATED


async def test_data_without_the_correlated_field_is_filtered_with_the_reason(
    world: World,
) -> None:
    flow_id, trigger_id, execution_id = await order(world)
    outcome = await world.activate(flow_id, trigger_id, {"wrong": 1}, user=GATEWAY)
    assert outcome.outcome == Outcome.FILTERED
    assert outcome.detail is not None
    assert "data.orderId" in outcome.detail
    assert await world.status(execution_id) == ExecutionStatus.WAITING
    assert (
        await world.activate(flow_id, trigger_id, {"orderId": "o-1"}, user=GATEWAY)
    ).outcome == Outcome.ACTIVATED


async def test_nobody_waiting_and_unknown_triggers_are_reported(world: World) -> None:
    flow_id, triggers = await world.deploy(ORDER_FLOW)
    pay = triggers["Payment Confirmed"]
    assert (await world.activate(flow_id, pay, user=GATEWAY)).outcome == Outcome.NO_WAITER
    assert (await world.activate(flow_id, str(uuid.uuid4()))).outcome == Outcome.UNKNOWN_TRIGGER
    assert (await world.activate(str(uuid.uuid4()), pay)).outcome == Outcome.UNKNOWN_TRIGGER


async def test_user_trigger_rechecks_roles_and_resolves_raw_tokens(world: World) -> None:
    flow_id, trigger_id, execution_id = await order(world)
    data = {"orderId": "o-1"}
    assert (await world.activate(flow_id, trigger_id, data)).outcome == Outcome.IGNORED_AUTH
    assert (
        await world.activate(flow_id, trigger_id, data, user=NOBODY)
    ).outcome == Outcome.IGNORED_AUTH
    assert (
        await world.activate(flow_id, trigger_id, data, userToken="bad-token")
    ).outcome == Outcome.IGNORED_AUTH
    assert await world.status(execution_id) == ExecutionStatus.WAITING
    outcome = await world.activate(flow_id, trigger_id, data, userToken="good-token")
    assert outcome.outcome == Outcome.ACTIVATED
    assert world.tokens.asked == ["bad-token", "good-token"]


WAIT_FLOW = {
    "name": "w",
    "blocks": [
        {"name": "s", "type": "start", "next": "cb"},
        {"name": "cb", "type": "external_callback", "condition": "data.n > input.min", "next": "d"},
        {"name": "d", "type": "assign", "assign": {"n": "data.n"}},
    ],
}


async def three_waiting(world: World) -> tuple[str, str, list[str]]:
    flow_id, triggers = await world.deploy(WAIT_FLOW)
    executions = [await world.start(flow_id, {"min": m}) for m in (5, 1, 3)]
    return flow_id, triggers["cb"], executions


async def test_all_resumes_every_execution_whose_condition_holds(world: World) -> None:
    flow_id, trigger_id, (e5, e1, e3) = await three_waiting(world)
    outcome = await world.activate(flow_id, trigger_id, {"n": 4}, execution="all")
    assert outcome.outcome == Outcome.ACTIVATED
    assert outcome.executionIds == [e1, e3]
    assert await world.status(e5) == ExecutionStatus.WAITING


async def test_any_resumes_only_the_oldest_whose_condition_holds(world: World) -> None:
    flow_id, trigger_id, (e5, e1, e3) = await three_waiting(world)
    outcome = await world.activate(flow_id, trigger_id, {"n": 4}, execution="any")
    assert outcome.executionIds == [e1]
    assert await world.status(e3) == ExecutionStatus.WAITING
    assert await world.status(e5) == ExecutionStatus.WAITING


async def test_an_execution_id_resumes_only_that_execution(world: World) -> None:
    flow_id, trigger_id, (e5, e1, e3) = await three_waiting(world)
    outcome = await world.activate(flow_id, trigger_id, {"n": 9}, execution=e3.upper())
    assert outcome.executionIds == [e3]
    assert await world.status(e1) == ExecutionStatus.WAITING
    filtered = await world.activate(flow_id, trigger_id, {"n": 2}, execution=e5)
    assert filtered.outcome == Outcome.FILTERED
    gone = await world.activate(flow_id, trigger_id, {"n": 9}, execution=str(uuid.uuid4()))
    assert gone.outcome == Outcome.NO_WAITER


def by_id(flow_id: str, trigger_id: str, execution: str, n: int) -> ActivateTrigger:
    return ActivateTrigger(
        activationId=str(uuid.uuid4()),
        flowId=flow_id,
        triggerId=trigger_id,
        execution=execution,
        data={"n": n},
        receivedAt=1,
    )


async def test_executions_read_ahead_for_a_batch_are_resumed_once_even_when_stale(
    world: World,
) -> None:
    flow_id, trigger_id, (e5, e1, e3) = await three_waiting(world)
    batch = [by_id(flow_id, trigger_id, e, 9) for e in (e3, e3.upper(), e1, e5)]
    read_ahead = await world.engine.read_ahead(batch)
    assert sorted(read_ahead) == sorted([e1, e3, e5])
    # e1 is resumed outside the batch after it was read ahead
    assert (await world.activate(flow_id, trigger_id, {"n": 9}, execution=e1)).executionIds
    decided = [(await world.engine.decide(c, None, None, read_ahead))[0] for c in batch]
    assert [d.outcome for d in decided] == [
        Outcome.ACTIVATED,  # e3, from what was read ahead
        Outcome.NO_WAITER,  # e3 again: read afresh, resumed already
        Outcome.NO_WAITER,  # e1: stale, refused by the compare-and-set, read afresh
        Outcome.ACTIVATED,
    ]
    resumed = [e.executionId for e in world.published.events if isinstance(e, ExecutionResumed)]
    assert sorted(resumed) == sorted([e1, e3, e5])


async def test_an_execution_that_begins_waiting_after_the_read_ahead_is_resumed(
    world: World,
) -> None:
    flow_id, triggers = await world.deploy(ENTRY_TRIGGER_FLOW)
    execution_id = str(uuid.uuid4())
    command = by_id(flow_id, triggers["Webhook"], execution_id, 1)
    read_ahead = await world.engine.read_ahead([command])
    assert read_ahead == {}
    await world.engine.start(
        StartExecution(executionId=execution_id, flowId=flow_id, input={}, requestedAt=1)
    )
    decision, _ = await world.engine.decide(command, None, None, read_ahead)
    assert decision.executionIds == [execution_id]


async def test_an_entry_trigger_starts_an_execution_per_activation(world: World) -> None:
    flow_id, triggers = await world.deploy(ENTRY_TRIGGER_FLOW)
    first = await world.activate(flow_id, triggers["Webhook"], {"event": "a"})
    second = await world.activate(flow_id, triggers["Webhook"], {"event": "b"})
    assert first.outcome == second.outcome == Outcome.ACTIVATED
    assert first.executionIds != second.executionIds
    state = await world.store.get_execution(second.executionIds[0])
    assert state is not None
    assert state.vars == {"seen": "b"}
    assert state.status == ExecutionStatus.COMPLETED


async def test_the_condition_of_an_entry_trigger_decides_whether_it_starts(world: World) -> None:
    guarded = {
        "name": "Guarded webhook",
        "blocks": [
            {"name": "Webhook", "type": "external_callback", "condition": "data.ok == true"},
        ],
    }
    flow_id, triggers = await world.deploy(guarded)
    refused = await world.activate(flow_id, triggers["Webhook"], {"ok": False})
    broken = await world.activate(flow_id, triggers["Webhook"], {"other": 1})
    taken = await world.activate(flow_id, triggers["Webhook"], {"ok": True})
    assert [o.outcome for o in (refused, broken, taken)] == [
        Outcome.FILTERED,
        Outcome.FILTERED,
        Outcome.ACTIVATED,
    ]
    assert refused.executionIds == broken.executionIds == []
    assert "ok" in (broken.detail or "")
    assert list(world.store.executions) == taken.executionIds


async def test_a_redelivered_activation_resumes_once(world: World) -> None:
    flow_id, trigger_id, _execution_id = await order(world)
    args = {"activationId": "act-1", "user": GATEWAY}
    first = await world.activate(flow_id, trigger_id, {"orderId": "o-1"}, **args)
    second = await world.activate(flow_id, trigger_id, {"orderId": "o-1"}, **args)
    assert first == second
    resumed = [e for e in world.published.events if isinstance(e, ExecutionResumed)]
    assert len(resumed) == 1


async def test_a_crash_before_the_outcome_is_finished_by_the_redelivery(world: World) -> None:
    flow_id, trigger_id, execution_id = await order(world)
    save_outcome = world.store.save_outcome

    async def crash(_: Any) -> None:
        raise ConnectionError("engine died")

    world.store.save_outcome = crash  # type: ignore[method-assign, assignment]
    with pytest.raises(ConnectionError):
        await world.activate(flow_id, trigger_id, PAID, activationId="act-1", user=GATEWAY)
    assert await world.status(execution_id) == ExecutionStatus.COMPLETED
    world.store.save_outcome = save_outcome  # type: ignore[method-assign]
    outcome = await world.activate(flow_id, trigger_id, PAID, activationId="act-1", user=GATEWAY)
    assert outcome.outcome == Outcome.ACTIVATED
    assert outcome.executionIds == [execution_id]
    completed = [e for e in world.published.events if isinstance(e, ExecutionCompleted)]
    assert len(completed) == 1


async def test_concurrent_activations_resume_an_execution_once(world: World) -> None:
    flow_id, trigger_id, _execution_id = await order(world)
    outcomes = await asyncio.gather(
        *[world.activate(flow_id, trigger_id, {"orderId": "o-1"}, user=GATEWAY) for _ in range(5)]
    )
    assert sorted(o.outcome for o in outcomes) == [Outcome.ACTIVATED] + [Outcome.NO_WAITER] * 4


async def test_an_idempotency_key_makes_the_second_call_a_duplicate(world: World) -> None:
    flow_id, triggers = await world.deploy(ENTRY_TRIGGER_FLOW)
    webhook = triggers["Webhook"]
    first = await world.activate(flow_id, webhook, idempotencyKey="k-1")
    second = await world.activate(flow_id, webhook, idempotencyKey="k-1")
    other = await world.activate(flow_id, webhook, idempotencyKey="k-2")
    assert [first.outcome, second.outcome, other.outcome] == [
        Outcome.ACTIVATED,
        Outcome.DUPLICATE,
        Outcome.ACTIVATED,
    ]
    assert len({e.executionId for e in world.published.events}) == 2


HTTP_FLOW = {
    "name": "h",
    "blocks": [
        {"name": "s", "type": "start", "next": "call"},
        {
            "name": "call",
            "type": "http_request",
            "method": "POST",
            "url": "input.url",
            "body": "{'id': execution.id}",
            "next": "keep",
        },
        {"name": "keep", "type": "assign", "assign": {"answer": "results.call.body.ok"}},
    ],
}


async def test_http_request_blocks_run_through_the_port(world: World) -> None:
    world.http.response = {"status": 200, "headers": {}, "body": {"ok": True}}
    flow_id, _ = await world.deploy(HTTP_FLOW)
    execution_id = await world.start(flow_id, {"url": "http://stub/notify"})
    (call,) = world.http.calls
    assert (call.method, call.url, call.body) == (
        "POST",
        "http://stub/notify",
        {"id": execution_id},
    )
    state = await world.store.get_execution(execution_id)
    assert state is not None
    assert state.vars == {"answer": True}


async def test_an_http_failure_fails_the_execution(world: World) -> None:
    world.http.error = "timed out after 10.0s"
    flow_id, _ = await world.deploy(HTTP_FLOW)
    execution_id = await world.start(flow_id, {"url": "http://stub/notify"})
    assert await world.status(execution_id) == ExecutionStatus.FAILED
    assert isinstance(world.published.events[-1], ExecutionFailed)


async def test_a_redelivered_start_does_not_start_twice(world: World) -> None:
    flow_id, triggers = await world.deploy(ORDER_FLOW)
    command = StartExecution(
        executionId=str(uuid.uuid4()),
        flowId=flow_id,
        input={"order": {"id": "o", "total": 1}},
        requestedAt=1,
    )
    await world.engine.start(command)
    await world.engine.start(command)
    assert len(world.store.executions) == 1
    assert len([s async for s in world.store.waiting(triggers["Payment Confirmed"])]) == 1


async def test_an_execution_resumed_by_another_activation_meanwhile_counts_for_nothing(
    world: World,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    flow_id, trigger_id, _execution_id = await order(world)
    save = world.store.save_execution

    async def overtaken(state: Any) -> bool:
        # another activation resumes the execution between this one's read and its write
        other = await world.store.get_execution(state.execution_id)
        assert other is not None
        await save(replace(other, status=ExecutionStatus.COMPLETED, version=other.version + 1))
        return await save(state)

    monkeypatch.setattr(world.store, "save_execution", overtaken)
    outcome = await world.activate(flow_id, trigger_id, PAID, user=GATEWAY)
    assert outcome.outcome == Outcome.NO_WAITER
    assert [e for e in world.published.events if isinstance(e, ExecutionResumed)] == []


async def test_an_execution_started_through_the_api_waits_at_its_entry_trigger(
    world: World,
) -> None:
    flow_id, triggers = await world.deploy(ENTRY_TRIGGER_FLOW)
    execution_id = await world.start(flow_id, {})
    assert await world.status(execution_id) == ExecutionStatus.WAITING
    outcome = await world.activate(
        flow_id, triggers["Webhook"], {"event": "e"}, execution=execution_id
    )
    assert outcome.executionIds == [execution_id]
    assert await world.status(execution_id) == ExecutionStatus.COMPLETED


HEAVY = "data.items.map(a, data.items.map(b, a + b)).size() > 0"  # a minute for 1,000 items


def guarded_flow(condition: str, assign: str = "size(data.items.filter(i, i > 1))") -> Any:
    return {
        "name": "Guarded",
        "blocks": [
            {"name": "s", "type": "start", "next": "cb"},
            {"name": "cb", "type": "external_callback", "condition": condition, "next": "count"},
            {
                "name": "count",
                "type": "assign",
                "assign": {"big": assign, "twice": "vars.big * 2"},
            },
        ],
    }


async def test_a_condition_over_its_time_budget_counts_as_false_with_a_history_entry(
    world: World,
) -> None:
    flow_id, triggers = await world.deploy(guarded_flow(HEAVY))
    execution_id = await world.start(flow_id, {})
    heavy = await world.activate(flow_id, triggers["cb"], {"items": list(range(1000))})
    assert heavy.outcome == Outcome.FILTERED
    state = await world.store.get_execution(execution_id)
    assert state is not None
    assert state.status == ExecutionStatus.WAITING
    assert "cut off after 500 ms" in state.history[-1]["detail"]
    assert world.workers.replaced == 1
    # the replacement evaluates the next one; the assign block's comprehension runs there too
    light = await world.activate(flow_id, triggers["cb"], {"items": [1, 2, 3]})
    assert light.outcome == Outcome.ACTIVATED
    done = await world.store.get_execution(execution_id)
    assert done is not None
    assert (done.status, done.vars) == (ExecutionStatus.COMPLETED, {"big": 2, "twice": 4})


async def test_a_block_expression_over_its_time_budget_fails_the_execution(world: World) -> None:
    flow_id, triggers = await world.deploy(guarded_flow("true", assign=HEAVY))
    execution_id = await world.start(flow_id, {})
    decided = await world.activate(flow_id, triggers["cb"], {"items": list(range(1000))})
    assert decided.outcome == Outcome.ACTIVATED
    state = await world.store.get_execution(execution_id)
    assert state is not None
    assert state.status == ExecutionStatus.FAILED
    assert "block 'count'" in (state.error or "")
    assert "time budget" in (state.error or "")


async def test_an_expression_over_its_memory_budget_is_cut_off_and_its_worker_replaced() -> None:
    workers = ExpressionWorkers(1, 30.0, 512 * 1024 * 1024)
    # 3,200 strings of a megabyte: far over the worker's 512 MiB, long before its time is up
    hungry = [("c", "data.items.map(a, data.s + data.s).size() > 0")]
    data = {"items": list(range(3200)), "s": "x" * 512 * 1024}
    try:
        with pytest.raises(ExpressionError, match="memory budget"):
            await workers(hungry, {"data": data}, assigns=False)
        assert workers.replaced == 1
        assert await workers([("c", "size(data.s)")], {"data": data}, assigns=False) == {
            "c": 512 * 1024
        }
    finally:
        await workers.close()


@pytest.mark.parametrize(
    ("expression", "says"),
    [
        ("x" * 2001, "2001 characters"),
        ("(" * 40 + "1" + ")" * 40, "nested 40 deep"),
        ("[1].map(a, [1].map(b, [1].map(c, c))) == []", "nested 3 deep"),
    ],
)
async def test_an_expression_over_the_cost_budget_is_refused_at_deploy(
    world: World, expression: str, says: str
) -> None:
    with pytest.raises(DefinitionError, match=says):
        await world.deploy(guarded_flow("true", assign=expression))


async def test_a_user_on_an_activation_counts_only_with_the_gateways_signature(
    world: World,
) -> None:
    flow_id, trigger_id, execution_id = await order(world)
    forged = await world.activate(flow_id, trigger_id, PAID, user=GATEWAY, userSignature="x")
    other_key = await world.activate(
        flow_id,
        trigger_id,
        PAID,
        activationId="a-other",
        user=GATEWAY,
        userSignature=sign_user("not the key", "a-other", GATEWAY.as_context()),
    )
    # a signature is for one activation and one user
    replayed = await world.activate(
        flow_id,
        trigger_id,
        PAID,
        activationId="a-replayed",
        user=GATEWAY,
        userSignature=sign_user(ACTIVATION_KEY, "a-original", GATEWAY.as_context()),
    )
    assert [o.outcome for o in (forged, other_key, replayed)] == [Outcome.IGNORED_AUTH] * 3
    assert await world.status(execution_id) == ExecutionStatus.WAITING
    # a raw token, resolved by the engine, is what a straight-to-Kafka publisher sends
    paid = await world.activate(flow_id, trigger_id, PAID, user=NOBODY, userToken="good-token")
    assert paid.outcome == Outcome.IGNORED_AUTH  # NOBODY is signed, but lacks the role
    paid = await world.activate(flow_id, trigger_id, PAID, userToken="good-token")
    assert paid.outcome == Outcome.ACTIVATED


async def test_a_delivery_that_lost_a_race_publishes_the_winners_outcome(world: World) -> None:
    flow_id, trigger_id, execution_id = await order(world)
    activation_id = str(uuid.uuid4())
    first = await world.activate(
        flow_id, trigger_id, PAID, activationId=activation_id, user=GATEWAY
    )
    assert (first.outcome, first.executionIds) == (Outcome.ACTIVATED, [execution_id])
    # a second delivery that read "not decided yet" before the first finished: it finds
    # nobody waiting any more, but what it records and answers is the first's outcome
    late = ActivateTrigger(
        activationId=activation_id,
        flowId=flow_id,
        triggerId=trigger_id,
        data=PAID,
        user=GATEWAY,
        userSignature=sign_user(ACTIVATION_KEY, activation_id, GATEWAY.as_context()),
        receivedAt=1,
    )
    stale, fresh = await world.engine.decide(late, found=None)
    assert (stale.outcome, fresh) == (Outcome.NO_WAITER, True)
    (answered,) = await world.engine.record([stale])
    assert answered == first
    assert world.published.decided[-1] == first
    assert await world.store.get_activation(activation_id) == first


async def test_a_due_timeout_fires_once_and_a_late_callback_finds_nobody(world: World) -> None:
    flow_id, triggers = await world.deploy(TIMED_FLOW)
    execution_id = await world.start(flow_id, {})
    assert await world.engine.fire_timers() == 0  # not due yet
    world.clock.now += 60_000
    assert await world.engine.fire_timers() == 1
    assert await world.engine.fire_timers() == 0
    state = await world.store.get_execution(execution_id)
    assert state is not None
    assert (state.status, state.vars) == (ExecutionStatus.COMPLETED, {"state": "reminded"})
    assert world.store.timers == {}
    late = await world.activate(flow_id, triggers["pay"], {}, execution=execution_id)
    assert late.outcome == Outcome.NO_WAITER


async def test_a_callback_before_the_deadline_wins_and_its_timer_does_nothing(
    world: World,
) -> None:
    flow_id, triggers = await world.deploy(TIMED_FLOW)
    execution_id = await world.start(flow_id, {})
    paid = await world.activate(flow_id, triggers["pay"], {}, execution=execution_id)
    assert paid.outcome == Outcome.ACTIVATED
    world.clock.now += 120_000
    assert await world.engine.fire_timers() == 0
    state = await world.store.get_execution(execution_id)
    assert state is not None
    assert state.vars == {"state": "paid"}
    assert world.store.timers == {}


async def test_a_timeout_and_a_callback_at_the_same_moment_resolve_the_wait_once(
    world: World,
) -> None:
    flow_id, triggers = await world.deploy(TIMED_FLOW)
    executions = [await world.start(flow_id, {}) for _ in range(20)]
    world.clock.now += 60_000
    outcomes = await asyncio.gather(
        world.engine.fire_timers(),
        *(world.activate(flow_id, triggers["pay"], {}, execution=e) for e in executions),
    )
    fired, decided = outcomes[0], outcomes[1:]
    activated = sum(1 for o in decided if o.outcome == Outcome.ACTIVATED)
    assert fired + activated == 20
    for execution_id in executions:
        state = await world.store.get_execution(execution_id)
        assert state is not None
        events = [e["event"] for e in state.history]
        assert events.count("resumed") + events.count("timedOut") == 1


async def settled(world: World, activation_id: str) -> Outcome:
    found = await world.store.get_activation(activation_id)
    assert isinstance(found, ActivationOutcome)
    return found.outcome


async def test_a_callback_before_its_waiter_is_buffered_and_resumes_it_when_it_waits(
    world: World,
) -> None:
    flow_id, triggers = await world.deploy(BUFFERED_FLOW)
    early = await world.activate(flow_id, triggers["pay"], {"orderId": "o-1", "amount": 30})
    assert early.outcome == Outcome.BUFFERED
    assert await settled(world, early.activationId) == Outcome.BUFFERED
    execution_id = await world.start(flow_id, {"orderId": "o-1", "total": 25})
    state = await world.store.get_execution(execution_id)
    assert state is not None
    assert (state.status, state.vars) == (ExecutionStatus.COMPLETED, {"amount": 30})
    assert early.activationId in state.applied
    final = world.published.decided[-1]
    assert (final.activationId, final.outcome, final.executionIds) == (
        early.activationId,
        Outcome.ACTIVATED,
        [execution_id],
    )
    assert await settled(world, early.activationId) == Outcome.ACTIVATED
    assert world.store.kept == {}  # consumed: a second order does not get it
    second = await world.start(flow_id, {"orderId": "o-1", "total": 25})
    assert await world.status(second) == ExecutionStatus.WAITING


async def test_buffered_callbacks_are_tried_in_arrival_order_with_the_full_condition(
    world: World,
) -> None:
    flow_id, triggers = await world.deploy(BUFFERED_FLOW)
    pay = triggers["pay"]
    too_little = await world.activate(flow_id, pay, {"orderId": "o-1", "amount": 5})
    other_order = await world.activate(flow_id, pay, {"orderId": "o-2", "amount": 50})
    first = await world.activate(flow_id, pay, {"orderId": "o-1", "amount": 40})
    second = await world.activate(flow_id, pay, {"orderId": "o-1", "amount": 45})
    no_key = await world.activate(flow_id, pay, {"amount": 45})
    assert no_key.outcome == Outcome.NO_WAITER  # not kept: it can match no order, ever
    execution_id = await world.start(flow_id, {"orderId": "o-1", "total": 25})
    state = await world.store.get_execution(execution_id)
    assert state is not None
    assert state.vars == {"amount": 40}
    assert await settled(world, first.activationId) == Outcome.ACTIVATED
    for kept in (too_little, other_order, second):
        assert await settled(world, kept.activationId) == Outcome.BUFFERED
    assert set(world.store.kept) == {
        too_little.activationId,
        other_order.activationId,
        second.activationId,
    }


async def test_a_buffered_callback_for_one_execution_waits_for_that_one(world: World) -> None:
    flow_id, triggers = await world.deploy(BUFFERED_FLOW)
    later = str(uuid.uuid4())
    early = await world.activate(
        flow_id, triggers["pay"], {"orderId": "o-1", "amount": 30}, execution=later
    )
    assert early.outcome == Outcome.BUFFERED
    other = await world.start(flow_id, {"orderId": "o-1", "total": 25})
    assert await world.status(other) == ExecutionStatus.WAITING
    await world.engine.start(
        StartExecution(
            executionId=later, flowId=flow_id, input={"orderId": "o-1", "total": 25}, requestedAt=1
        )
    )
    assert await world.status(later) == ExecutionStatus.COMPLETED
    assert await settled(world, early.activationId) == Outcome.ACTIVATED


async def test_an_unclaimed_buffered_callback_expires_and_leaves_the_store(world: World) -> None:
    flow_id, triggers = await world.deploy(BUFFERED_FLOW)
    early = await world.activate(flow_id, triggers["pay"], {"orderId": "o-1", "amount": 30})
    assert await world.engine.sweep_buffer() == 0  # not due yet
    world.clock.now += 60_000
    assert await world.engine.sweep_buffer() == 1
    assert await settled(world, early.activationId) == Outcome.EXPIRED
    assert world.published.decided[-1].outcome == Outcome.EXPIRED
    assert world.store.kept == {}
    execution_id = await world.start(flow_id, {"orderId": "o-1", "total": 25})
    assert await world.status(execution_id) == ExecutionStatus.WAITING
    again = await world.activate(
        flow_id, triggers["pay"], {"orderId": "o-1", "amount": 30}, activationId=early.activationId
    )
    assert again.outcome == Outcome.EXPIRED  # a redelivery answers what was decided


async def test_a_buffered_callback_is_consumed_once_when_two_executions_begin_waiting(
    world: World,
) -> None:
    flow_id, triggers = await world.deploy(BUFFERED_FLOW)
    early = await world.activate(flow_id, triggers["pay"], {"orderId": "o-1", "amount": 30})
    executions = await asyncio.gather(
        *(world.start(flow_id, {"orderId": "o-1", "total": 25}) for _ in range(10))
    )
    statuses = [await world.status(e) for e in executions]
    assert statuses.count(ExecutionStatus.COMPLETED) == 1
    assert statuses.count(ExecutionStatus.WAITING) == 9
    final = await world.store.get_activation(early.activationId)
    assert isinstance(final, ActivationOutcome)
    assert final.executionIds == [executions[statuses.index(ExecutionStatus.COMPLETED)]]


async def test_a_callback_and_a_waiter_arriving_together_meet_exactly_once(world: World) -> None:
    flow_id, triggers = await world.deploy(BUFFERED_FLOW)

    async def start_later(turns: int, input_: dict[str, Any]) -> str:
        for _ in range(turns):
            await asyncio.sleep(0)
        return await world.start(flow_id, input_)

    for n in range(30):  # the waiter begins n turns later: every interleaving of the two
        data = {"orderId": f"o-{n}", "amount": 30}
        decided, execution_id = await asyncio.gather(
            world.activate(flow_id, triggers["pay"], data),
            start_later(n, {"orderId": f"o-{n}", "total": 25}),
        )
        assert await world.status(execution_id) == ExecutionStatus.COMPLETED
        assert await settled(world, decided.activationId) == Outcome.ACTIVATED
    world.clock.now += 61_000  # taken by the callback's side: the sweep drops its entry
    await world.engine.sweep_buffer()
    assert world.store.kept == {}


async def test_a_callback_kept_just_after_its_waiter_looked_at_the_buffer_still_meets_it(
    world: World,
) -> None:
    flow_id, triggers = await world.deploy(BUFFERED_FLOW)
    keep, reached, go_on = world.store.buffer, asyncio.Event(), asyncio.Event()

    async def keep_later(entry: Any) -> Any:
        reached.set()
        await go_on.wait()
        return await keep(entry)

    world.store.buffer = keep_later  # type: ignore[method-assign]
    callback = asyncio.create_task(
        world.activate(flow_id, triggers["pay"], {"orderId": "o-1", "amount": 30})
    )
    await reached.wait()  # it found nobody waiting, and is about to keep the callback
    execution_id = await world.start(flow_id, {"orderId": "o-1", "total": 25})
    assert await world.status(execution_id) == ExecutionStatus.WAITING  # the buffer was empty
    go_on.set()
    decided = await callback
    assert (decided.outcome, decided.executionIds) == (Outcome.ACTIVATED, [execution_id])
    assert await world.status(execution_id) == ExecutionStatus.COMPLETED


async def test_a_claim_whose_claimer_stopped_is_finished_by_the_sweep(world: World) -> None:
    flow_id, triggers = await world.deploy(BUFFERED_FLOW)
    early = await world.activate(flow_id, triggers["pay"], {"orderId": "o-1", "amount": 30})
    blocked = world.store.buffered

    async def nothing(*_: Any) -> list[Any]:
        return []

    world.store.buffered = nothing  # type: ignore[method-assign, assignment]  # crashed before
    execution_id = await world.start(flow_id, {"orderId": "o-1", "total": 25})
    world.store.buffered = blocked  # type: ignore[method-assign]
    # it had claimed the entry, then stopped
    assert await world.store.claim_buffered(early.activationId, execution_id, world.clock(), 60_000)
    assert await world.engine.sweep_buffer() == 0  # the claim is not stale yet
    world.clock.now += 61_000
    assert await world.engine.sweep_buffer() == 1
    assert await world.status(execution_id) == ExecutionStatus.COMPLETED
    assert await settled(world, early.activationId) == Outcome.ACTIVATED
    assert world.store.kept == {}


async def test_deploy_issues_a_secret_per_signed_trigger_shown_once_and_announced_sealed(
    world: World,
) -> None:
    deployed = await world.catalog.deploy(FlowDefinition.model_validate(SIGNED_FLOW))
    (trigger,) = deployed.triggers
    assert trigger.signingSecret is not None
    assert trigger.signingSecret.startswith("whsec_")
    record = world.published.records[-1]
    assert isinstance(record, TriggerRegistered)
    assert (record.authenticationType, record.signatureScheme, record.toleranceSeconds) == (
        "SIGNATURE",
        "github",
        300,
    )
    (sealed,) = record.secrets
    assert trigger.signingSecret not in sealed.sealed
    key = sealing_key(ACTIVATION_KEY)
    assert unseal(key, sealed.sealed, trigger.triggerId) == trigger.signingSecret
    found = await world.catalog.flow(deployed.flowId)
    assert found is not None
    assert world.catalog.describe(*found).triggers[0].signingSecret is None  # never again
    (stored,) = (await world.store.secrets_of(deployed.flowId)).values()
    assert unseal(key, stored.secrets[0].sealed, trigger.triggerId) == trigger.signingSecret
    # a plain trigger gets none
    plain = await world.catalog.deploy(FlowDefinition.model_validate(ORDER_FLOW))
    assert plain.triggers[0].signingSecret is None


async def test_a_rotation_issues_a_new_secret_and_keeps_the_old_one_for_24_hours(
    world: World,
) -> None:
    deployed = await world.catalog.deploy(FlowDefinition.model_validate(SIGNED_FLOW))
    (trigger,) = deployed.triggers
    rotated = await world.catalog.rotate_secret(deployed.flowId, trigger.triggerId.upper())
    assert rotated.secret not in (trigger.signingSecret, None)
    assert rotated.previous_valid_until is not None
    assert rotated.previous_valid_until - world.clock.now == pytest.approx(24 * 3600 * 1000, abs=10)
    record = world.published.records[-1]
    assert isinstance(record, TriggerRegistered)
    key = sealing_key(ACTIVATION_KEY)
    opened = [(unseal(key, s.sealed, trigger.triggerId), s.validUntil) for s in record.secrets]
    assert opened == [
        (rotated.secret, None),
        (trigger.signingSecret, rotated.previous_valid_until),
    ]
    world.clock.now += 25 * 3600 * 1000  # the old one is past its grace at the next rotation
    again = await world.catalog.rotate_secret(deployed.flowId, trigger.triggerId)
    record = world.published.records[-1]
    assert isinstance(record, TriggerRegistered)
    assert [unseal(key, s.sealed, trigger.triggerId) for s in record.secrets] == [
        again.secret,
        rotated.secret,
    ]


async def test_only_signed_triggers_of_known_flows_rotate(world: World) -> None:
    signed = await world.catalog.deploy(FlowDefinition.model_validate(SIGNED_FLOW))
    plain = await world.catalog.deploy(FlowDefinition.model_validate(ORDER_FLOW))
    with pytest.raises(NotSigned):
        await world.catalog.rotate_secret(plain.flowId, plain.triggers[0].triggerId)
    with pytest.raises(UnknownTrigger):
        await world.catalog.rotate_secret(signed.flowId, plain.triggers[0].triggerId)
    with pytest.raises(UnknownFlow):
        await world.catalog.rotate_secret(str(uuid.uuid4()), signed.triggers[0].triggerId)


async def test_a_signed_trigger_is_activated_only_with_the_gateways_proof(world: World) -> None:
    flow_id, triggers = await world.deploy(SIGNED_FLOW)
    execution_id = await world.start(flow_id, {})
    approval = {"action": "approved", "sender": {"login": "octocat"}}
    unproven = await world.activate(flow_id, triggers["approved"], approval)
    assert unproven.outcome == Outcome.IGNORED_AUTH
    forged = await world.activate(
        flow_id, triggers["approved"], approval, signatureVerified="forged"
    )
    assert forged.outcome == Outcome.IGNORED_AUTH
    activation_id = str(uuid.uuid4())
    proven = await world.activate(
        flow_id,
        triggers["approved"],
        approval,
        activationId=activation_id,
        signatureVerified=sign_verification(ACTIVATION_KEY, activation_id),
    )
    assert proven.outcome == Outcome.ACTIVATED
    state = await world.store.get_execution(execution_id)
    assert state is not None
    assert state.vars == {"by": "octocat"}


async def test_a_signed_trigger_needs_an_engine_with_the_activation_key() -> None:
    store, published = InMemoryStore(), RecordingPublisher()
    keyless = Catalog(store, published, CatalogConfig(public_url="http://gw/"), Clock())
    with pytest.raises(DefinitionError, match="HOOKFLOW_ENGINE_ACTIVATION_KEY"):
        await keyless.deploy(FlowDefinition.model_validate(SIGNED_FLOW))
    assert store.flow_records == {}
    assert store.secrets == {}


def test_signature_settings_need_a_signature_trigger() -> None:
    definition = {
        "name": "x",
        "blocks": [{"name": "cb", "type": "external_callback", "signatureScheme": "stripe"}],
    }
    with pytest.raises(DefinitionError, match="need authenticationType SIGNATURE"):
        compiled(definition)
