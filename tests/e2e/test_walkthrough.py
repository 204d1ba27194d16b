"""The README's walkthrough and every rule of the contract's callback section, end to end."""

import uuid
from typing import Any

from schemas.events import ActivateTrigger

from .driver import Driver

AUTH_ERROR = {
    "code": 1000,
    "message": "Unable to execute the callback. User is missing required security role(s)",
}


async def test_the_order_walkthrough(driver: Driver) -> None:
    flow = await driver.order_flow()
    callback = flow["triggers"][0]["callbackUrl"]
    execution_id = await driver.start(
        flow["flowId"], {"order": {"id": "o-1", "total": 25, "customer": "ann@example.com"}}
    )
    waiting = await driver.execution(execution_id, "waiting")
    assert waiting["waitingOn"] == [flow["triggers"][0]["triggerId"]]

    payment = {"orderId": "o-1", "amount": 25.0}
    assert (await driver.callback(callback, payment)).status_code == 401
    _, clerk = await driver.user(["Clerk"])
    forbidden = await driver.callback(callback, payment, clerk)
    assert (forbidden.status_code, forbidden.json()) == (403, AUTH_ERROR)

    psp, token = await driver.user(["PaymentGateway"], firstName="Pay", age=7)
    other_order = await driver.callback(callback, {"orderId": "o-2", "amount": 1}, token)
    assert other_order.status_code == 200
    assert (await driver.outcome(other_order))["outcome"] == "FILTERED"
    assert (await driver.execution(execution_id))["status"] == "waiting"

    paid = await driver.callback(callback, payment, token)
    assert (paid.status_code, paid.content) == (200, b"")
    outcome = await driver.outcome(paid)
    assert (outcome["outcome"], outcome["executionIds"]) == ("ACTIVATED", [execution_id])
    done = await driver.execution(execution_id, "completed")
    assert done["vars"]["paidBy"] == psp["email"]
    assert done["vars"]["amount"] == 25.0
    confirmed = done["results"]["Payment Confirmed"]
    assert confirmed["data"] == payment
    assert {
        k: confirmed["user"][k]
        for k in ("objectId", "email", "firstName", "age", "roles", "userStatus")
    } == {
        "objectId": psp["objectId"],
        "email": psp["email"],
        "firstName": "Pay",
        "age": 7,
        "roles": ["PaymentGateway"],
        "userStatus": "ENABLED",
    }
    notifications = (await driver.http.get(f"{driver.product.stub}/notifications")).json()
    assert {
        "orderId": "o-1",
        "customer": "ann@example.com",
        "status": "paid",
        "amount": 25.0,
    } in notifications


SELECT = {
    "name": "Selection",
    "blocks": [
        {"name": "Go", "type": "start", "next": "Wait"},
        {
            "name": "Wait",
            "type": "external_callback",
            "condition": "data.n >= input.min",
            "next": "Keep",
        },
        {"name": "Keep", "type": "assign", "assign": {"n": "data.n"}},
    ],
}


async def test_all_any_and_an_execution_id(driver: Driver) -> None:
    flow = await driver.deploy(SELECT)
    callback = flow["triggers"][0]["callbackUrl"]
    oldest, middle, newest, picky = [
        await driver.start(flow["flowId"], {"min": m}) for m in (1, 1, 1, 100)
    ]
    for execution_id in (oldest, middle, newest, picky):
        await driver.execution(execution_id, "waiting")

    only = await driver.callback(f"{callback}?execution={middle}", {"n": 5})
    assert (await driver.outcome(only))["executionIds"] == [middle]
    first = await driver.callback(f"{callback}?execution=any", {"n": 5})
    assert (await driver.outcome(first))["executionIds"] == [oldest]
    rest = await driver.callback(callback, {"n": 5})
    assert (await driver.outcome(rest))["executionIds"] == [newest]
    assert (await driver.execution(picky))["status"] == "waiting"
    nobody = await driver.callback(f"{callback}?execution={oldest}", {"n": 500})
    assert (await driver.outcome(nobody))["outcome"] == "NO_WAITER"


ENTRY = {
    "name": "Signups",
    "blocks": [
        {"name": "Signup", "type": "external_callback", "next": "Welcome"},
        {"name": "Welcome", "type": "assign", "assign": {"greeting": "'Hello ' + data.name"}},
    ],
}


async def test_an_entry_trigger_starts_executions_and_honours_idempotency(driver: Driver) -> None:
    flow = await driver.deploy(ENTRY)
    callback = flow["triggers"][0]["callbackUrl"]
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = await driver.callback(callback, {"name": "Ann"}, headers=key)
    again = await driver.callback(callback, {"name": "Ann"}, headers=key)
    other = await driver.callback(callback, {"name": "Bob"})
    outcomes = [await driver.outcome(r) for r in (first, again, other)]
    assert [o["outcome"] for o in outcomes] == ["ACTIVATED", "DUPLICATE", "ACTIVATED"]
    greetings = [
        (await driver.execution(o["executionIds"][0], "completed"))["vars"]["greeting"]
        for o in (outcomes[0], outcomes[2])
    ]
    assert greetings == ["Hello Ann", "Hello Bob"]


QUIET = {
    "name": "Quiet",
    "blocks": [
        {"name": "Go", "type": "start", "next": "Wait"},
        {
            "name": "Wait",
            "type": "external_callback",
            "authenticationType": "USER",
            "requiredRoles": ["Partner"],
            "onFailPolicy": "IGNORE",
        },
    ],
}


async def test_ignore_policy_answers_200_and_leaves_the_execution_waiting(driver: Driver) -> None:
    flow = await driver.deploy(QUIET)
    callback = flow["triggers"][0]["callbackUrl"]
    execution_id = await driver.start(flow["flowId"], {})
    await driver.execution(execution_id, "waiting")
    _, outsider = await driver.user(["Other"])
    for token in (None, outsider, "forged-token"):
        response = await driver.callback(callback, {}, token)
        assert (response.status_code, response.content) == (200, b"")
    _, partner = await driver.user(["Partner"])
    accepted = await driver.callback(callback, {}, partner)
    assert (await driver.outcome(accepted))["outcome"] == "ACTIVATED"
    assert (await driver.execution(execution_id, "completed"))["status"] == "completed"


async def test_bad_requests_get_the_contract_errors(driver: Driver) -> None:
    flow = await driver.deploy(SELECT)
    callback = flow["triggers"][0]["callbackUrl"]
    unknown = callback.replace(flow["triggers"][0]["triggerId"], str(uuid.uuid4()))
    cases: list[tuple[str, dict[str, Any], int, int]] = [
        (unknown, {"json": {}}, 404, 4042),
        (
            callback,
            {"content": b"{nope", "headers": {"content-type": "application/json"}},
            400,
            2000,
        ),
        (callback, {"json": [1, 2]}, 400, 2001),
        (callback, {"content": b"x=1", "headers": {"content-type": "text/plain"}}, 415, 4150),
        (
            callback,
            {
                "content": b'{"a":"' + b"x" * (1024 * 1024) + b'"}',
                "headers": {"content-type": "application/json"},
            },
            413,
            4130,
        ),
    ]
    for url, kwargs, status, code in cases:
        response = await driver.http.post(url, **kwargs)
        assert (response.status_code, response.json()["code"]) == (status, code), url


async def test_an_activation_published_straight_to_kafka_resolves_its_raw_token(
    driver: Driver,
) -> None:
    flow = await driver.order_flow()
    execution_id = await driver.start(
        flow["flowId"], {"order": {"id": "k-1", "total": 3, "customer": "kim@example.com"}}
    )
    await driver.execution(execution_id, "waiting")
    psp, token = await driver.user(["PaymentGateway"])
    events = [
        ActivateTrigger(
            activationId=str(uuid.uuid4()),
            flowId=flow["flowId"],
            triggerId=flow["triggers"][0]["triggerId"],
            execution=execution_id,
            data={"orderId": "k-1", "amount": 3},
            userToken=user_token,
            receivedAt=1,
        )
        for user_token in ("not-a-token", token)
    ]
    await driver.publish(*((e.model_dump_json().encode(), execution_id.encode()) for e in events))
    done = await driver.execution(execution_id, "completed")
    assert done["vars"]["paidBy"] == psp["email"]
