from typing import Any

from engine.core import execution as ex
from engine.core.matching import (
    activation_bindings,
    authorized,
    condition_holds,
    outcome,
)
from schemas.events import Outcome
from schemas.flows import ExternalCallbackBlock
from schemas.users import User

from ..flows import ORDER_FLOW, compiled

FLOW = compiled(ORDER_FLOW)
_BLOCK = FLOW.blocks["Payment Confirmed"]
assert isinstance(_BLOCK, ExternalCallbackBlock)
BLOCK: ExternalCallbackBlock = _BLOCK
assert isinstance(BLOCK, ExternalCallbackBlock)


def snapshot(order_id: Any) -> dict[str, Any]:
    state = ex.start(
        FLOW, ex.new_execution(FLOW, "e1", {"order": {"id": order_id, "total": 1}}, 1), 1
    ).state
    return ex.context(FLOW, state)


def user(roles: list[str], status: str = "ENABLED") -> User:
    return User(objectId="u", ownerId="u", email="u@x", created=1, roles=roles, userStatus=status)


def test_condition_true_and_false() -> None:
    assert condition_holds(
        FLOW, BLOCK, snapshot("o1"), activation_bindings({"orderId": "o1"}, None)
    ).holds
    assert not condition_holds(
        FLOW, BLOCK, snapshot("o1"), activation_bindings({"orderId": "o2"}, None)
    ).holds


def test_condition_runtime_error_is_false_and_reported() -> None:
    result = condition_holds(
        FLOW, BLOCK, snapshot("o1"), activation_bindings({"somethingElse": 1}, None)
    )
    assert not result.holds
    assert result.error == "`data.orderId == vars.order.id`: no such field 'orderId'"


def test_condition_with_a_non_boolean_result_is_false() -> None:
    flow = compiled(
        {
            "name": "f",
            "blocks": [{"name": "cb", "type": "external_callback", "condition": "data.n"}],
        }
    )
    block = flow.blocks["cb"]
    assert isinstance(block, ExternalCallbackBlock)
    result = condition_holds(flow, block, {}, activation_bindings({"n": 1}, None))
    assert (result.holds, result.error) == (False, "condition gave int 1, not a boolean")


def test_no_condition_always_holds() -> None:
    block = ExternalCallbackBlock(name="cb", type="external_callback")
    assert condition_holds(FLOW, block, {}, activation_bindings({}, None)).holds


def test_auth_recheck_requires_every_role_of_an_enabled_user() -> None:
    assert authorized(BLOCK, user(["PaymentGateway", "Other"]))
    assert not authorized(BLOCK, user(["Other"]))
    assert not authorized(BLOCK, None)
    assert not authorized(BLOCK, user(["PaymentGateway"], status="DISABLED"))
    open_block = ExternalCallbackBlock(name="cb", type="external_callback")
    assert authorized(open_block, None)


def test_outcome_names_what_happened() -> None:
    assert outcome(filtered=0, activated=0) == Outcome.NO_WAITER
    assert outcome(filtered=3, activated=0) == Outcome.FILTERED
    assert outcome(filtered=3, activated=1) == Outcome.ACTIVATED


def test_one_activation_binds_its_data_once_for_every_waiting_execution() -> None:
    paid = activation_bindings({"orderId": "o2"}, None)
    results = [condition_holds(FLOW, BLOCK, snapshot(o), paid).holds for o in ("o1", "o2", "o3")]
    assert results == [False, True, False]
    # an execution's own earlier `data` never shadows the activation's
    earlier = {**snapshot("o2"), "data": {"orderId": "o1"}}
    assert condition_holds(FLOW, BLOCK, earlier, paid).holds
