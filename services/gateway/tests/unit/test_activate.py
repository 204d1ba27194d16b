"""Every rule of the contract's callback section, over HTTP with the test broker."""

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from gateway.tokens import token_hash
from schemas.events import ActivateTrigger, RolesChanged, TokenRevoked, UserDisabled
from schemas.signing import user_is_signed

from ..harness import ACTIVATION_KEY, FLOW, OPEN, PAY, QUIET, TOPICS, Harness, gateway

AUTH_BODY = {
    "code": 1000,
    "message": "Unable to execute the callback. User is missing required security role(s)",
}


@pytest.fixture
async def gw() -> AsyncIterator[Harness]:
    async with gateway() as harness:
        yield harness


async def test_success_is_200_with_an_empty_body_after_the_event(gw: Harness) -> None:
    response = await gw.http.post(gw.url(OPEN), json={"orderId": "o-1", "items": [[1, 2]]})
    assert response.status_code == 200
    assert response.content == b""
    (event,) = gw.activations
    assert event["activationId"] == response.headers["x-activation-id"]
    assert event["data"] == {"orderId": "o-1", "items": [[1, 2]]}
    assert (event["flowId"], event["triggerId"]) == (FLOW, OPEN)
    assert event["execution"] == "all"
    assert event["user"] is None
    assert event["source"] == "http"
    assert gw.keys == [OPEN.encode()]


@pytest.mark.parametrize("token", [None, "payer-token"])
@pytest.mark.parametrize("n", [2**80, -(2**63), 2**64 - 1, 1e16, 1e-7])
async def test_the_message_is_exactly_what_the_activate_trigger_model_writes(
    gw: Harness, token: str | None, n: float
) -> None:
    headers = {"user-token": token, "Idempotency-Key": 'k-1 "quoted"'} if token else {}
    body = {
        "orderId": "ö-1\u2028\x01",
        "n": n,
        "f": 1.5,
        "list": [None, True, {"x": "<&>"}],
    }
    response = await gw.http.post(gw.url(PAY if token else OPEN), json=body, headers=headers)
    assert response.status_code == 200
    (raw,) = gw.raw
    assert ActivateTrigger.model_validate_json(raw).model_dump_json().encode() == raw
    assert json.loads(raw)["data"] == body


async def test_ids_match_case_insensitively_and_an_empty_body_is_an_empty_object(
    gw: Harness,
) -> None:
    response = await gw.http.post(gw.url(OPEN.upper(), FLOW.upper()), content=b"")
    assert response.status_code == 200
    assert gw.activations[0]["data"] == {}


@pytest.mark.parametrize(
    ("flow", "trigger", "code"),
    [("00000000-0000-0000-0000-000000000000", OPEN, 4041), (FLOW, "not-a-trigger", 4042)],
)
async def test_unknown_flow_or_trigger_is_404(
    gw: Harness, flow: str, trigger: str, code: int
) -> None:
    response = await gw.http.post(gw.url(trigger, flow), json={})
    assert (response.status_code, response.json()["code"]) == (404, code)
    assert gw.activations == []


@pytest.mark.parametrize(
    ("content", "content_type", "status", "code"),
    [
        (b'{"a": ', "application/json", 400, 2000),
        (b"[1, 2]", "application/json", 400, 2001),
        (b"42", "application/json", 400, 2001),
        (b"a=1", "application/x-www-form-urlencoded", 415, 4150),
        (b'{"a": "' + b"x" * (1024 * 1024) + b'"}', "application/json", 413, 4130),
        (b'{"a": NaN}', "application/json", 400, 2000),
        (b'{"a": [Infinity]}', "application/json", 400, 2000),
        (b'{"a": -1e400}', "application/json", 400, 2000),
        (b'{"s": "\\ud800"}', "application/json", 400, 2000),
        (b'{"\\udfff": 1}', "application/json", 400, 2000),
        (b'{"a": ' + b"[" * 64 + b"]" * 64 + b"}", "application/json", 400, 2000),
        (b'{"a": ' + b"[" * 254 + b"]" * 254 + b"}", "application/json", 400, 2000),
        (b'{"a": ' + b"[" * 300 + b"]" * 300 + b"}", "application/json", 400, 2000),
        (b'{"a": ' + b"[" * 200_000 + b"]" * 200_000 + b"}", "application/json", 400, 2000),
    ],
)
async def test_bad_bodies_are_refused_and_publish_nothing(
    gw: Harness,
    content: bytes,
    content_type: str,
    status: int,
    code: int,
) -> None:
    response = await gw.http.post(
        gw.url(OPEN), content=content, headers={"content-type": content_type}
    )
    assert response.status_code == status
    assert response.json()["code"] == code
    assert set(response.json()) == {"code", "message"}
    assert gw.activations == []


async def test_execution_selects_and_keys_the_event(gw: Harness) -> None:
    some = "5F2C4B1A-0C3D-4E2F-9A8B-7C6D5E4F3A2B"
    await gw.http.post(gw.url(OPEN, query="?execution=any"), json={})
    await gw.http.post(gw.url(OPEN, query=f"?execution={some}"), json={})
    assert [e["execution"] for e in gw.activations] == ["any", some.lower()]
    assert gw.keys == [OPEN.encode(), some.lower().encode()]
    for query in ("?execution=not%20an%20id", "?execution=bogus", "?execution=5f2c-ab12"):
        bad = await gw.http.post(gw.url(OPEN, query=query), json={})
        assert (bad.status_code, bad.json()["code"]) == (400, 2002)
    assert len(gw.activations) == 2


async def test_a_deeply_nested_body_is_400_and_the_connection_serves_the_next_request(
    gw: Harness,
) -> None:
    deep = b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    first = await gw.http.post(gw.url(OPEN), content=deep)
    second = await gw.http.post(gw.url(OPEN), json={"ok": 1})
    assert (first.status_code, second.status_code) == (400, 200)
    assert [e["data"] for e in gw.activations] == [{"ok": 1}]


async def test_integers_of_any_size_and_exact_floats_travel_unchanged(gw: Harness) -> None:
    text = b'{"big": 123456789012345678901234567890123, "neg": -98765432109876543210, "f": 0.1}'
    assert (await gw.http.post(gw.url(OPEN), content=text)).status_code == 200
    (raw,) = gw.raw
    assert b'"big":123456789012345678901234567890123' in raw
    assert b'"neg":-98765432109876543210' in raw
    assert json.loads(raw)["data"] == json.loads(text)


async def test_the_idempotency_key_travels_on_the_event(gw: Harness) -> None:
    await gw.http.post(gw.url(OPEN), json={}, headers={"Idempotency-Key": "pay-1"})
    await gw.http.post(gw.url(OPEN), json={}, headers={"X-Idempotency-Key": "pay-2"})
    await gw.http.post(gw.url(OPEN), json={})
    assert [e["idempotencyKey"] for e in gw.activations] == ["pay-1", "pay-2", None]
    too_long = await gw.http.post(gw.url(OPEN), json={}, headers={"Idempotency-Key": "k" * 257})
    assert too_long.status_code == 400


async def test_user_trigger_without_a_valid_user_is_401_under_error(gw: Harness) -> None:
    for headers in ({}, {"user-token": "forged"}):
        response = await gw.http.post(gw.url(PAY), json={}, headers=headers)
        assert response.status_code == 401
        assert response.json() == AUTH_BODY
    assert gw.activations == []


async def test_user_trigger_with_a_missing_role_is_403_under_error(gw: Harness) -> None:
    response = await gw.http.post(gw.url(PAY), json={}, headers={"user-token": "clerk-token"})
    assert response.status_code == 403
    assert response.json() == AUTH_BODY
    assert gw.activations == []


async def test_ignore_policy_answers_200_and_activates_nothing(gw: Harness) -> None:
    for headers in ({}, {"user-token": "clerk-token"}):
        response = await gw.http.post(gw.url(QUIET), json={}, headers=headers)
        assert response.status_code == 200
        assert response.content == b""
    assert gw.activations == []


async def test_the_resolved_user_travels_on_the_event(gw: Harness) -> None:
    response = await gw.http.post(
        gw.url(PAY), json={"orderId": "o-9"}, headers={"user-token": "payer-token"}
    )
    assert response.status_code == 200
    (event,) = gw.activations
    user = event["user"]
    assert user["email"] == "pay@gw.example"
    assert user["firstName"] == "Pay"
    assert user["roles"] == ["PaymentGateway"]
    # signed for the engine, which trusts no other user; the token itself stays here
    assert user_is_signed(ACTIVATION_KEY, event["activationId"], user, event["userSignature"])
    assert not user_is_signed("another key", event["activationId"], user, event["userSignature"])
    assert event["userToken"] is None


async def test_without_an_activation_key_the_token_travels_for_the_engine_to_resolve() -> None:
    async with gateway(activation_key=None) as gw:
        response = await gw.http.post(gw.url(PAY), json={}, headers={"user-token": "payer-token"})
        assert response.status_code == 200
        (event,) = gw.activations
    assert (event["user"], event["userSignature"], event["userToken"]) == (
        None,
        None,
        "payer-token",
    )


async def test_a_token_over_4_kib_is_an_invalid_token_and_is_never_looked_up(
    gw: Harness,
) -> None:
    huge = "t" * 70_000
    on_none = await gw.http.post(gw.url(OPEN), json={}, headers={"user-token": huge})
    on_user = await gw.http.post(gw.url(PAY), json={}, headers={"user-token": huge})
    assert (on_none.status_code, on_user.status_code) == (200, 401)
    assert on_user.json() == AUTH_BODY
    assert gw.activations[0]["user"] is None
    assert gw.introspections == []


async def test_none_trigger_with_a_bad_token_carries_no_user(gw: Harness) -> None:
    await gw.http.post(gw.url(OPEN), json={}, headers={"user-token": "forged"})
    await gw.http.post(gw.url(OPEN), json={}, headers={"user-token": "clerk-token"})
    assert [e["user"] and e["user"]["objectId"] for e in gw.activations] == [None, "U2"]


async def test_auth_service_down_is_503_and_nothing_is_published(gw: Harness) -> None:
    gw.auth_down = True
    response = await gw.http.post(gw.url(PAY), json={}, headers={"user-token": "payer-token"})
    assert (response.status_code, response.json()["code"]) == (503, 5032)
    assert gw.activations == []


async def test_broker_down_is_503_and_never_a_2xx(
    gw: Harness,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def refused(*args: object, **kwargs: object) -> None:
        raise ConnectionError("Kafka unreachable")

    for publisher in gw.broker.publishers:
        monkeypatch.setattr(publisher, "publish", refused)
    response = await gw.http.post(gw.url(OPEN), json={})
    assert (response.status_code, response.json()["code"]) == (503, 5030)
    started = await gw.http.post(f"/api/automation/flow/{FLOW}/execute", json={})
    assert started.status_code == 503


def _post(
    path: str,
) -> tuple[dict[str, Any], list[dict[str, Any]], Callable[[dict[str, Any]], Awaitable[None]]]:
    """A JSON POST's ASGI scope, the messages answered, and the `send` that keeps them:
    for requests httpx cannot make."""
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "query_string": b"",
        "headers": [(b"content-type", b"application/json")],
        "client": ("10.1.2.3", 4000),
    }
    return scope, sent, send


async def test_a_body_that_does_not_arrive_in_time_is_408() -> None:
    async with gateway(body_timeout_seconds=0.2) as gw:

        async def stalled() -> dict[str, Any]:
            await asyncio.Event().wait()  # the client sent its headers, never its body
            raise AssertionError

        scope, sent, send = _post(gw.url(OPEN))
        async with asyncio.timeout(5):
            await gw.app(scope, stalled, send)
        assert sent[0]["status"] == 408
        assert json.loads(sent[1]["body"])["code"] == 4080
        assert gw.activations == []
        # the timeout ended that request alone: the next one is accepted
        assert (await gw.http.post(gw.url(OPEN), json={})).status_code == 200


async def test_a_caller_that_leaves_before_its_body_gets_nothing_and_logs_no_error(
    gw: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    async def gone() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    scope, sent, send = _post(gw.url(OPEN))
    await gw.app(scope, gone, send)
    assert sent == []
    assert gw.activations == []
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


async def test_a_publish_kafka_does_not_acknowledge_in_time_is_503(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with gateway(publish_timeout_seconds=0.2) as gw:

        async def unacknowledged(*args: object, **kwargs: object) -> None:
            await asyncio.Event().wait()

        (publisher,) = [
            p
            for p in gw.broker.publishers
            if p.topic == TOPICS.activations  # type: ignore[attr-defined]
        ]
        with monkeypatch.context() as patched:
            patched.setattr(publisher, "publish", unacknowledged)
            async with asyncio.timeout(5):
                response = await gw.http.post(gw.url(OPEN), json={})
            assert (response.status_code, response.json()["code"]) == (503, 5030)
        assert (await gw.http.post(gw.url(OPEN), json={})).status_code == 200
        assert len(gw.activations) == 1


async def test_an_unexpected_error_in_a_callback_is_500_with_the_contract_body(
    gw: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(gw.app.state.registry, "trigger", broken)
    response = await gw.http.post(gw.url(OPEN), json={})
    assert response.status_code == 500
    assert response.json()["code"] == 5000
    assert "a bug" not in response.text
    assert any(r.message == "request failed" and r.exc_info for r in caplog.records)
    assert gw.activations == []


async def test_head_on_a_callback_url_activates_nothing(gw: Harness) -> None:
    response = await gw.http.head(gw.url(OPEN))
    assert response.status_code == 405
    assert gw.activations == []


async def test_tokens_are_cached_and_concurrent_misses_share_one_lookup(gw: Harness) -> None:
    headers = {"user-token": "payer-token"}
    answers = await asyncio.gather(
        *[gw.http.post(gw.url(PAY), json={}, headers=headers) for _ in range(10)]
    )
    assert {a.status_code for a in answers} == {200}
    await gw.http.post(gw.url(PAY), json={}, headers=headers)
    assert gw.introspections == ["payer-token"]
    text = (await gw.http.get("/metrics")).text
    assert 'hookflow_gateway_auth_lookups_total{result="miss"} 1.0' in text
    assert 'hookflow_gateway_auth_lookups_total{result="hit"} 10.0' in text


async def test_auth_events_drop_cached_tokens(gw: Harness) -> None:
    headers = {"user-token": "payer-token"}
    await gw.http.post(gw.url(PAY), json={}, headers=headers)
    for event in (
        TokenRevoked(tokenHash=token_hash("payer-token"), userId="U1", at=1),
        RolesChanged(userId="U1", roles=[], at=2),
        UserDisabled(userId="U1", at=3),
    ):
        await gw.broker.publish(event.model_dump(mode="json"), TOPICS.auth_events)
        await gw.http.post(gw.url(PAY), json={}, headers=headers)
    assert gw.introspections == ["payer-token"] * 4


async def test_execute_publishes_a_start_and_answers_202(gw: Harness) -> None:
    response = await gw.http.post(
        f"/api/automation/flow/{FLOW.upper()}/execute", json={"order": {"id": 1}}
    )
    assert response.status_code == 202
    assert gw.starts == [
        {
            "executionId": response.json()["executionId"],
            "flowId": FLOW,
            "input": {"order": {"id": 1}},
            "requestedAt": gw.starts[0]["requestedAt"],
        }
    ]
    missing = await gw.http.post("/api/automation/flow/nope/execute", json={})
    assert (missing.status_code, missing.json()["code"]) == (404, 4041)


async def test_rate_limit_answers_429_with_retry_after() -> None:
    async with gateway(rate_limit_per_second=1, rate_limit_burst=2) as gw:
        codes = [(await gw.http.post(gw.url(OPEN), json={})).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        limited = await gw.http.post(gw.url(OPEN), json={})
        assert limited.json()["code"] == 4290
        assert int(limited.headers["retry-after"]) >= 1
        assert len(gw.activations) == 2


async def test_health_readiness_and_metrics(gw: Harness) -> None:
    assert (await gw.http.get("/healthz")).status_code == 200
    assert (await gw.http.get("/readyz")).json() == {"status": "ready", "flows": 1}
    await gw.http.post(gw.url(OPEN), json={})
    text = (await gw.http.get("/metrics")).text
    assert 'hookflow_gateway_requests_total{outcome="200",route="activate"} 1.0' in text
    assert "hookflow_gateway_kafka_publish_seconds_count" in text


async def test_a_get_activates_with_the_query_string_as_data(gw: Harness) -> None:
    some = "5f2c4b1a-0c3d-4e2f-9a8b-7c6d5e4f3a2b"
    query = f"?orderId=o-7&tag=a&tag=b&empty=&execution={some}&n=1"
    response = await gw.http.get(gw.url(OPEN, query=query))
    assert response.status_code == 200
    (event,) = gw.activations
    assert event["activationId"] == response.headers["x-activation-id"]
    assert event["data"] == {"orderId": "o-7", "tag": ["a", "b"], "empty": "", "n": "1"}
    assert event["execution"] == some
    # every other rule is the POST's: a USER trigger without a user, a bad selector
    assert (await gw.http.get(gw.url(PAY, query="?a=1"))).json() == AUTH_BODY
    bad = await gw.http.get(gw.url(OPEN, query="?execution=bogus"))
    assert (bad.status_code, bad.json()["code"]) == (400, 2002)
    assert len(gw.activations) == 1
