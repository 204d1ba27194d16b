"""Triggers groups through the running product: an `all` group meets within its window,
starts over when the window passes, and definitions that break a group's rules are
refused at deploy. (The `any` race runs in examples/payment-race.)"""

import asyncio
import uuid
from typing import Any

import pytest
from typer.testing import CliRunner

from hookflow_cli.main import app as cli

from .driver import Driver


def rendezvous(window: int) -> dict[str, Any]:
    member = {"type": "external_callback", "condition": "data.orderId == input.orderId"}
    return {
        "name": f"Captured and reserved {uuid.uuid4().hex[:8]}",
        "blocks": [
            {"name": "s", "type": "start", "next": "Ready"},
            {
                "name": "Ready",
                "type": "triggers_group",
                "mode": "all",
                "windowSeconds": window,
                "triggers": [
                    {"name": "Payment Captured", **member},
                    {"name": "Stock Reserved", **member},
                ],
                "next": "Ship",
            },
            {
                "name": "Ship",
                "type": "assign",
                "assign": {
                    "arrived": "results['Ready'].activated",
                    "warehouse": "results['Stock Reserved'].data.warehouse",
                },
            },
        ],
    }


async def test_an_all_group_goes_on_when_every_member_arrived(driver: Driver) -> None:
    flow = await driver.deploy(rendezvous(3600))
    urls = {t["name"]: t["callbackUrl"] for t in flow["triggers"]}
    execution_id = await driver.start(flow["flowId"], {"orderId": "o-1"})
    waiting = await driver.execution(execution_id, "waiting")
    assert sorted(waiting["waitingOn"]) == sorted(t["triggerId"] for t in flow["triggers"])

    reserved = await driver.callback(urls["Stock Reserved"], {"orderId": "o-1", "warehouse": "B"})
    assert (await driver.outcome(reserved))["executionIds"] == [execution_id]
    still = await driver.execution(execution_id, "waiting")
    assert [t["name"] for t in flow["triggers"] if t["triggerId"] in still["waitingOn"]] == [
        "Payment Captured"
    ]
    assert still["history"][-1]["event"] == "arrived"
    assert [(m["name"], m["arrivedAt"] is not None) for m in still["group"]["members"]] == [
        ("Payment Captured", False),
        ("Stock Reserved", True),
    ]
    shown = await asyncio.to_thread(
        CliRunner().invoke,
        cli,
        ["--admin-key", driver.product.admin_key, "show", execution_id],
        env={"HOOKFLOW_ENGINE_URL": driver.product.engine},
        terminal_width=200,
    )
    assert "waiting at triggers group 'Ready'" in shown.output, shown.output
    assert "Payment Captured (" in shown.output
    assert [
        line.split(": ")[-1][:10] for line in shown.output.splitlines() if "  " in line[:3]
    ] == [
        "awaited",
        "arrived at",
    ]
    again = await driver.callback(urls["Stock Reserved"], {"orderId": "o-1", "warehouse": "C"})
    assert (await driver.outcome(again))["outcome"] == "NO_WAITER"  # it counts once

    await driver.callback(urls["Payment Captured"], {"orderId": "o-1"})
    done = await driver.execution(execution_id, "completed")
    assert done["vars"] == {"arrived": ["Stock Reserved", "Payment Captured"], "warehouse": "B"}


async def test_an_all_group_whose_window_passes_starts_over(driver: Driver) -> None:
    flow = await driver.deploy(rendezvous(1))
    urls = {t["name"]: t["callbackUrl"] for t in flow["triggers"]}
    execution_id = await driver.start(flow["flowId"], {"orderId": "o-2"})
    await driver.execution(execution_id, "waiting")
    await driver.outcome(await driver.callback(urls["Payment Captured"], {"orderId": "o-2"}))
    async with asyncio.timeout(30):  # the timer fires within 2 s of the window's end
        while True:
            state = await driver.execution(execution_id)
            if state["history"][-1]["event"] == "windowPassed":
                break
            await asyncio.sleep(0.2)
    assert state["status"] == "waiting"
    assert state["history"][-1]["dropped"] == ["Payment Captured"]
    assert len(state["waitingOn"]) == 2  # both are awaited again
    reserved = {"orderId": "o-2", "warehouse": "A"}
    await driver.outcome(await driver.callback(urls["Stock Reserved"], reserved))
    await driver.callback(urls["Payment Captured"], {"orderId": "o-2"})
    done = await driver.execution(execution_id, "completed")
    assert done["vars"]["arrived"] == ["Stock Reserved", "Payment Captured"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda g: g["triggers"].pop(), "a group needs at least two"),
        (lambda g: g.update(windowSeconds=31_536_001), "windowSeconds"),
        (lambda g: g.pop("windowSeconds"), "mode all needs windowSeconds"),
        (lambda g: g["triggers"][0].update(next="Ship"), "a triggers group's member has no next"),
    ],
)
async def test_a_group_breaking_its_rules_is_refused_with_the_reason(
    driver: Driver, change: Any, reason: str
) -> None:
    definition = rendezvous(60)
    change(definition["blocks"][1])
    response = await driver.http.post(
        f"{driver.product.engine}/api/automation/flows", json=definition
    )
    assert response.status_code == 400
    assert response.json()["code"] == 2003
    assert reason in response.json()["message"]
