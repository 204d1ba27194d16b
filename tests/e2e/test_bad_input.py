"""Hostile input against the running product: every answer is the contract's, nothing stalls."""

import asyncio
import json
import uuid
from typing import Any

import httpx
from typer.testing import CliRunner

from hookflow_cli.main import app as cli

from .driver import Driver

NOTIFY_BY_NAME = {
    "name": "Notify by name",
    "blocks": [
        {"name": "begin", "type": "start", "next": "named"},
        {"name": "named", "type": "external_callback", "next": "notify"},
        {
            "name": "notify",
            "type": "http_request",
            "method": "POST",
            "url": "'http://127.0.0.1:9/notify'",
            "headers": {"X-Name": "data.name"},
        },
    ],
}
GUARDED_ENTRY = {
    "name": "Guarded webhook",
    "blocks": [
        {"name": "hook", "type": "external_callback", "condition": "data.ok == true"},
    ],
}
OPEN = {
    "name": "Open",
    "blocks": [
        {"name": "begin", "type": "start", "next": "cb"},
        {"name": "cb", "type": "external_callback", "next": "copy"},
        # a copy keeps integers of any size exactly (no CEL 64-bit integer in between)
        {"name": "copy", "type": "assign", "assign": {"copied": "results['cb'].data"}},
    ],
}


async def test_a_request_a_block_cannot_send_fails_its_execution_and_stalls_nothing(
    driver: Driver,
) -> None:
    flow = await driver.deploy(NOTIFY_BY_NAME)
    callback = flow["triggers"][0]["callbackUrl"]
    first, second = [await driver.start(flow["flowId"], {}) for _ in range(2)]
    for execution_id in (first, second):
        await driver.execution(execution_id, "waiting")
    # the header value is not ASCII: the request cannot be sent
    jose = await driver.callback(f"{callback}?execution={first}", {"name": "José"})
    assert jose.status_code == 200
    failed = await driver.execution(first, "failed")
    assert "not ASCII" in failed["error"]
    assert failed["history"][-1]["event"] == "failed"
    # the next activation of the trigger (the same partition) is decided as usual
    ann = await driver.callback(f"{callback}?execution={second}", {"name": "Ann"})
    assert (await driver.outcome(ann))["outcome"] == "ACTIVATED"
    refused = (await driver.execution(second, "failed"))["error"]
    assert "egress policy: 127.0.0.1:9 is a loopback address" in refused


async def test_the_condition_of_an_entry_trigger_applies(driver: Driver) -> None:
    flow = await driver.deploy(GUARDED_ENTRY)
    callback = flow["triggers"][0]["callbackUrl"]
    refused = await driver.callback(callback, {"ok": False})
    taken = await driver.callback(callback, {"ok": True})
    assert ((await driver.outcome(refused))["outcome"], refused.status_code) == ("FILTERED", 200)
    decided = await driver.outcome(taken)
    assert decided["outcome"] == "ACTIVATED"
    page = await driver.http.get(
        f"{driver.product.engine}/api/automation/flow/{flow['flowId']}/executions"
    )
    assert [e["executionId"] for e in page.json()["executions"]] == decided["executionIds"]


async def test_hostile_bodies_headers_and_parameters_get_400_never_5xx(driver: Driver) -> None:
    flow = await driver.deploy(OPEN)
    callback = flow["triggers"][0]["callbackUrl"]
    json_type = {"content-type": "application/json"}
    bodies = [
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b'{"a": 1e400}',
        b'{"s": "\\ud800"}',
        b'{"a": ' + b"[" * 254 + b"]" * 254 + b"}",
        b'{"a": ' + b"[" * 300 + b"]" * 300 + b"}",
        b'{"n": 1' + b"0" * 5000 + b"}",
    ]
    async with httpx.AsyncClient(timeout=30) as keep_alive:  # one connection for them all
        for body in bodies:
            answer = await keep_alive.post(callback, content=body, headers=json_type)
            assert (answer.status_code, answer.json()["code"]) == (400, 2000), body[:40]
        bogus = await keep_alive.post(f"{callback}?execution=bogus", json={})
        assert (bogus.status_code, bogus.json()["code"]) == (400, 2002)
        nobody = f"{callback}?execution={uuid.uuid4()}"  # resumes nothing of this test's
        token = await keep_alive.post(nobody, json={}, headers={"user-token": "t" * 5000})
        assert token.status_code == 200  # over 4 KiB, an invalid token on a NONE trigger: no user
    async with httpx.AsyncClient(timeout=30) as fresh:  # a 431 closes its connection
        huge = await fresh.post(nobody, json={}, headers={"user-token": "t" * 70_000})
        assert (huge.status_code, huge.json()["code"]) == (431, 4310)  # over a header line
    async with httpx.AsyncClient(timeout=30) as keep_alive:
        big = 123456789012345678901234567890123
        execution_id = await driver.start(flow["flowId"], {})
        await driver.execution(execution_id, "waiting")
        exact = await keep_alive.post(
            f"{callback}?execution={execution_id}",
            content=json.dumps({"big": big, "neg": -(2**70)}).encode(),
            headers=json_type,
        )
        assert exact.status_code == 200
    done = await driver.execution(execution_id, "completed")
    assert done["results"]["cb"]["data"] == {"big": big, "neg": -(2**70)}
    assert done["vars"]["copied"] == {"big": big, "neg": -(2**70)}


async def test_a_flow_is_callable_as_soon_as_its_deploy_answered(driver: Driver) -> None:
    for _ in range(3):
        deployed = await driver.http.post(
            f"{driver.product.engine}/api/automation/flows",
            json={**OPEN, "name": f"Fresh {uuid.uuid4().hex[:6]}"},
        )
        assert deployed.status_code == 201
        flow = deployed.json()
        calls = await asyncio.gather(
            *(driver.http.post(flow["triggers"][0]["callbackUrl"], json={}) for _ in range(5))
        )
        assert [c.status_code for c in calls] == [200] * 5


async def test_a_kafka_message_that_fails_validation_is_a_dead_letter_to_list_and_replay(
    driver: Driver,
) -> None:
    flow = await driver.deploy(OPEN)
    activation_id = str(uuid.uuid4())
    message: dict[str, Any] = {
        "activationId": activation_id,
        "flowId": flow["flowId"],
        "triggerId": flow["triggers"][0]["triggerId"],
        "user": {"email": "forged@example.com", "roles": ["FlowAdmin"]},
        "receivedAt": 1,
    }
    await driver.publish((json.dumps(message).encode(), b"forged"))
    answer = await driver.outcome_of(activation_id)
    assert answer["outcome"] == "INVALID"
    assert "user.objectId" in answer["detail"]

    runner = CliRunner()
    engine = ["--engine", driver.product.engine]
    admin = ["--admin-key", driver.product.admin_key]
    listed = await asyncio.to_thread(
        runner.invoke, cli, [*admin, "dead-letters", "--limit", "500", *engine]
    )
    assert listed.exit_code == 0, listed.output
    page = await driver.http.get(
        f"{driver.product.engine}/api/automation/dead-letters", params={"limit": 500}
    )
    (letter,) = [d for d in page.json()["deadLetters"] if d["activationId"] == activation_id]
    assert letter["deadLetterId"][:8] in listed.output
    replayed = await asyncio.to_thread(
        runner.invoke, cli, [*admin, "dead-letters", "--replay", letter["deadLetterId"], *engine]
    )
    assert replayed.exit_code == 0, replayed.output
    assert f"replayed {letter['deadLetterId']}" in replayed.output
    again = await driver.http.get(
        f"{driver.product.engine}/api/automation/dead-letters/{letter['deadLetterId']}"
    )
    assert again.json()["replayedAt"] is not None
