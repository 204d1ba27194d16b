"""The activation log over the in-memory store: every outcome says why, the request is
kept for replay, and a replay is a new activation that resumes once however often sent."""

from typing import Any

import pytest

from engine.app import wire_engine
from engine.usecases import EngineConfig
from engine.usecases.replay import BodyNotKept, UnknownActivation
from schemas.activations import ActivationFilter, ReplayRequest
from schemas.events import ActivateTrigger, ActivationRefused, ActivationSource, Outcome

from ..flows import ORDER_FLOW
from .test_service import ACTIVATION_KEY, GATEWAY, NOBODY, World


async def _replayed(world: World, index: int = -1) -> Any:
    """Decide what the engine published as a replay (as the consumer would)."""
    command, _ = world.published.activations[index]
    return await world.engine.activate(command)


async def test_a_callback_nobody_waited_for_is_replayed_once_an_execution_waits(
    world: World,
) -> None:
    flow_id, triggers = await world.deploy(ORDER_FLOW)
    trigger = triggers["Payment Confirmed"]
    early = await world.activate(
        flow_id, trigger, {"orderId": "o-7", "amount": 2**70}, user=GATEWAY, idempotencyKey="k"
    )
    assert early.outcome == Outcome.NO_WAITER
    assert early.detail == "no execution of this flow version waits at this trigger"
    assert (early.userId, early.bodySize, early.source) == ("u1", 49, ActivationSource.KAFKA)

    execution_id = await world.start(flow_id, {"order": {"id": "o-7", "total": 10}})
    replayed = await world.engine.replay(early.activationId)
    again = await world.engine.replay(early.activationId)
    assert replayed == again  # one replay id however often asked
    (command, key), (twice, _) = world.published.activations
    assert isinstance(command, ActivateTrigger)
    assert (command.activationId, command.replayOf, key) == (
        replayed.activationId,
        early.activationId,
        trigger,
    )
    assert (command.source, command.idempotencyKey, command.data["amount"]) == (
        ActivationSource.REPLAY,
        None,  # not a DUPLICATE of its original
        2**70,
    )
    decided = await _replayed(world, 0)
    assert (decided.outcome, decided.executionIds) == (Outcome.ACTIVATED, [execution_id])
    assert decided.replayOf == early.activationId
    repeated = await world.engine.activate(twice)  # the second send: decided already
    assert repeated == decided
    assert (await world.status(execution_id)).value == "completed"


async def test_every_non_activation_says_why(world: World) -> None:
    flow_id, triggers = await world.deploy(ORDER_FLOW)
    trigger = triggers["Payment Confirmed"]
    execution_id = await world.start(flow_id, {"order": {"id": "o-1", "total": 10}})
    wrong = await world.activate(flow_id, trigger, {"orderId": "o-2"}, user=GATEWAY)
    assert wrong.outcome == Outcome.FILTERED
    assert wrong.detail == (
        'no execution waits for data.orderId = "o-2" '
        "(the condition `data.orderId == vars.order.id`)"
    )
    denied = await world.activate(flow_id, trigger, {"orderId": "o-1"}, user=NOBODY)
    assert denied.outcome == Outcome.IGNORED_AUTH
    assert denied.detail == "user u2 lacks the role(s) PaymentGateway the trigger requires"
    anonymous = await world.activate(flow_id, trigger, {"orderId": "o-1"})
    assert "has no valid user" in (anonymous.detail or "")
    stranger = "00000000-0000-4000-8000-000000000000"
    named = await world.activate(
        flow_id, trigger, {"orderId": "o-1"}, user=GATEWAY, execution=stranger
    )
    assert named.detail == f"execution {stranger} is not one of this flow version"
    done = await world.activate(flow_id, trigger, {"orderId": "o-1"}, user=GATEWAY)
    assert done.executionIds == [execution_id]
    late = await world.activate(
        flow_id, trigger, {"orderId": "o-1"}, user=GATEWAY, execution=execution_id
    )
    ended = (await world.status(execution_id)).value  # it went on past the trigger
    assert late.detail == f"execution {execution_id} is {ended}, not at this trigger"


async def test_replays_by_filter_skip_what_no_longer_keeps_its_body(world: World) -> None:
    flow_id, triggers = await world.deploy(ORDER_FLOW)
    trigger = triggers["Payment Confirmed"]
    missed = [
        await world.activate(flow_id, trigger, {"orderId": f"o-{n}"}, user=GATEWAY, receivedAt=n)
        for n in range(1, 5)
    ]
    assert {m.outcome for m in missed} == {Outcome.NO_WAITER}
    await world.store.purge_activations(now=10, body_ms=8, log_ms=100)  # n=1 loses its body
    answer = await world.engine.replay_matching(
        ReplayRequest(triggerId=trigger, outcome=[Outcome.NO_WAITER], limit=10)
    )
    assert [r.replayOf for r in answer.replayed] == [m.activationId for m in missed[:0:-1]]
    assert answer.skipped == [missed[0].activationId]
    with pytest.raises(BodyNotKept):
        await world.engine.replay(missed[0].activationId)
    with pytest.raises(UnknownActivation):
        await world.engine.replay("no-such-activation")
    page, _ = await world.store.list_activations(ActivationFilter(triggerId=trigger), None, 3)
    assert [o.activationId for o, _ in page] == [m.activationId for m in missed[:0:-1]]


async def test_no_body_is_kept_when_the_retention_is_zero(world: World) -> None:
    private = wire_engine(
        world.catalog,
        world.store,
        world.published,
        world.http,
        world.tokens,
        EngineConfig(activation_key=ACTIVATION_KEY, body_retention_ms=0),
        world.clock,
        world.workers,
    )
    flow_id, triggers = await world.deploy(ORDER_FLOW)
    decided = await private.activate(
        ActivateTrigger(
            activationId="a-private",
            flowId=flow_id,
            triggerId=triggers["Payment Confirmed"],
            data={"card": "4111"},
            receivedAt=5,
        )
    )
    assert decided.bodySize == 15
    assert await world.store.activation_record("a-private") == (decided, None)
    with pytest.raises(BodyNotKept):
        await private.replay("a-private")


async def test_a_refusal_report_is_logged_once_and_cannot_be_replayed(world: World) -> None:
    flow_id, triggers = await world.deploy(ORDER_FLOW)
    trigger = triggers["Payment Confirmed"]
    refused = ActivationRefused(
        activationId="a-refused",
        flowId=flow_id,
        triggerId=trigger,
        outcome=Outcome.REFUSED,
        reason="the body is not JSON",
        status=400,
        code=2000,
        receivedAt=7,
        bodySize=5,
    )
    await world.engine.log_refused(refused)
    await world.engine.log_refused(refused)  # delivered again
    page, _ = await world.store.list_activations(ActivationFilter(flowId=flow_id), None, 10)
    assert [(o.activationId, o.outcome, o.detail, o.bodySize) for o, _ in page] == [
        ("a-refused", Outcome.REFUSED, "answered 400, code 2000: the body is not JSON", 5)
    ]
    assert world.published.decided == []  # the log only: the caller had its answer
    with pytest.raises(BodyNotKept):
        await world.engine.replay("a-refused")
