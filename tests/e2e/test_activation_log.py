"""The activation log through the running product: why a callback resumed nothing, the
log filtered and paged, and those callbacks replayed once an execution waits, from the
API and the CLI."""

import asyncio
import json
import time
import uuid
from typing import Any

from typer.testing import CliRunner

from hookflow_cli.main import app as cli

from .driver import Driver
from .test_callbacks import early_payments


async def _cli(driver: Driver, *args: str) -> str:
    result = await asyncio.to_thread(
        CliRunner().invoke,
        cli,
        ["--admin-key", driver.product.admin_key, *args, "--engine", driver.product.engine],
        env={"COLUMNS": "250"},  # the table's width
    )
    assert result.exit_code == 0, result.output
    return result.output


async def _log(driver: Driver, **params: Any) -> dict[str, Any]:
    response = await driver.http.get(
        f"{driver.product.engine}/api/automation/activations", params=params
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_missed_callbacks_are_listed_with_why_and_replayed_once(driver: Driver) -> None:
    flow = await driver.deploy(early_payments(0))
    trigger = flow["triggers"][0]
    since = int(time.time() * 1000) - 1000
    orders = [f"o-{uuid.uuid4().hex[:6]}" for _ in range(3)]
    missed = [
        await driver.callback(trigger["callbackUrl"], {"orderId": o, "amount": n})
        for n, o in enumerate(orders)
    ]
    for response in missed:
        assert (await driver.outcome(response))["outcome"] == "NO_WAITER"

    page = await _log(driver, triggerId=trigger["triggerId"], outcome="NO_WAITER", limit=2)
    newest = [r["activationId"] for r in page["activations"]]
    assert newest == [r.headers["x-activation-id"] for r in missed[:0:-1]]
    record = page["activations"][0]
    assert record["reason"] == "no execution of this flow version waits at this trigger"
    assert (record["source"], record["body"], record["bodyKept"]) == (
        "http",
        {"orderId": orders[2], "amount": 2},
        True,
    )
    older = await _log(
        driver, triggerId=trigger["triggerId"], outcome="NO_WAITER", cursor=page["next"]
    )
    assert [r["activationId"] for r in older["activations"]] == [
        missed[0].headers["x-activation-id"]
    ]
    listed = await _cli(driver, "activations", "list", "--trigger", trigger["triggerId"])
    assert listed.count("NO_WAITER") == 3
    assert "no execution of this flow version waits" in listed

    executions = [await driver.start(flow["flowId"], {"orderId": o}) for o in orders]
    for execution_id in executions:
        await driver.execution(execution_id, "waiting")
    replayed = json.loads(
        await _cli(
            driver,
            "activations",
            "replay",
            "--trigger",
            trigger["triggerId"],
            "--outcome",
            "NO_WAITER",
            "--since",
            str(since),
            "--json",
        )
    )
    assert len(replayed["replayed"]) == 3
    assert replayed["skipped"] == []
    for execution_id in executions:
        done = await driver.execution(execution_id, "completed")
        assert [h["event"] for h in done["history"]].count("resumed") == 1
    first = replayed["replayed"][0]
    decided = await driver.outcome_of(first["activationId"])
    assert (decided["outcome"], decided["replayOf"], decided["source"]) == (
        "ACTIVATED",
        first["replayOf"],
        "replay",
    )
    # the same activation replayed again is the same replay: nothing resumes twice
    again = await driver.http.post(
        f"{driver.product.engine}/api/automation/activations/{first['replayOf']}/replay"
    )
    assert (again.status_code, again.json()["activationId"]) == (202, first["activationId"])
    replays = await _log(driver, triggerId=trigger["triggerId"], outcome="ACTIVATED")
    assert sorted(r["replayOf"] for r in replays["activations"]) == sorted(
        r.headers["x-activation-id"] for r in missed
    )


async def test_the_log_refuses_what_it_cannot_read(driver: Driver) -> None:
    engine = driver.product.engine
    for params in ({"outcome": "LOST"}, {"since": "yesterday"}, {"cursor": "garbage"}):
        response = await driver.http.get(f"{engine}/api/automation/activations", params=params)
        assert (response.status_code, response.json()["code"]) == (400, 2002), params
    unknown = await driver.http.post(f"{engine}/api/automation/activations/nope/replay")
    assert (unknown.status_code, unknown.json()["code"]) == (404, 4044)
    unnamed = await driver.http.post(
        f"{engine}/api/automation/activations/replay", json={"outcome": ["NO_WAITER"]}
    )
    assert (unnamed.status_code, unnamed.json()["code"]) == (400, 2004)


async def test_callbacks_refused_at_the_gateway_are_in_the_log_with_why(driver: Driver) -> None:
    guarded = {
        "name": f"Guarded {uuid.uuid4().hex[:8]}",
        "blocks": [
            {"name": "s", "type": "start", "next": "strict"},
            {
                "name": "strict",
                "type": "external_callback",
                "authenticationType": "USER",
                "requiredRoles": ["Partner"],
                "next": "quiet",
            },
            {
                "name": "quiet",
                "type": "external_callback",
                "authenticationType": "USER",
                "requiredRoles": ["Partner"],
                "onFailPolicy": "IGNORE",
            },
        ],
    }
    flow = await driver.deploy(guarded)
    strict, quiet = (t for t in flow["triggers"])
    _, outsider = await driver.user(["Other"])
    since = int(time.time() * 1000)  # after the deploy's probes (a bad selector, refused)
    not_json = await driver.http.post(
        strict["callbackUrl"], content=b"{oops", headers={"content-type": "application/json"}
    )
    no_role = await driver.callback(strict["callbackUrl"], {"n": 1}, outsider)
    ignored = await driver.callback(quiet["callbackUrl"], {"n": 2}, outsider)
    assert [r.status_code for r in (not_json, no_role, ignored)] == [400, 403, 200]

    # the caller of the ignored one got an id: it now finds why nothing happened
    found = await driver.outcome_of(ignored.headers["x-activation-id"])
    assert (found["outcome"], found["source"]) == ("IGNORED_AUTH", "http")
    assert "lacks the role(s) Partner" in found["reason"]

    async with asyncio.timeout(30):
        while (
            len(refused := (await _log(driver, flowId=flow["flowId"], since=since))["activations"])
            < 3
        ):
            await asyncio.sleep(0.1)
    by_trigger = {(r["triggerId"], r["outcome"]): r for r in refused}
    assert set(by_trigger) == {
        (strict["triggerId"], "REFUSED"),
        (quiet["triggerId"], "IGNORED_AUTH"),
    }
    reasons = sorted(r["reason"] for r in refused if r["outcome"] == "REFUSED")
    assert reasons[0].startswith("answered 400, code 2000: ")
    assert reasons[1].startswith("answered 403, code 1000: ")
    assert "lacks the role(s) Partner" in reasons[1]
    assert all(not r["bodyKept"] for r in refused)  # a refused body is never kept
    only = await _log(driver, flowId=flow["flowId"], outcome="REFUSED", since=since)
    assert len(only["activations"]) == 2
    # the deploy's probes were refused too, each with its reason
    probes = await _log(driver, flowId=flow["flowId"], until=since)
    assert {r["reason"].split(":")[0] for r in probes["activations"]} == {"answered 400, code 2002"}
