import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import opaque

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)


@given(json_values)
def test_any_json_value_round_trips(value: object) -> None:
    assert opaque.decode(opaque.encode(value)) == value


def test_awkward_payload_keeps_its_exact_text() -> None:
    raw = '{"a.b":{"$set":[[1,[2]],[]]},"big":123456789012345678901234567890,"ü":"日本"}'
    assert opaque.encode(opaque.decode(raw)) == raw


@pytest.mark.parametrize("bad", [math.nan, math.inf, {"x": -math.inf}])
def test_non_json_numbers_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="JSON compliant"):
        opaque.encode(bad)
