"""The CLI against the running product: whole callback URLs, and --json everywhere."""

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from hookflow_cli.main import app as cli

from ..conftest import ROOT, Product


async def test_deploy_prints_whole_callback_urls_and_every_table_has_json(
    product: Product,
) -> None:
    runner = CliRunner()
    common = ["--admin-key", product.admin_key]
    engine = ["--engine", product.engine]
    flow = str(ROOT / "examples" / "order-flow.json")

    def run(*args: str) -> str:
        result = runner.invoke(cli, [*common, *args], terminal_width=60)
        assert result.exit_code == 0, result.output
        return result.output

    printed = await asyncio.to_thread(run, "deploy", flow, *engine)
    deployed = json.loads(await asyncio.to_thread(run, "deploy", flow, *engine, "--json"))
    url = deployed["triggers"][0]["callbackUrl"].replace(deployed["flowId"], "")
    assert len(url) > 60  # longer than the terminal is wide
    assert printed.count("/api/automation/flow/") == 1
    (line,) = [x for x in printed.splitlines() if "/api/automation/flow/" in x]
    assert line.strip().startswith("http")
    assert line.strip().endswith("/activate")
    letters = json.loads(await asyncio.to_thread(run, "dead-letters", *engine, "--json"))
    assert set(letters) == {"deadLetters", "next"}


async def test_activate_signs_a_request_for_a_signed_trigger_and_secrets_rotate(
    product: Product,
) -> None:
    runner = CliRunner()
    common = ["--admin-key", product.admin_key]
    engine, gateway = ["--engine", product.engine], ["--gateway", product.gateway]

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli, [*common, *args])
        assert result.exit_code == code, result.output
        return result.output

    flow = str(ROOT / "examples" / "github-approval" / "flow.json")
    deployed = json.loads(await asyncio.to_thread(run, "deploy", flow, *engine, "--json"))
    (trigger,) = deployed["triggers"]
    flow_id, trigger_id, secret = deployed["flowId"], trigger["triggerId"], trigger["signingSecret"]
    started = await asyncio.to_thread(
        run,
        "start",
        flow_id,
        "--input",
        '{"service": "b", "version": "1", "pullRequest": 7}',
        *gateway,
    )
    execution_id = started.strip()
    async with asyncio.timeout(30):
        while True:  # a start is decided asynchronously: until the execution waits
            result = await asyncio.to_thread(
                runner.invoke, cli, [*common, "show", execution_id, *engine, "--json"]
            )
            if result.exit_code == 0 and json.loads(result.output)["status"] == "waiting":
                break
            await asyncio.sleep(0.2)
    review = (
        '{"pull_request": {"number": 7}, "review": {"state": "approved", "user": {"login": "ann"}}}'
    )
    unsigned = await asyncio.to_thread(
        run, "activate", flow_id, trigger_id, "--data", review, *gateway, code=1
    )
    assert "401 (code 1002)" in unsigned
    signed = await asyncio.to_thread(
        run,
        "activate",
        flow_id,
        trigger_id,
        "--data",
        review,
        "--sign",
        secret,
        "--scheme",
        "github",
        "--wait",
        *gateway,
        *engine,
    )
    assert f"ACTIVATED {execution_id}" in signed
    rotated = json.loads(
        await asyncio.to_thread(run, "rotate-secret", flow_id, trigger_id, *engine, "--json")
    )
    assert rotated["signingSecret"].startswith("whsec_")
    assert rotated["signingSecret"] != secret


async def test_start_activate_status_and_stop_by_names_on_the_one_origin(
    product: Product, tmp_path: Path
) -> None:
    runner = CliRunner()
    origin = ["--gateway", product.gateway]  # the one origin: the engine's paths too

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli, ["--admin-key", product.admin_key, *args], terminal_width=200)
        assert result.exit_code == code, result.output
        return result.output

    name = f"CLI by names {uuid.uuid4().hex[:8]}"
    definition = {
        "name": name,
        "blocks": [
            {"name": "s", "type": "start", "next": "Go"},
            {"name": "Go", "type": "external_callback", "next": "Again"},
            {"name": "Again", "type": "external_callback"},
        ],
    }
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(definition))  # a small local file
    await asyncio.to_thread(run, "deploy", str(path), "--engine", product.engine)
    execution_id = (await asyncio.to_thread(run, "start", "--name", name, *origin)).strip()
    status: dict[str, Any] = {}
    for _ in range(100):
        status = json.loads(await asyncio.to_thread(run, "status", execution_id, *origin, "--json"))
        if status["status"] == "PENDING":
            break
        await asyncio.sleep(0.05)
    assert (status["flowName"], status["status"]) == (name, "PENDING")
    activated = await asyncio.to_thread(
        run,
        "activate",
        "--flow-name",
        name,
        "--trigger-name",
        "Go",
        "--wait",
        *origin,
        "--engine",
        product.engine,
    )
    assert "ACTIVATED" in activated
    stopped = await asyncio.to_thread(run, "stop", execution_id, *origin)
    assert "TERMINATED" in stopped
    await asyncio.to_thread(run, "start", *origin, code=2)  # neither an id nor a name
