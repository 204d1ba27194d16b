"""Which conditions correlate by key, and which keys two equal values share."""

from typing import Any

import pytest

from engine.core.correlation import MISSING, key_of, recognise


@pytest.mark.parametrize(
    ("condition", "path", "value_source"),
    [
        ("data.orderId == vars.order.id", ("orderId",), "vars.order.id"),
        ("vars.order.id == data.orderId", ("orderId",), "vars.order.id"),
        ("data.a.b == input.x + 1", ("a", "b"), "input.x + 1"),
        ("data.kind == 'paid' && data.orderId == vars.id", ("kind",), "'paid'"),
        ("data.amount > 5 && data.orderId == vars.id", ("orderId",), "vars.id"),
        ("size(data.items) > 0 && vars.id == data.ref && true", ("ref",), "vars.id"),
        (
            "data.ref == results['Order Placed'].data.ref",
            ("ref",),
            "results['Order Placed'].data.ref",
        ),
    ],
)
def test_a_keyed_condition_is_recognised(
    condition: str, path: tuple[str, ...], value_source: str
) -> None:
    found = recognise(condition)
    assert found is not None
    assert found.data_path == path
    assert found.value.source == value_source


@pytest.mark.parametrize(
    "condition",
    [
        "data.orderId == vars.id || data.force",  # a disjunction holds without the key
        "data.ok ? data.id == vars.id : true",
        "(data.a == vars.a || data.b) && data.c > 1",
        "data.id != vars.id",
        "data.id == data.other",  # both sides depend on the activation
        "data.id == user.email",
        "data.id == vars.id == true",
        "data.id in vars.ids",
        "data.ids.exists(i, i == vars.id)",
        "vars.list.map(x, x == 1)[0] == data.a",
        "data.id + 'x' == vars.id",
        "data['id'] == vars.id",
        "!(data.id == vars.id)",
    ],
)
def test_other_conditions_scan(condition: str) -> None:
    assert recognise(condition) is None


def test_an_and_inside_a_string_is_no_conjunction() -> None:
    found = recognise("data.s == 'a && b'")
    assert found is not None
    assert found.value.source == "'a && b'"


def test_values_that_cel_finds_equal_share_a_key() -> None:
    assert key_of("t", 1) == key_of("t", 1.0)
    assert key_of("t", {"a": 1, "b": [1, "x"]}) == key_of("t", {"b": [1.0, "x"], "a": 1})
    assert key_of("t", "1") != key_of("t", 1)
    assert key_of("t", True) != key_of("t", 1)
    assert key_of("t", None) != key_of("t", "null")
    assert key_of("t", 1) != key_of("u", 1)
    assert len(key_of("t", "x" * 10_000)) < 100


def test_the_wait_key_and_the_lookup_key_meet() -> None:
    found = recognise("data.order.id == vars.order.id")
    assert found is not None
    context: dict[str, Any] = {"vars": {"order": {"id": 7}}, "input": {}}
    assert found.wait_key("t", context) == found.lookup_key("t", {"order": {"id": 7.0}})
    assert found.lookup_key("t", {"order": {}}) is MISSING
    assert found.lookup_key("t", {"order": "7"}) is MISSING
    assert found.wait_key("t", {"vars": {}}) is None  # the term errors: nothing can match
