"""The second wave's callback features through the real services: early callbacks
(`bufferSeconds`), GET callbacks and signed callbacks."""

import asyncio
import json
import time
import uuid
from typing import Any

import pytest

from schemas.events import ActivateTrigger

from .. import signers
from .driver import Driver


def early_payments(buffer_seconds: int) -> dict[str, Any]:
    return {
        "name": f"Early payments {uuid.uuid4().hex[:8]}",
        "blocks": [
            {"name": "s", "type": "start", "next": "pay"},
            {
                "name": "pay",
                "type": "external_callback",
                "condition": "data.orderId == input.orderId",
                "bufferSeconds": buffer_seconds,
                "next": "paid",
            },
            {"name": "paid", "type": "assign", "assign": {"amount": "data.amount"}},
        ],
    }


async def test_early_callbacks_are_each_consumed_by_exactly_one_execution(driver: Driver) -> None:
    flow = await driver.deploy(early_payments(600))
    url = flow["triggers"][0]["callbackUrl"]
    orders = [f"o-{n}" for n in range(8)]
    early = [await driver.callback(url, {"orderId": o, "amount": n}) for n, o in enumerate(orders)]
    assert {(await driver.outcome(r))["outcome"] for r in early} == {"BUFFERED"}

    # two executions per order begin waiting at once: one takes the payment, one waits on
    starts = await asyncio.gather(
        *(driver.start(flow["flowId"], {"orderId": o}) for o in orders for _ in range(2))
    )
    for n, order in enumerate(orders):
        pair = starts[2 * n : 2 * n + 2]
        settled = await driver.outcome_of(early[n].headers["x-activation-id"], until="ACTIVATED")
        (winner,) = settled["executionIds"]
        assert winner in pair, order
        done = await driver.execution(winner, "completed")
        assert done["vars"] == {"amount": n}
        assert [e["event"] for e in done["history"]].count("resumed") == 1
        (other,) = set(pair) - {winner}
        assert (await driver.execution(other))["status"] == "waiting"


async def test_a_callback_and_its_waiter_arriving_together_meet_once(driver: Driver) -> None:
    flow = await driver.deploy(early_payments(600))
    url = flow["triggers"][0]["callbackUrl"]

    async def pair(order: str) -> tuple[Any, str]:
        return await asyncio.gather(
            driver.callback(url, {"orderId": order, "amount": 1}),
            driver.start(flow["flowId"], {"orderId": order}),
        )

    for response, execution_id in await asyncio.gather(*(pair(f"r-{n}") for n in range(10))):
        done = await driver.execution(execution_id, "completed")
        settled = await driver.outcome_of(response.headers["x-activation-id"], until="ACTIVATED")
        assert settled["executionIds"] == [execution_id]
        assert [e["event"] for e in done["history"]].count("resumed") == 1


async def test_an_early_callback_nobody_takes_expires(driver: Driver) -> None:
    flow = await driver.deploy(early_payments(1))
    response = await driver.callback(flow["triggers"][0]["callbackUrl"], {"orderId": "late"})
    assert (await driver.outcome(response))["outcome"] == "BUFFERED"
    expired = await driver.outcome_of(response.headers["x-activation-id"], until="EXPIRED")
    assert expired["executionIds"] == []
    execution_id = await driver.start(flow["flowId"], {"orderId": "late"})
    assert (await driver.execution(execution_id, "waiting"))["status"] == "waiting"


async def test_a_get_activates_with_the_query_string_as_data(driver: Driver) -> None:
    flow = await driver.deploy(early_payments(0))
    url = flow["triggers"][0]["callbackUrl"]
    execution_id = await driver.start(flow["flowId"], {"orderId": "o-get"})
    await driver.execution(execution_id, "waiting")
    query: list[tuple[str, str | int | float | bool | None]] = [
        ("execution", execution_id),
        ("orderId", "o-get"),
        ("amount", "7"),
        ("tag", "a"),
    ]
    query.append(("tag", "b"))
    response = await driver.http.get(url, params=query)
    assert (response.status_code, response.content) == (200, b"")
    assert (await driver.outcome(response))["outcome"] == "ACTIVATED"
    done = await driver.execution(execution_id, "completed")
    assert done["results"]["pay"]["data"] == {"orderId": "o-get", "amount": "7", "tag": ["a", "b"]}
    assert done["vars"] == {"amount": "7"}


def signed_flow(scheme: str, entry: bool = False) -> dict[str, Any]:
    """A deployment approval signed with `scheme`; with `entry`, every approval starts one."""
    approval = {
        "name": "approved",
        "type": "external_callback",
        "authenticationType": "SIGNATURE",
        "signatureScheme": scheme,
        "condition": "data.action == 'approved'",
        "next": "deploy",
    }
    start = [] if entry else [{"name": "s", "type": "start", "next": "approved"}]
    return {
        "name": f"Approval {scheme} {uuid.uuid4().hex[:8]}",
        "blocks": [
            *start,
            approval,
            {"name": "deploy", "type": "assign", "assign": {"by": "data.by"}},
        ],
    }


def signed_headers(scheme: str, secret: str, body: bytes, message_id: str) -> dict[str, str]:
    """Signed as the provider would, by the tests' own signer (tests/signers.py)."""
    now = int(time.time())
    if scheme == "github":
        return signers.github(secret, message_id, body)
    if scheme == "stripe":
        return signers.stripe(secret, now, body)
    return signers.standard_webhooks(secret, message_id, now, body)


@pytest.mark.parametrize("scheme", ["standard-webhooks", "github", "stripe"])
async def test_a_signed_callback_resumes_its_execution_once(driver: Driver, scheme: str) -> None:
    flow = await driver.deploy(signed_flow(scheme))
    (trigger,) = flow["triggers"]
    secret = trigger["signingSecret"]
    execution_id = await driver.start(flow["flowId"], {})
    await driver.execution(execution_id, "waiting")
    url = f"{trigger['callbackUrl']}?execution={execution_id}"
    body = json.dumps({"id": f"evt_{uuid.uuid4().hex}", "action": "approved", "by": "ann"}).encode()
    headers = signed_headers(scheme, secret, body, f"msg_{uuid.uuid4().hex}")

    forged = await driver.http.post(url, content=body.replace(b"ann", b"eve"), headers=headers)
    assert (forged.status_code, forged.json()["code"]) == (401, 1002)
    unsigned = await driver.http.post(url, content=body)
    assert (unsigned.status_code, unsigned.json()["code"]) == (401, 1002)

    accepted = await driver.http.post(url, content=body, headers=headers)
    assert (accepted.status_code, accepted.content) == (200, b"")
    assert (await driver.outcome(accepted))["outcome"] == "ACTIVATED"
    done = await driver.execution(execution_id, "completed")
    assert done["vars"] == {"by": "ann"}
    replayed = await driver.http.post(url, content=body, headers=headers)
    assert replayed.status_code == 200
    assert (await driver.outcome(replayed))["outcome"] == "DUPLICATE"

    shown = await driver.http.get(f"{driver.product.engine}/api/automation/flows/{flow['flowId']}")
    assert secret not in shown.text
    assert "signingSecret" not in shown.text


async def test_a_rotated_secret_verifies_at_once_and_the_old_one_still_does(
    driver: Driver,
) -> None:
    flow = await driver.deploy(signed_flow("standard-webhooks", entry=True))
    (trigger,) = flow["triggers"]
    flows = f"{driver.product.engine}/api/automation/flows"
    rotation = f"{flows}/{flow['flowId']}/triggers/{trigger['triggerId']}/secret"
    rotated = await driver.http.post(rotation)
    assert rotated.status_code == 201, rotated.text
    issued = rotated.json()
    assert issued["signingSecret"] != trigger["signingSecret"]
    assert issued["previousSecretsValidUntil"] > time.time() * 1000 + 23 * 3600 * 1000

    body = json.dumps({"action": "approved", "by": "ann"}).encode()
    for secret in (issued["signingSecret"], trigger["signingSecret"]):
        headers = signed_headers("standard-webhooks", secret, body, f"msg_{uuid.uuid4().hex}")
        response = await driver.http.post(trigger["callbackUrl"], content=body, headers=headers)
        assert response.status_code == 200, response.text
        outcome = await driver.outcome(response)
        assert outcome["outcome"] == "ACTIVATED"
        (started,) = outcome["executionIds"]
        assert (await driver.execution(started, "completed"))["vars"] == {"by": "ann"}

    plain = await driver.deploy(early_payments(0))
    refused = await driver.http.post(
        f"{driver.product.engine}/api/automation/flows/{plain['flowId']}/triggers/"
        f"{plain['triggers'][0]['triggerId']}/secret"
    )
    assert (refused.status_code, refused.json()["code"]) == (409, 4090)


async def test_a_signed_trigger_ignores_activations_published_straight_to_kafka(
    driver: Driver,
) -> None:
    flow = await driver.deploy(signed_flow("github", entry=True))
    (trigger,) = flow["triggers"]
    activation_id = str(uuid.uuid4())
    command = ActivateTrigger(
        activationId=activation_id,
        flowId=flow["flowId"],
        triggerId=trigger["triggerId"],
        data={"action": "approved", "by": "mallory"},
        signatureVerified="not the gateway's",
        receivedAt=int(time.time() * 1000),
    )
    await driver.publish((command.model_dump_json().encode(), trigger["triggerId"].encode()))
    assert (await driver.outcome_of(activation_id))["outcome"] == "IGNORED_AUTH"


async def test_a_triggers_rate_limit_answers_429_with_retry_after(driver: Driver) -> None:
    definition = early_payments(0)
    definition["blocks"][1]["rateLimit"] = {"perSecond": 0.2, "burst": 2}
    flow = await driver.deploy(definition)
    url = flow["triggers"][0]["callbackUrl"]
    execution_id = await driver.start(flow["flowId"], {"orderId": "o-limited"})
    await driver.execution(execution_id, "waiting")

    responses = [
        await driver.callback(url, {"orderId": "o-limited", "amount": n}) for n in range(4)
    ]
    assert [r.status_code for r in responses] == [200, 200, 429, 429]
    assert {r.json()["code"] for r in responses[2:]} == {4291}
    assert all(1 <= int(r.headers["retry-after"]) <= 5 for r in responses[2:])
    # what was admitted was decided as ever: one resumes, the next finds nobody waiting
    assert (await driver.outcome(responses[0]))["executionIds"] == [execution_id]
    assert (await driver.outcome(responses[1]))["outcome"] == "NO_WAITER"
    assert (await driver.execution(execution_id, "completed"))["vars"]["amount"] == 0

    for limit in ({"perSecond": 0}, {"perSecond": 1, "burst": 0}, {"perSecond": 1, "per": 2}):
        definition["blocks"][1]["rateLimit"] = limit
        refused = await driver.http.post(
            f"{driver.product.engine}/api/automation/flows", json=definition
        )
        assert (refused.status_code, refused.json()["code"]) == (400, 2003), limit
        assert "rateLimit" in refused.json()["message"]
