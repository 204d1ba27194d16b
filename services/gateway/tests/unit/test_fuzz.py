"""Random bodies, headers and paths never produce a 5xx, nor a 2xx without an event."""

import json
import string
from collections.abc import AsyncIterator
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..harness import FLOW, OPEN, PAY, QUIET, Harness, gateway


@pytest.fixture
async def gw() -> AsyncIterator[Harness]:
    async with gateway() as harness:  # one gateway for every example: state must not leak
        yield harness


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)
bodies = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
    st.just(b""),
)
ids = st.sampled_from([FLOW, OPEN, PAY, QUIET, "x", "..", "%2F", "0" * 40]) | st.text(
    alphabet=string.ascii_letters + string.digits + "-_.~", min_size=1, max_size=40
)
header_values = st.text(alphabet=string.printable.strip() + " ", max_size=40)
headers = st.fixed_dictionaries(
    {},
    optional={
        "content-type": st.sampled_from(
            [
                "application/json",
                "text/plain",
                "",
                "application/x+json",
                "application/json; charset=latin-1",
            ]
        )
        | header_values,
        "user-token": st.sampled_from(["payer-token", "clerk-token"]) | header_values,
        "idempotency-key": header_values,
    },
)
queries = st.sampled_from(
    [
        "",
        "?execution=any",
        "?execution=all",
        "?execution=",
        "?execution=%00",
        "?execution=" + "a" * 100,
    ]
) | st.text(max_size=20).map(lambda q: "?execution=" + quote(q, safe=""))


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(flow=ids, trigger=ids, query=queries, body=bodies, extra=headers)
async def test_no_input_breaks_the_gateway(
    gw: Harness, flow: str, trigger: str, query: str, body: bytes, extra: dict[str, str]
) -> None:
    for path in (
        f"/api/automation/flow/{flow}/trigger/{trigger}/activate{query}",
        f"/api/automation/flow/{flow}/execute",
    ):
        before = len(gw.activations) + len(gw.starts)
        response = await gw.http.post(path, content=body, headers=extra)
        published = len(gw.activations) + len(gw.starts) - before
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            assert set(response.json()) == {"code", "message"}
            assert published == 0
        ignored = trigger in (QUIET,) and response.status_code == 200
        if 200 <= response.status_code < 300 and not ignored:
            assert published == 1
