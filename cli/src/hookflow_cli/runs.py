"""`hookflow status` and `hookflow stop`: FlowRunner's view of an execution, on the one
origin (the gateway's URL passes them on to the engine)."""

import json
from typing import Annotated, Any

import typer

from hookflow_cli.main import GATEWAY, AsJson, GatewayUrl, _request, app, console

FlowOption = Annotated[
    str | None,
    typer.Option("--flow", help="the execution's flow version (read from it when not given)"),
]


def _base(gateway: str, execution_id: str, flow_id: str | None) -> str:
    if flow_id is None:
        found = _request("GET", f"{gateway}/api/automation/executions/{execution_id}").json()
        flow_id = found["flowId"]
    return f"{gateway}/api/automation/flow/{flow_id}/execution/{execution_id}"


def _print(status: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(status, indent=2))
        return
    ended = f", {status['completion']} in {status['durationMs']} ms" if status["completion"] else ""
    console.print(
        f"[bold]{status['executionId']}[/bold] of {status['flowName']} "
        f"v{status['flowVersion']}: [cyan]{status['status']}[/cyan]{ended}"
    )
    if status.get("error"):
        console.print(f"[red]error: {status['error']}[/red]")


def _command(method: str, suffix: str, doc: str) -> None:
    def command(
        execution_id: str,
        flow_id: FlowOption = None,
        gateway: GatewayUrl = GATEWAY,
        as_json: AsJson = False,
    ) -> None:
        url = _base(gateway, execution_id, flow_id) + suffix
        _print(_request(method, url).json(), as_json)

    command.__doc__ = doc
    app.command(suffix.strip("/") or "status")(command)


_command(
    "GET",
    "",
    "An execution's status: RUNNING, PENDING (waiting at a callback), COMPLETED or "
    "TERMINATED, and how it ended.",
)
_command("POST", "/stop", "Stop an execution: it ends TERMINATED, and its waits are released.")
