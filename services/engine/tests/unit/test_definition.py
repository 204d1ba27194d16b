from typing import Any

import pytest
from pydantic import ValidationError

from engine.core.definition import DefinitionError

from ..flows import ENTRY_TRIGGER_FLOW, ORDER_FLOW, compiled, trigger_id_for


def problems_of(definition: dict[str, Any]) -> list[str]:
    with pytest.raises(DefinitionError) as info:
        compiled(definition)
    return info.value.problems


def blocks(*items: dict[str, Any]) -> dict[str, Any]:
    return {"name": "f", "blocks": list(items)}


def test_the_contract_example_compiles_with_a_trigger_id_per_callback() -> None:
    flow = compiled(ORDER_FLOW)
    assert flow.entry == "Order Received"
    assert flow.trigger_ids == {"Payment Confirmed": trigger_id_for("Payment Confirmed")}
    assert not flow.entry_is_trigger


def test_a_callback_without_predecessor_is_the_entry_block() -> None:
    flow = compiled(ENTRY_TRIGGER_FLOW)
    assert flow.entry == "Webhook"
    assert flow.entry_is_trigger


def test_duplicate_block_names_are_rejected() -> None:
    found = problems_of(
        blocks(
            {"name": "a", "type": "start", "next": "b"},
            {"name": "b", "type": "end"},
            {"name": "b", "type": "end"},
        )
    )
    assert "block name 'b' is used more than once" in found


def test_every_problem_is_listed_at_once() -> None:
    found = problems_of(
        blocks(
            {"name": "a", "type": "start", "next": "nowhere"},
            {"name": "b", "type": "branch", "if": "vars.x >", "then": "ghost"},
            {"name": "c", "type": "assign", "assign": {"x": "1 +* 2"}},
        )
    )
    assert "block 'a' continues with unknown block 'nowhere'" in found
    assert "block 'b' continues with unknown block 'ghost'" in found
    assert any(p.startswith("block 'b', if: syntax error at line 1, column") for p in found)
    assert any(p.startswith("block 'c', assign.x: syntax error") for p in found)
    assert "block 'b' is unreachable from the entry block 'a'" in found
    assert "block 'c' is unreachable from the entry block 'a'" in found


def test_two_roots_without_start_block_are_rejected() -> None:
    found = problems_of(blocks({"name": "a", "type": "end"}, {"name": "b", "type": "end"}))
    assert found == ["a flow needs exactly one entry block (no predecessor), found 2: ['a', 'b']"]


def test_a_cycle_without_entry_is_rejected() -> None:
    found = problems_of(
        blocks(
            {"name": "a", "type": "assign", "next": "b"},
            {"name": "b", "type": "assign", "next": "a"},
        )
    )
    assert found == [
        "a flow needs exactly one entry block (no predecessor), every block has a predecessor"
    ]


def test_start_block_must_not_be_a_target() -> None:
    found = problems_of(
        blocks(
            {"name": "s", "type": "start", "next": "a"},
            {"name": "a", "type": "assign", "next": "s"},
        )
    )
    assert found == ["start block 's' cannot be the target of another block"]


def test_two_start_blocks_are_rejected() -> None:
    found = problems_of(blocks({"name": "s", "type": "start"}, {"name": "t", "type": "start"}))
    assert found == ["a flow has one start block, found 2: ['s', 't']"]


def test_roles_without_user_authentication_are_rejected() -> None:
    found = problems_of(
        blocks({"name": "cb", "type": "external_callback", "requiredRoles": ["Admin"]})
    )
    assert found == ["block 'cb': requiredRoles needs authenticationType USER"]


def test_branch_with_next_is_rejected() -> None:
    found = problems_of(
        blocks(
            {"name": "s", "type": "start", "next": "b"},
            {"name": "b", "type": "branch", "if": "true", "then": "e", "next": "e"},
            {"name": "e", "type": "end"},
        )
    )
    assert found == ["block 'b': a branch continues with then/else, not next"]


@pytest.mark.parametrize(
    "block",
    [
        {"name": "x", "type": "teleport"},
        {"name": "x", "type": "assign", "assing": {}},
        {"name": "", "type": "end"},
        {"name": "x", "type": "external_callback", "onFailPolicy": "PANIC"},
    ],
)
def test_malformed_blocks_fail_model_validation(block: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        compiled(blocks(block))
