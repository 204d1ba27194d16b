"""The second wave's callback features through the real services: early callbacks
(`bufferSeconds`), GET callbacks and signed callbacks."""

import asyncio
import uuid
from typing import Any

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
        done = [await driver.execution(e) for e in pair]
        while any(d["status"] == "running" for d in done):
            done = [await driver.execution(e) for e in pair]
        assert sorted(d["status"] for d in done) == ["completed", "waiting"], order
        (winner,) = [d for d in done if d["status"] == "completed"]
        assert winner["vars"] == {"amount": n}
        assert [e["event"] for e in winner["history"]].count("resumed") == 1
        settled = await driver.outcome_of(early[n].headers["x-activation-id"], until="ACTIVATED")
        assert settled["executionIds"] == [winner["executionId"]]


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
    query = [("execution", execution_id), ("orderId", "o-get"), ("amount", "7"), ("tag", "a")]
    query.append(("tag", "b"))
    response = await driver.http.get(url, params=query)
    assert (response.status_code, response.content) == (200, b"")
    assert (await driver.outcome(response))["outcome"] == "ACTIVATED"
    done = await driver.execution(execution_id, "completed")
    assert done["results"]["pay"]["data"] == {"orderId": "o-get", "amount": "7", "tag": ["a", "b"]}
    assert done["vars"] == {"amount": "7"}
