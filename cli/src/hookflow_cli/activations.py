"""`hookflow activations list` and `hookflow activations replay`: the activation log."""

import json
import re
import time
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from hookflow_cli.main import ENGINE, AsJson, EngineUrl, _request, app, console, err

activations = typer.Typer(
    help="The activation log: every callback, its outcome and why.", no_args_is_help=True
)
app.add_typer(activations, name="activations")

Flow = Annotated[str | None, typer.Option("--flow", help="a flow version's id")]
Trigger = Annotated[str | None, typer.Option("--trigger", help="a trigger's id")]
Outcomes = Annotated[
    str | None, typer.Option("--outcome", help="one outcome or several: NO_WAITER,FILTERED")
]
Since = Annotated[
    str | None,
    typer.Option("--since", help="received since: 15m, 2h, 7d ago, or an ISO 8601 time"),
]
Until = Annotated[str | None, typer.Option("--until", help="received before (same forms)")]

_AGO = re.compile(r"^(\d+)([smhd])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _instant(text: str | None) -> int | None:
    """`15m` (that long ago), epoch milliseconds or an ISO 8601 time, as epoch ms."""
    if not text:
        return None
    text = text.strip()
    found = _AGO.match(text)
    if found:
        return int((time.time() - int(found[1]) * _UNIT[found[2]]) * 1000)
    if text.isdigit():
        return int(text)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        err.print(f"[red]{text!r} is not a time: 15m, 2h, 7d, epoch ms or ISO 8601[/red]")
        raise typer.Exit(2) from exc
    return int((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp() * 1000)


def _filter(
    flow: str | None, trigger: str | None, outcome: str | None, since: str | None, until: str | None
) -> dict[str, Any]:
    """The filters as the API takes them (`outcome` a list)."""
    where = {
        "flowId": flow,
        "triggerId": trigger,
        "outcome": [o.strip().upper() for o in outcome.split(",")] if outcome else None,
        "since": _instant(since),
        "until": _instant(until),
    }
    return {key: value for key, value in where.items() if value is not None}


@activations.command("list")
def list_activations(
    flow: Flow = None,
    trigger: Trigger = None,
    outcome: Outcomes = None,
    since: Since = None,
    until: Until = None,
    limit: int = 50,
    cursor: Annotated[str | None, typer.Option(help="the next page, as printed")] = None,
    engine: EngineUrl = ENGINE,
    as_json: AsJson = False,
) -> None:
    """List activations, newest first, with their outcome and why."""
    params = {**_filter(flow, trigger, outcome, since, until), "limit": limit}
    if "outcome" in params:
        params["outcome"] = ",".join(params["outcome"])
    if cursor:
        params["cursor"] = cursor
    page = _request("GET", f"{engine}/api/automation/activations", params=params).json()
    if as_json:
        print(json.dumps(page, indent=2))
        return
    table = Table("received", "activation", "trigger", "source", "outcome", "executions", "why")
    for record in page["activations"]:
        received = datetime.fromtimestamp(record["receivedAt"] / 1000, UTC)
        table.add_row(
            received.strftime("%Y-%m-%d %H:%M:%S"),
            record["activationId"],
            record["triggerId"],
            record["source"] or "",
            record["outcome"],
            " ".join(record["executionIds"]),
            (record["reason"] or "")[:100],
        )
    console.print(table)
    if page["next"]:
        console.print(f"more: hookflow activations list --cursor {page['next']}")


@activations.command("replay")
def replay(
    activation_id: Annotated[
        str | None, typer.Argument(help="one activation; or filters for every match")
    ] = None,
    flow: Flow = None,
    trigger: Trigger = None,
    outcome: Outcomes = None,
    since: Since = None,
    until: Until = None,
    limit: Annotated[int, typer.Option(help="at most this many (filters)")] = 100,
    engine: EngineUrl = ENGINE,
    as_json: AsJson = False,
) -> None:
    """Send a logged activation again (FlowAdmin), or every one matching the filters
    ("every NO_WAITER of this trigger since 2h"); each becomes a new activation with
    `replayOf`, and replaying the same one twice replays it once."""
    base = f"{engine}/api/automation/activations"
    if activation_id:
        answer = _request("POST", f"{base}/{activation_id}/replay").json()
        replayed, skipped = [answer], []
    else:
        if not (flow or trigger):
            err.print("[red]name an activation, or --flow or --trigger[/red]")
            raise typer.Exit(2)
        where = {**_filter(flow, trigger, outcome, since, until), "limit": limit}
        answer = _request("POST", f"{base}/replay", json=where).json()
        replayed, skipped = answer["replayed"], answer["skipped"]
    if as_json:
        print(json.dumps({"replayed": replayed, "skipped": skipped}, indent=2))
        return
    for item in replayed:
        console.print(f"replayed {item['replayOf']} as {item['activationId']}")
    if skipped:
        console.print(f"[yellow]{len(skipped)} no longer keep their body: not replayed[/yellow]")
