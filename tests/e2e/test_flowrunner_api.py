"""FlowRunner's API on the one origin (the gateway's URL), through the real services:
starts by id and name under the start block's rules, execution status, context and
block results, the blocking call, stop, activation by names across versions, and what
the front door keeps private."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from .driver import Driver

pytestmark = pytest.mark.integration

FLOW = "/api/automation/flow"


def named(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


def looping_flow(start: dict[str, Any] | None = None) -> dict[str, Any]:
    """start -> count = 0 -> Step (a callback) -> count + 1 -> twice -> return count."""
    return {
        "name": named("Loop"),
        "blocks": [
            {"name": "Begin", "type": "start", "next": "Init", **(start or {})},
            {"name": "Init", "type": "assign", "assign": {"count": "0"}, "next": "Step"},
            {"name": "Step", "type": "external_callback", "next": "Count"},
            {
                "name": "Count",
                "type": "assign",
                "assign": {"count": "vars.count + 1"},
                "next": "More",
            },
            {
                "name": "More",
                "type": "branch",
                "if": "vars.count < 2",
                "then": "Step",
                "else": "Answer",
            },
            {"name": "Answer", "type": "return", "value": "vars.count"},
        ],
    }


@pytest.fixture
async def anonymous(driver: Driver) -> AsyncIterator[httpx.AsyncClient]:
    """A client with no credential, on the one origin."""
    async with httpx.AsyncClient(base_url=driver.product.gateway, timeout=30) as http:
        yield http


async def start(http: httpx.AsyncClient, flow_id: str, data: Any, **headers: str) -> str:
    response = await http.post(f"{FLOW}/{flow_id}/activate", json=data, headers=headers)
    assert response.status_code == 200, response.text
    return str(response.json()["executionId"])


async def waiting_at(driver: Driver, execution_id: str, passes: int) -> dict[str, Any]:
    """The execution once it waits, its callback having been resumed `passes` times."""
    async with asyncio.timeout(30):
        while True:
            found = await driver.execution(execution_id)
            resumed = [h for h in found["history"] if h["event"] == "resumed"]
            if found["status"] == "waiting" and len(resumed) == passes:
                return found
            await asyncio.sleep(0.05)


async def test_status_context_and_block_results_follow_a_loop(
    driver: Driver, anonymous: httpx.AsyncClient
) -> None:
    flow = await driver.deploy(looping_flow({"authenticationType": "NONE"}))
    flow_id, step = flow["flowId"], flow["triggers"][0]["callbackUrl"]
    execution_id = await start(anonymous, flow_id, {"order": "o-1"})
    await waiting_at(driver, execution_id, 0)
    origin = driver.http  # the admin key, on the one origin
    base = f"{driver.product.gateway}{FLOW}/{flow_id}/execution/{execution_id}"

    status = (await origin.get(base)).json()
    assert status["status"] == "PENDING"
    assert (status["completion"], status["finishedAt"], status["hasErrors"]) == (None, None, False)
    assert (status["flowName"], status["flowVersion"]) == (flow["name"], 1)
    not_yet = await origin.get(f"{base}/block/result", params={"alias": "Step"})
    assert (not_yet.status_code, not_yet.json()["code"]) == (404, 28161)

    for n in (1, 2):
        response = await driver.callback(f"{step}?execution={execution_id}", {"n": n})
        assert response.status_code == 200
        if n == 1:
            await waiting_at(driver, execution_id, 1)
    await driver.execution(execution_id, "completed")

    status = (await origin.get(base)).json()
    assert (status["status"], status["completion"], status["hasErrors"]) == (
        "COMPLETED",
        "NORMAL",
        False,
    )
    assert status["durationMs"] == status["finishedAt"] - status["startedAt"] >= 0
    latest = (await origin.get(f"{base}/block/result", params={"alias": "Step"})).json()
    assert (latest["occurrence"], latest["occurrenceCount"]) == (2, 2)
    assert latest["result"]["data"] == {"n": 2}
    first = await origin.get(f"{base}/block/result", params={"alias": "Step", "occurrence": 1})
    assert first.json()["result"]["data"] == {"n": 1}
    assert first.json()["executedAt"] <= latest["executedAt"]
    answer = (await origin.get(f"{base}/block/result", params={"alias": "Answer"})).json()
    assert answer["result"] == {"data": 2}
    cases: list[tuple[dict[str, str], tuple[int, int]]] = [
        ({"alias": "Step", "occurrence": "3"}, (400, 28162)),
        ({"alias": "Nope"}, (404, 28159)),
    ]
    for params, expected in cases:
        refused = await origin.get(f"{base}/block/result", params=params)
        assert (refused.status_code, refused.json()["code"]) == expected

    context = (
        await origin.get(f"{driver.product.gateway}{FLOW}/execution-context/{execution_id}")
    ).json()
    assert context["input"] == {"order": "o-1"}
    assert context["vars"]["count"] == 2
    assert context["results"]["Step"]["data"] == {"n": 2}
    root = driver.product.gateway + FLOW
    other_flow = await origin.get(f"{root}/{uuid.uuid4()}/execution/{execution_id}")
    unknown = await origin.get(f"{root}/{flow_id}/execution/{uuid.uuid4()}")
    for refused in (other_flow, unknown):
        assert (refused.status_code, refused.json()["code"]) == (404, 28068)


async def test_the_blocking_call_answers_at_the_return_block_or_runs_out(
    driver: Driver, anonymous: httpx.AsyncClient
) -> None:
    definition = {
        "name": named("Quote"),
        "blocks": [
            {"name": "Begin", "type": "start", "authenticationType": "NONE", "next": "Price"},
            {
                "name": "Price",
                "type": "return",
                "value": '{"who": input.name, "total": input.n * 2}',
                "next": "Later",
            },
            {"name": "Later", "type": "external_callback"},
        ],
    }
    flow = await driver.deploy(definition)
    blocking = f"{FLOW}/{flow['flowId']}/activate-blocking"
    answered = await anonymous.post(blocking, params={"name": "ann"}, json={"n": 21})
    assert answered.status_code == 200, answered.text
    assert answered.json()["result"] == {"who": "ann", "total": 42}
    assert answered.json()["status"] in ("RUNNING", "PENDING")  # it goes on past `return`
    await driver.execution(answered.json()["executionId"], "waiting")

    # by name, with a GET: the query is the data, so `n` is a string, `n * 2` fails, and
    # the call answers when the failed run ends
    by_name = await anonymous.get(
        f"{FLOW}/{definition['name']}/activate-blocking", params={"name": "bo", "n": "5"}
    )
    assert by_name.status_code == 200, by_name.text
    assert (by_name.json()["status"], by_name.json()["result"]) == ("COMPLETED", None)
    failed = await driver.execution(by_name.json()["executionId"], "failed")
    assert failed["flowId"] == flow["flowId"]

    for params, body in (
        ({"name": "ann"}, {"name": "bo", "n": 1}),
        ({"waitResponseTimeoutSeconds": "301"}, {"n": 1}),
        ({"waitResponseTimeoutSeconds": "soon"}, {"n": 1}),
    ):
        refused = await anonymous.post(blocking, params=params, json=body)
        assert (refused.status_code, refused.json()["code"]) == (400, 28064), refused.text
    unknown = await anonymous.get(f"{FLOW}/{named('Nobody')}/activate-blocking")
    assert (unknown.status_code, unknown.json()["code"]) == (404, 4047)

    waits = await driver.deploy(looping_flow({"authenticationType": "NONE"}))
    ran_out = await anonymous.get(
        f"{FLOW}/{waits['flowId']}/activate-blocking", params={"waitResponseTimeoutSeconds": 1}
    )
    assert (ran_out.status_code, ran_out.json()["code"]) == (400, 28118)
    execution_id = ran_out.json()["message"].split()[1]
    assert (await driver.execution(execution_id, "waiting"))["status"] == "waiting"


async def test_stop_terminates_and_releases_the_wait(
    driver: Driver, anonymous: httpx.AsyncClient
) -> None:
    flow = await driver.deploy(looping_flow({"authenticationType": "USER"}))
    owner, owner_token = await driver.user([])
    _, stranger_token = await driver.user([])
    execution_id = await start(anonymous, flow["flowId"], {}, **{"user-token": owner_token})
    await waiting_at(driver, execution_id, 0)
    stop = f"{FLOW}/{flow['flowId']}/execution/{execution_id}/stop"

    refused = await anonymous.post(stop, headers={"user-token": stranger_token})
    assert (refused.status_code, refused.json()["code"]) == (403, 1001)
    stopped = await anonymous.post(stop, headers={"user-token": owner_token})
    assert stopped.status_code == 200, stopped.text
    assert (stopped.json()["status"], stopped.json()["completion"]) == ("TERMINATED", "NORMAL")
    state = await driver.execution(execution_id, "terminated")
    assert state["waitingOn"] == []
    late = await driver.callback(flow["triggers"][0]["callbackUrl"], {"n": 1})
    assert (await driver.outcome(late))["outcome"] == "NO_WAITER"
    again = await anonymous.post(stop, headers={"user-token": owner_token})
    assert again.json()["status"] == "TERMINATED"

    done_flow = await driver.deploy(
        {
            "name": named("Done"),
            "blocks": [{"name": "s", "type": "start", "authenticationType": "NONE"}],
        }
    )
    done_id = await start(anonymous, done_flow["flowId"], {})
    await driver.execution(done_id, "completed")
    ended = await driver.http.post(
        f"{driver.product.gateway}{FLOW}/{done_flow['flowId']}/execution/{done_id}/stop"
    )
    assert (ended.status_code, ended.json()["code"]) == (409, 4091)
    assert owner["objectId"]


async def test_the_start_blocks_rules_decide_who_starts_and_who_is_user(
    driver: Driver, anonymous: httpx.AsyncClient
) -> None:
    guarded = await driver.deploy(
        looping_flow({"authenticationType": "BACKENDLESS", "requiredRoles": ["Buyer"]})
    )
    buyer, buyer_token = await driver.user(["Buyer"])
    _, plain_token = await driver.user([])
    activate = f"{FLOW}/{guarded['flowId']}/activate"
    for headers, expected in (({}, 401), ({"user-token": plain_token}, 403)):
        refused = await anonymous.post(activate, json={}, headers=headers)
        assert (refused.status_code, refused.json()["code"]) == (expected, 1000)
    execution_id = await start(
        anonymous, guarded["flowId"], {"a": 1}, **{"user-token": buyer_token}
    )
    context = await anonymous.get(
        f"{FLOW}/execution-context/{execution_id}", headers={"user-token": buyer_token}
    )
    for _ in range(100):
        if context.status_code == 200:
            break
        await asyncio.sleep(0.05)
        context = await anonymous.get(
            f"{FLOW}/execution-context/{execution_id}", headers={"user-token": buyer_token}
        )
    assert context.json()["user"]["objectId"] == buyer["objectId"]  # the starter is `user`
    stranger = await anonymous.get(
        f"{FLOW}/execution-context/{execution_id}", headers={"user-token": plain_token}
    )
    assert (stranger.status_code, stranger.json()["code"]) == (403, 1001)

    ignoring = await driver.deploy(
        looping_flow({"authenticationType": "USER", "onFailPolicy": "IGNORE"})
    )
    dropped = await anonymous.post(f"{FLOW}/{ignoring['flowId']}/activate", json={})
    assert (dropped.status_code, dropped.json()) == (200, {"executionId": None})
    listed = await driver.http.get(
        f"{driver.product.gateway}{FLOW}/{ignoring['flowId']}/executions"
    )
    assert listed.json()["executions"] == []

    admin_only = await driver.deploy(looping_flow())  # no authenticationType: ADMIN
    refused = await anonymous.post(f"{FLOW}/{admin_only['flowId']}/activate", json={})
    assert (refused.status_code, refused.json()["code"]) == (401, 1000)
    by_name = await driver.http.post(
        f"{driver.product.gateway}{FLOW}/activate-by-name",
        json={"name": admin_only["name"], "initialData": {"x": 1}},
    )
    assert by_name.status_code == 200
    started = await driver.execution(by_name.json()["executionId"], "waiting")
    assert started["flowId"] == admin_only["flowId"]

    conditional = await driver.deploy(
        looping_flow({"authenticationType": "NONE", "condition": "data.amount > 10"})
    )
    small = await start(anonymous, conditional["flowId"], {"amount": 3})
    big = await start(anonymous, conditional["flowId"], {"amount": 30})
    skipped = await driver.execution(small, "terminated")
    assert skipped["history"][-1]["detail"] == "the start condition is false"
    await driver.execution(big, "waiting")


async def test_a_trigger_activated_by_names_reaches_older_versions(
    driver: Driver, anonymous: httpx.AsyncClient
) -> None:
    first = await driver.deploy(looping_flow({"authenticationType": "NONE"}))
    old_id = await start(anonymous, first["flowId"], {})
    await waiting_at(driver, old_id, 0)
    definition = looping_flow({"authenticationType": "NONE"})
    definition["name"] = first["name"]
    second = await driver.deploy(definition)
    assert second["version"] == 2
    response = await anonymous.post(
        f"{FLOW}/trigger/activate-by-name",
        params={"flowName": first["name"], "triggerName": "Step"},
        json={"n": 1},
    )
    assert response.status_code == 200, response.text
    outcome = await driver.outcome(response)
    assert (outcome["outcome"], outcome["executionIds"]) == ("ACTIVATED", [old_id])
    assert outcome["flowId"] == second["flowId"]  # named: the live version
    for params, code in (
        ({"flowName": named("Nobody"), "triggerName": "Step"}, 4047),
        ({"flowName": first["name"], "triggerName": "Nope"}, 4048),
    ):
        refused = await anonymous.post(f"{FLOW}/trigger/activate-by-name", params=params, json={})
        assert (refused.status_code, refused.json()["code"]) == (404, code)


async def test_the_front_door_passes_public_paths_on_and_nothing_else(
    driver: Driver, anonymous: httpx.AsyncClient
) -> None:
    info = await anonymous.get("/api/info")
    assert info.json()["appId"]
    introspect = await anonymous.post(
        "/internal/tokens/introspect", json={"token": "x"}, headers={"x-internal-key": "guess"}
    )
    assert (introspect.status_code, introspect.json()["code"]) == (404, 4040)
    # the engine's management API and console through the same origin
    flows = await anonymous.get(
        "/api/automation/flows", headers={"x-admin-key": driver.product.admin_key}
    )
    assert flows.status_code == 200
    assert (await anonymous.get("/console/")).status_code == 200
    login = await anonymous.post(
        "/api/users/login", json={"login": "nobody@example.com", "password": "wrong one"}
    )
    assert (login.status_code, login.json()["code"]) == (401, 3003)
