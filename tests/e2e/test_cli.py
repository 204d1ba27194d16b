"""The CLI against the running product: whole callback URLs, and --json everywhere."""

import asyncio
import json

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
