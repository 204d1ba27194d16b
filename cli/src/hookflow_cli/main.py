"""`hookflow`: everyday work with a running hookflow from the terminal.

Service URLs come from flags or HOOKFLOW_GATEWAY_URL, HOOKFLOW_ENGINE_URL, HOOKFLOW_AUTH_URL.
The management API needs the admin key (`--admin-key` or HOOKFLOW_ADMIN_KEY) or the
user-token of a FlowAdmin or FlowViewer user (`--token` or HOOKFLOW_USER_TOKEN).
"""

import json
import time
import uuid
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
import yaml
from rich.console import Console
from rich.table import Table

from schemas.flows import SignatureScheme
from schemas.webhooks import sign

app = typer.Typer(
    help="Deploy flows, start and inspect executions, activate triggers.", no_args_is_help=True
)
users = typer.Typer(help="Users of the auth service.", no_args_is_help=True)
app.add_typer(users, name="user")
console = Console()
err = Console(stderr=True)

GatewayUrl = Annotated[str, typer.Option("--gateway", envvar="HOOKFLOW_GATEWAY_URL")]
EngineUrl = Annotated[str, typer.Option("--engine", envvar="HOOKFLOW_ENGINE_URL")]
AuthUrl = Annotated[str, typer.Option("--auth", envvar="HOOKFLOW_AUTH_URL")]
AsJson = Annotated[bool, typer.Option("--json", help="print the answer as JSON, whole")]
GATEWAY = "http://127.0.0.1:8080"
ENGINE = "http://127.0.0.1:8081"
AUTH = "http://127.0.0.1:8082"


_credentials: dict[str, str] = {}  # sent with every request (the global options)


@app.callback()
def credentials(
    admin_key: Annotated[
        str, typer.Option("--admin-key", envvar="HOOKFLOW_ADMIN_KEY", help="the admin key")
    ] = "",
    token: Annotated[
        str,
        typer.Option(
            "--token", envvar="HOOKFLOW_USER_TOKEN", help="a FlowAdmin or FlowViewer user-token"
        ),
    ] = "",
) -> None:
    """Deploy flows, start and inspect executions, activate triggers."""
    _credentials.clear()
    if admin_key:
        _credentials["X-Admin-Key"] = admin_key
    elif token:
        _credentials["user-token"] = token


def _request(method: str, url: str, **kwargs: Any) -> httpx.Response:
    headers = {**_credentials, **kwargs.pop("headers", {})}
    try:
        response = httpx.request(method, url, timeout=30, headers=headers, **kwargs)
    except httpx.HTTPError as exc:
        err.print(f"[red]cannot reach {url}: {exc}[/red]")
        raise typer.Exit(2) from exc
    if response.status_code >= 400:
        try:
            body = response.json()
            err.print(f"[red]{response.status_code} (code {body['code']}): {body['message']}[/red]")
        except (ValueError, KeyError, TypeError):
            err.print(f"[red]{response.status_code}: {response.text}[/red]")
        raise typer.Exit(1)
    return response


def _json_object(text: str | None, what: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        err.print(f"[red]{what} is not JSON: {exc}[/red]")
        raise typer.Exit(2) from exc
    if not isinstance(value, dict):
        err.print(f"[red]{what} must be a JSON object[/red]")
        raise typer.Exit(2)
    return value


@app.command()
def deploy(file: Path, engine: EngineUrl = ENGINE, as_json: AsJson = False) -> None:
    """Deploy a flow definition from a JSON or YAML file."""
    text = file.read_text()
    definition = yaml.safe_load(text) if file.suffix in (".yaml", ".yml") else json.loads(text)
    body = _request("POST", f"{engine}/api/automation/flows", json=definition).json()
    if as_json:
        print(json.dumps(body, indent=2))
        return
    console.print(f"[bold]{body['name']}[/bold] version {body['version']}: flow {body['flowId']}")
    for trigger in body["triggers"]:  # one line each: a URL is never cut to fit a table
        console.print(f"  {trigger['name']} ({trigger['triggerId']}):")
        console.print(trigger["callbackUrl"], soft_wrap=True, overflow="ignore", crop=False)
        if trigger.get("signingSecret"):  # shown this once: keep it
            console.print(f"    signing secret: {trigger['signingSecret']}", soft_wrap=True)


@app.command("rotate-secret")
def rotate_secret(
    flow_id: str, trigger_id: str, engine: EngineUrl = ENGINE, as_json: AsJson = False
) -> None:
    """Issue a new signing secret for a SIGNATURE trigger (the old one works 24 h more)."""
    url = f"{engine}/api/automation/flows/{flow_id}/triggers/{trigger_id}/secret"
    body = _request("POST", url).json()
    if as_json:
        print(json.dumps(body, indent=2))
        return
    console.print(f"signing secret: {body['signingSecret']}", soft_wrap=True)
    if body.get("previousSecretsValidUntil"):
        until = time.localtime(body["previousSecretsValidUntil"] / 1000)
        console.print(
            f"the previous one verifies until {time.strftime('%Y-%m-%d %H:%M:%S', until)}"
        )


@app.command()
def start(
    flow_id: Annotated[str | None, typer.Argument(help="a flow version's id")] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="start the live version of this flow instead")
    ] = None,
    input_json: Annotated[str | None, typer.Option("--input", help="input JSON object")] = None,
    gateway: GatewayUrl = GATEWAY,
) -> None:
    """Start an execution of a flow version (or of the live version of --name)."""
    body = _json_object(input_json, "--input")
    if (flow_id is None) == (name is None):
        err.print("[red]give a flow id or --name, one of them[/red]")
        raise typer.Exit(2)
    if name is not None:
        url = f"{gateway}/api/automation/flow/activate-by-name"
        answer = _request("POST", url, json={"name": name, "initialData": body})
    else:
        answer = _request("POST", f"{gateway}/api/automation/flow/{flow_id}/execute", json=body)
    execution_id = answer.json()["executionId"]
    console.print(execution_id or "not started: the start block's IGNORE policy dropped it")


@app.command()
def show(execution_id: str, engine: EngineUrl = ENGINE, as_json: AsJson = False) -> None:
    """Show an execution: status, what it waits on, variables and history."""
    ex = _request("GET", f"{engine}/api/automation/executions/{execution_id}").json()
    if as_json:
        print(json.dumps(ex, indent=2))
        return
    console.print(
        f"[bold]{ex['executionId']}[/bold] of flow {ex['flowId']}: [cyan]{ex['status']}[/cyan]"
    )
    if ex.get("group"):
        group = ex["group"]
        console.print(f"waiting at triggers group {group['block']!r}:")
        for member in group["members"]:
            arrived = member.get("arrivedAt")
            when = time.strftime("%H:%M:%S", time.localtime(arrived / 1000)) if arrived else None
            state = f"arrived at {when}" if when else "awaited"
            console.print(f"  {member['name']} ({member['triggerId']}): {state}")
    elif ex["waitingOn"]:
        console.print(f"waiting on: {', '.join(ex['waitingOn'])}")
    if ex.get("deadline"):
        due = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ex["deadline"] / 1000))
        console.print(f"times out at: {due} ({max(0, ex['deadline'] / 1000 - time.time()):.0f} s)")
    if ex.get("error"):
        console.print(f"[red]error: {ex['error']}[/red]")
    variables = Table("variable", "value")
    for name, value in ex["vars"].items():
        variables.add_row(name, json.dumps(value))
    console.print(variables)
    history = Table("at", "event", "block", "detail")
    for entry in ex["history"]:
        at = time.strftime("%H:%M:%S", time.localtime(entry["at"] / 1000))
        history.add_row(at, entry["event"], entry.get("block") or "", entry.get("detail") or "")
    console.print(history)


@app.command()
def activate(
    flow_id: Annotated[str | None, typer.Argument(help="the flow version's id")] = None,
    trigger_id: Annotated[str | None, typer.Argument(help="the trigger's id")] = None,
    flow_name: Annotated[
        str | None, typer.Option(help="by names: the flow's (its live version)")
    ] = None,
    trigger_name: Annotated[str | None, typer.Option(help="by names: the trigger's")] = None,
    data: Annotated[str | None, typer.Option(help="JSON object to post")] = None,
    token: Annotated[str | None, typer.Option(help="user-token header")] = None,
    execution: Annotated[str | None, typer.Option(help="all, any or an execution id")] = None,
    key: Annotated[str | None, typer.Option(help="Idempotency-Key header")] = None,
    wait: Annotated[bool, typer.Option(help="wait for the outcome")] = False,
    secret: Annotated[
        str | None, typer.Option("--sign", help="sign with this secret (SIGNATURE triggers)")
    ] = None,
    scheme: Annotated[
        SignatureScheme, typer.Option(help="the signature scheme of --sign")
    ] = SignatureScheme.STANDARD_WEBHOOKS,
    message_id: Annotated[
        str | None, typer.Option(help="the message id of --sign (default: a new one)")
    ] = None,
    gateway: GatewayUrl = GATEWAY,
    engine: EngineUrl = ENGINE,
) -> None:
    """Call a trigger's callback URL, as an external system would (signed, with --sign),
    or activate it by --flow-name and --trigger-name."""
    headers = {k: v for k, v in (("user-token", token), ("Idempotency-Key", key)) if v}
    params = {"execution": execution} if execution else {}
    by_names = flow_name is not None and trigger_name is not None
    if by_names == (flow_id is not None and trigger_id is not None):
        err.print(
            "[red]give the flow's and the trigger's ids, or --flow-name and --trigger-name[/red]"
        )
        raise typer.Exit(2)
    url = f"{gateway}/api/automation/flow/{flow_id}/trigger/{trigger_id}/activate"
    if by_names:
        url = f"{gateway}/api/automation/flow/trigger/activate-by-name"
        params.update({"flowName": flow_name or "", "triggerName": trigger_name or ""})
    body = json.dumps(_json_object(data, "--data"), separators=(",", ":")).encode()
    if secret:  # signed over exactly the bytes sent
        message = message_id or f"msg_{uuid.uuid4().hex}"
        headers.update(sign(scheme, secret, body, message, int(time.time())))
    answer = _request(
        "POST",
        url,
        content=body,
        headers={"content-type": "application/json", **headers},
        params=params,
    )
    activation_id = answer.headers.get("x-activation-id", "")
    console.print(f"accepted: activation {activation_id}")
    if wait:
        outcome(activation_id, engine=engine)


@app.command()
def outcome(activation_id: str, engine: EngineUrl = ENGINE, within: float = 30.0) -> None:
    """Show what became of an activation (waits until it is decided)."""
    deadline = time.monotonic() + within
    while True:
        response = httpx.get(
            f"{engine}/api/automation/activations/{activation_id}",
            timeout=10,
            headers=_credentials,
        )
        if response.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if response.status_code != 200:
        err.print("[yellow]no outcome yet[/yellow]")
        raise typer.Exit(1)
    body = response.json()
    console.print(f"{body['outcome']} {' '.join(body['executionIds'])}")


@app.command("dead-letters")
def dead_letters(
    replay: Annotated[
        str | None, typer.Option("--replay", help="publish this dead letter again")
    ] = None,
    limit: int = 50,
    cursor: Annotated[str | None, typer.Option(help="the next page, as printed")] = None,
    engine: EngineUrl = ENGINE,
    as_json: AsJson = False,
) -> None:
    """List the messages the engine gave up on, or replay one (--replay ID)."""
    if replay:
        letter = _request("POST", f"{engine}/api/automation/dead-letters/{replay}/replay").json()
        console.print(f"replayed {letter['deadLetterId']} to {letter['topic']}")
        return
    params: dict[str, Any] = {"limit": limit}
    if cursor:
        params["cursor"] = cursor
    page = _request("GET", f"{engine}/api/automation/dead-letters", params=params).json()
    if as_json:
        print(json.dumps(page, indent=2))
        return
    table = Table("id", "kind", "topic", "activation / execution", "error", "replayed")
    for letter in page["deadLetters"]:
        table.add_row(
            letter["deadLetterId"],
            letter["kind"],
            f"{letter['topic']}[{letter['partition']}]@{letter['offset']}",
            letter["activationId"] or letter["executionId"] or "",
            letter["error"][:120],
            "yes" if letter["replayedAt"] else "",
        )
    console.print(table)
    if page["next"]:
        console.print(f"more: hookflow dead-letters --cursor {page['next']}")


@users.command("create")
def create_user(
    email: str,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True)],
    role: Annotated[list[str] | None, typer.Option(help="repeat for several roles")] = None,
    auth: AuthUrl = AUTH,
) -> None:
    """Register a user and give it roles (roles need the admin key: --admin-key)."""
    user = _request(
        "POST", f"{auth}/api/users/register", json={"email": email, "password": password}
    ).json()
    if role:
        user = _request(
            "PUT",
            f"{auth}/api/users/{user['objectId']}/roles",
            json={"roles": role},
        ).json()
    console.print(f"user {user['objectId']} ({user['email']}) roles: {', '.join(user['roles'])}")


@app.command()
def login(
    email: str,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True)],
    auth: AuthUrl = AUTH,
) -> None:
    """Log in and print the user-token."""
    body = _request(
        "POST", f"{auth}/api/users/login", json={"login": email, "password": password}
    ).json()
    console.print(body["user-token"])


from hookflow_cli import activations, runs  # noqa: E402  # register their commands on `app`

__all__ = ["activations", "app", "runs"]
