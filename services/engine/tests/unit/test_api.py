"""The management API over the in-memory store and FastStream's test broker."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker

from engine.app import create_app
from engine.settings import Settings
from schemas.topics import Topics

from ..fakes import InMemoryStore
from ..flows import ORDER_FLOW

KEY = "unit-admin-key"
ADMIN = {"X-Admin-Key": KEY}

SETTINGS = Settings(topic_prefix="unit", public_url="https://hooks.example", admin_key=KEY)


@pytest.fixture
async def client() -> AsyncIterator[tuple[httpx.AsyncClient, list[Any]]]:
    broker = KafkaBroker()
    starts: list[Any] = []

    @broker.subscriber(Topics("unit").execution_starts)
    async def capture(body: dict[str, Any]) -> None:
        starts.append(body)

    app = create_app(SETTINGS, store=InMemoryStore(), broker=broker, configure_logging=False)
    async with TestKafkaBroker(broker), app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://engine", headers=ADMIN
        ) as http:
            yield http, starts


async def test_deploy_answers_the_version_and_callback_urls(client: Any) -> None:
    http, _ = client
    response = await http.post("/api/automation/flows", json=ORDER_FLOW)
    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "Order fulfilment"
    assert body["version"] == 1
    (trigger,) = body["triggers"]
    assert trigger["callbackUrl"] == (
        f"https://hooks.example/api/automation/flow/"
        f"{body['flowId']}/trigger/{trigger['triggerId']}/activate"
    )
    shown = (await http.get(f"/api/automation/flows/{body['flowId'].upper()}")).json()
    assert shown["live"] is True
    assert shown["definition"]["blocks"][2]["condition"] == "data.orderId == vars.order.id"


async def test_an_invalid_definition_lists_every_problem(client: Any) -> None:
    http, _ = client
    response = await http.post(
        "/api/automation/flows",
        json={
            "name": "x",
            "blocks": [
                {"name": "a", "type": "start", "next": "ghost"},
                {"name": "b", "type": "assign", "assign": {"v": "1 +"}},
            ],
        },
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 2003
    assert "unknown block 'ghost'" in body["message"]
    assert "block 'b', assign.v: syntax error" in body["message"]
    wrong_shape = await http.post(
        "/api/automation/flows", json={"name": "x", "blocks": [{"name": "a", "type": "warp"}]}
    )
    assert wrong_shape.status_code == 400
    assert wrong_shape.json()["code"] == 2003


async def test_execute_publishes_a_start_request(client: Any) -> None:
    http, starts = client
    flow_id = (await http.post("/api/automation/flows", json=ORDER_FLOW)).json()["flowId"]
    response = await http.post(f"/api/automation/flow/{flow_id}/execute", json={"order": {}})
    assert response.status_code == 202
    assert starts[0]["executionId"] == response.json()["executionId"]
    assert starts[0]["input"] == {"order": {}}
    missing = await http.post("/api/automation/flow/no-such-flow/execute", json={})
    assert (missing.status_code, missing.json()["code"]) == (404, 4041)


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/api/automation/flows/nope", 4041),
        ("/api/automation/executions/nope", 4043),
        ("/api/automation/activations/nope", 4044),
    ],
)
async def test_unknown_things_are_404_with_their_code(client: Any, path: str, code: int) -> None:
    http, _ = client
    response = await http.get(path)
    assert (response.status_code, response.json()["code"]) == (404, code)


async def test_bad_bodies_are_answered_in_the_contract_format(client: Any) -> None:
    http, _ = client
    cases = [
        (b"{oops", "application/json", 400, 2000),
        (b"[1]", "application/json", 400, 2001),
        (b"{}", "text/plain", 415, 4150),
        (b"{" + b" " * (1024 * 1024) + b"}", "application/json", 413, 4130),
    ]
    for content, content_type, status, code in cases:
        response = await http.post(
            "/api/automation/flows", content=content, headers={"content-type": content_type}
        )
        assert (response.status_code, response.json()["code"]) == (status, code)


async def test_execution_listing_validates_its_parameters(client: Any) -> None:
    http, _ = client
    for query in ("status=sleeping", "limit=0", "limit=many", "cursor=garbage"):
        response = await http.get(f"/api/automation/flow/f/executions?{query}")
        assert (response.status_code, response.json()["code"]) == (400, 2002), query
    empty = await http.get("/api/automation/flow/f/executions?status=WAITING")
    assert empty.json() == {"executions": [], "next": None}


async def test_health_and_readiness(client: Any) -> None:
    http, _ = client
    assert (await http.get("/healthz")).status_code == 200
    assert (await http.get("/readyz")).json() == {"status": "ready"}


async def test_an_unexpected_failure_is_a_500_without_internals() -> None:
    store = InMemoryStore()

    async def broken(execution_id: str) -> None:
        raise RuntimeError("database password is hunter2")

    store.get_execution = broken  # type: ignore[method-assign]
    app = create_app(SETTINGS, store=store, broker=KafkaBroker(), configure_logging=False)
    async with TestKafkaBroker(app.state.broker), app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://engine", headers=ADMIN
        ) as http:
            response = await http.get("/api/automation/executions/e1")
    assert response.status_code == 500
    assert response.json() == {"code": 5000, "message": "internal error; it has been logged"}


async def test_backendless_is_deployed_as_user(client: Any) -> None:
    http, _ = client
    definition = {
        "name": "From the product document",
        "blocks": [
            {"name": "s", "type": "start", "next": "cb"},
            {"name": "cb", "type": "external_callback", "authenticationType": "BACKENDLESS"},
        ],
    }
    deployed = await http.post("/api/automation/flows", json=definition)
    assert deployed.status_code == 201
    flow = (await http.get(f"/api/automation/flows/{deployed.json()['flowId']}")).json()
    assert flow["definition"]["blocks"][1]["authenticationType"] == "USER"


async def test_flows_are_listed_oldest_first_a_page_at_a_time(client: Any) -> None:
    http, _ = client
    deployed = [
        (await http.post("/api/automation/flows", json=ORDER_FLOW)).json() for _ in range(3)
    ]
    first = (await http.get("/api/automation/flows", params={"limit": 2})).json()
    assert [f["flowId"] for f in first["flows"]] == [d["flowId"] for d in deployed[:2]]
    assert [f["live"] for f in first["flows"]] == [False, False]
    assert first["flows"][0]["triggers"][0]["name"] == "Payment Confirmed"
    rest = (await http.get("/api/automation/flows", params={"cursor": first["next"]})).json()
    assert [f["flowId"] for f in rest["flows"]] == [deployed[2]["flowId"]]
    assert rest["flows"][0]["live"] is True
    assert rest["next"] is None
    bad = await http.get("/api/automation/flows", params={"cursor": "nonsense"})
    assert (bad.status_code, bad.json()["code"]) == (400, 2002)


async def test_an_expression_is_evaluated_or_its_error_placed(client: Any) -> None:
    http, _ = client
    url = "/api/automation/expressions/evaluate"
    context = {"data": {"items": [1, 2, 3]}, "vars": {"limit": 2}}
    value = await http.post(
        url, json={"expression": "data.items.filter(i, i > vars.limit)", "context": context}
    )
    assert value.json() == {"value": [3]}
    syntax = await http.post(url, json={"expression": "data.items +", "context": context})
    assert syntax.status_code == 400
    assert syntax.json()["code"] == 2005
    assert syntax.json()["position"] == {"line": 1, "column": 13}
    failing = await http.post(url, json={"expression": "data.items + 1", "context": context})
    assert (failing.status_code, failing.json()["position"]) == (400, None)
    too_costly = "[1].map(a, [1].map(b, [1].map(c, c)))"
    assert (await http.post(url, json={"expression": too_costly})).json()["code"] == 2005
    missing = await http.post(url, json={"context": {}})
    assert (missing.status_code, missing.json()["code"]) == (400, 2004)


async def test_a_start_can_be_answered_once_its_execution_exists(client: Any) -> None:
    http, _ = client
    flow = (await http.post("/api/automation/flows", json=ORDER_FLOW)).json()
    url = f"/api/automation/flow/{flow['flowId']}/execute"
    started = await http.post(url, params={"wait": 5}, json={"order": {"id": "o", "total": 1}})
    assert started.status_code == 202
    shown = await http.get(f"/api/automation/executions/{started.json()['executionId']}")
    assert shown.status_code == 200, shown.text
    assert shown.json()["status"] == "waiting"
    too_long = await http.post(url, params={"wait": 11}, json={})
    assert (too_long.status_code, too_long.json()["code"]) == (400, 2002)


async def test_a_time_outside_the_logs_range_is_a_400_in_the_contract_format(
    client: Any,
) -> None:
    """Times are epoch milliseconds from 1970 to what 64 bits hold: beyond them the
    store could not even ask (the server takes 8-byte integers)."""
    http, _ = client
    beyond = str(2**63)
    for path in ("/api/automation/activations", "/api/automation/activations/summary"):
        for query in (
            f"since={beyond}",
            f"until={beyond}",
            "since=1900-01-01T00:00:00Z",
            "since=" + "9" * 5000,  # past what Python converts from text
            "until=%C2%B2",  # a digit, not an ASCII one
        ):
            response = await http.get(f"{path}?{query}")
            assert (response.status_code, response.json()["code"]) == (400, 2002), (path, query)
    for body in ({"flowId": "f", "since": 2**63}, {"flowId": "f", "until": 2**64}):
        response = await http.post("/api/automation/activations/replay", json=body)
        assert (response.status_code, response.json()["code"]) == (400, 2004), body
    fine = await http.get(f"/api/automation/activations?until={2**63 - 1}")
    assert fine.status_code == 200
