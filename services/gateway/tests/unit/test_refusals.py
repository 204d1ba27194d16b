"""What the gateway stops before Kafka reaches the activation log, with the reason:
reported on the `activation-refusals` topic without delaying the caller's answer."""

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from schemas.events import ActivationRefused
from schemas.flows import SignatureScheme
from schemas.webhooks import sign

from ..harness import FLOW, OPEN, PAY, QUIET, SECRET, SIGNED, SIGNED_QUIET, Harness, gateway

STANDARD = SignatureScheme.STANDARD_WEBHOOKS


@pytest.fixture
async def gw() -> AsyncIterator[Harness]:
    async with gateway() as harness:
        yield harness


async def reported(gw: Harness, count: int) -> list[dict[str, Any]]:
    """The refusals reported, once `count` have arrived (they are sent by a task)."""
    async with asyncio.timeout(5):
        while len(gw.refusals) < count:
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # and no more
    return gw.refusals


async def test_each_refusal_is_reported_with_its_answer_and_reason(gw: Harness) -> None:
    before = int(time.time() * 1000)
    not_json = await gw.http.post(
        gw.url(OPEN), content=b"{nope", headers={"content-type": "application/json"}
    )
    too_large = await gw.http.post(gw.url(OPEN), content=b'{"a":"' + b"x" * 2_000_000 + b'"}')
    no_user = await gw.http.post(gw.url(PAY), json={"n": 1})
    no_role = await gw.http.post(gw.url(PAY), json={}, headers={"user-token": "clerk-token"})
    assert [r.status_code for r in (not_json, too_large, no_user, no_role)] == [400, 413, 401, 403]
    # the caller's answers are the contract's, unchanged
    assert no_role.json() == {
        "code": 1000,
        "message": "Unable to execute the callback. User is missing required security role(s)",
    }

    reports = await reported(gw, 4)
    assert [(r["triggerId"], r["outcome"], r["status"], r["code"]) for r in reports] == [
        (OPEN, "REFUSED", 400, 2000),
        (OPEN, "REFUSED", 413, 4130),
        (PAY, "REFUSED", 401, 1000),
        (PAY, "REFUSED", 403, 1000),
    ]
    assert all(r["flowId"] == FLOW and r["source"] == "http" for r in reports)
    assert all(before <= r["receivedAt"] <= time.time() * 1000 for r in reports)
    assert "JSON" in reports[0]["reason"]
    assert reports[1]["bodySize"] > 2_000_000
    assert "no valid user" in reports[2]["reason"]
    assert reports[2]["userId"] is None
    assert "lacks the role(s) PaymentGateway" in reports[3]["reason"]
    assert reports[3]["userId"] == "U2"
    assert len({r["activationId"] for r in reports}) == 4
    assert gw.activations == []  # nothing of them reached the activations topic


async def test_an_ignored_callback_is_logged_under_the_id_its_caller_got(gw: Harness) -> None:
    by_auth = await gw.http.post(gw.url(QUIET), json={}, headers={"user-token": "clerk-token"})
    body = json.dumps({"a": 1}).encode()
    headers = sign(STANDARD, SECRET, body + b" ", "msg-9", int(time.time()))
    by_signature = await gw.http.post(
        gw.url(SIGNED_QUIET), content=body, headers={**headers, "content-type": "application/json"}
    )
    assert (by_auth.status_code, by_signature.status_code) == (200, 200)

    auth, signature = await reported(gw, 2)
    assert (auth["activationId"], auth["outcome"], auth["status"]) == (
        by_auth.headers["x-activation-id"],
        "IGNORED_AUTH",
        200,
    )
    assert "lacks the role(s) PaymentGateway" in auth["reason"]
    assert auth["userId"] == "U2"
    assert signature["activationId"] == by_signature.headers["x-activation-id"]
    assert signature["outcome"] == "IGNORED_AUTH"
    assert "signature did not verify" in signature["reason"]


async def test_a_bad_signature_and_an_unknown_trigger_of_a_known_flow_are_reported(
    gw: Harness,
) -> None:
    unsigned = await gw.http.post(gw.url(SIGNED[STANDARD]), json={"a": 1})
    stray = str(uuid.uuid4())
    unknown = await gw.http.post(gw.url(stray), json={})
    assert (unsigned.status_code, unknown.status_code) == (401, 404)
    signature, trigger = await reported(gw, 2)
    assert (signature["outcome"], signature["code"]) == ("REFUSED", 1002)
    assert (trigger["triggerId"], trigger["outcome"], trigger["status"]) == (
        stray,
        "UNKNOWN_TRIGGER",
        404,
    )


async def test_what_is_not_reported(gw: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    # a flow that does not exist: a scan of made-up URLs writes nothing
    assert (await gw.http.post(gw.url(OPEN, flow_id=str(uuid.uuid4())), json={})).status_code == 404

    # a failed publish: its activation may still reach the engine, whose outcome counts
    async def refused(*args: object, **kwargs: object) -> None:
        raise ConnectionError("Kafka unreachable")

    for publisher in gw.broker.publishers:
        monkeypatch.setattr(publisher, "publish", refused)
    assert (await gw.http.post(gw.url(OPEN), json={})).status_code == 503
    await asyncio.sleep(0.1)
    metrics = (await gw.http.get("/metrics")).text
    for result in ("sent", "failed", "dropped"):  # not even tried
        assert f'hookflow_gateway_refusal_reports_total{{result="{result}"}} 0.0' in metrics


async def test_reports_beyond_the_rate_are_dropped_and_counted() -> None:
    async with gateway(refusal_reports_per_second=3) as gw:
        for _ in range(10):
            assert (await gw.http.post(gw.url(PAY), json={})).status_code == 401
        reports = await reported(gw, 3)
        assert len(reports) == 3  # the burst of one second's rate
        metrics = (await gw.http.get("/metrics")).text
        assert 'hookflow_gateway_refusal_reports_total{result="dropped"} 7.0' in metrics
        assert 'hookflow_gateway_refusal_reports_total{result="sent"} 3.0' in metrics


async def test_reports_can_be_turned_off() -> None:
    async with gateway(refusal_reports_per_second=0) as gw:
        assert (await gw.http.post(gw.url(PAY), json={})).status_code == 401
        await asyncio.sleep(0.1)
        assert gw.refusals == []


def test_a_report_makes_a_log_record_that_says_what_the_caller_got() -> None:
    refused = ActivationRefused.model_validate(
        {
            "activationId": "a1",
            "flowId": "f",
            "triggerId": "t",
            "outcome": "REFUSED",
            "reason": "the body is not JSON",
            "status": 400,
            "code": 2000,
            "receivedAt": 5,
        }
    )
    record = refused.as_outcome()
    assert (record.outcome, record.decidedAt, record.receivedAt, record.executionIds) == (
        "REFUSED",
        5,
        5,
        [],
    )
    assert record.detail == "answered 400, code 2000: the body is not JSON"
