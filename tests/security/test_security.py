"""One test per rule of "Who may call what" (the contract) and docs/security.md.

Most run against the product started as separate processes (the `product` fixture);
rules that need a second client address or a clock run against the service's own
classes.
"""

import asyncio
import contextlib
import json
import os
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from auth.accounts import Accounts, Limits, RateLimited
from auth.core import Backoff, RateLimiter
from auth.passwords import Passwords
from gateway.tokens import TokenCache
from schemas.requests import RequestError
from schemas.users import TokenIntrospection, User

from ..conftest import ROOT
from ..e2e.driver import Driver

PAID = {"orderId": "o-1", "amount": 5}


# -- the management API ---------------------------------------------------------------


async def test_the_management_api_needs_the_admin_key_or_a_flow_role(driver: Driver) -> None:
    flow = await driver.order_flow()
    engine, gateway = driver.product.engine, driver.product.gateway
    _, admin = await driver.user(["FlowAdmin"])
    _, viewer = await driver.user(["FlowViewer"])
    _, clerk = await driver.user(["Clerk"])
    reads = [
        f"{engine}/api/automation/flows/{flow['flowId']}",
        f"{engine}/api/automation/flow/{flow['flowId']}/executions",
        f"{engine}/api/automation/dead-letters",
    ]
    writes = [
        (f"{engine}/api/automation/flows", {"name": "x", "blocks": [{"name": "a", "type": "end"}]}),
        (f"{engine}/api/automation/flow/{flow['flowId']}/execute", {}),
        (f"{gateway}/api/automation/flow/{flow['flowId']}/execute", {}),
    ]
    async with httpx.AsyncClient(timeout=30) as bare:
        for headers, read, write in [
            ({}, 401, 401),
            ({"X-Admin-Key": "wrong"}, 401, 401),
            ({"X-Admin-Key": "wrong", "user-token": admin}, 401, 401),  # a wrong key is wrong
            ({"user-token": "no such token"}, 401, 401),
            ({"user-token": clerk}, 403, 403),
            ({"user-token": viewer}, 200, 403),
            ({"user-token": admin}, 200, None),
            ({"X-Admin-Key": driver.product.admin_key}, 200, None),
        ]:
            for url in reads:
                answer = await bare.get(url, headers=headers)
                assert answer.status_code == read, (headers, url, answer.text)
                if read != 200:
                    assert answer.json()["code"] == 1001
            for url, body in writes:
                answer = await bare.post(url, json=body, headers=headers)
                if write is None:
                    assert answer.status_code < 300, (headers, url, answer.text)
                else:
                    assert (answer.status_code, answer.json()["code"]) == (write, 1001), url
        for open_path in ("/healthz", "/readyz", "/metrics"):
            assert (await bare.get(engine + open_path)).status_code == 200
            assert (await bare.get(gateway + open_path)).status_code == 200


# -- outbound calls -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "auth/readyz",  # another service
        "auth/internal/tokens/introspect",
        "engine/api/automation/flows",  # the management API, from inside
        "169.254.169.254/latest/meta-data/",
        "localhost",
    ],
)
async def test_a_flow_cannot_call_an_internal_address(driver: Driver, target: str) -> None:
    base = {
        "auth": driver.product.auth,
        "engine": driver.product.engine,
    }
    head, _, rest = target.partition("/")
    url = f"{base[head]}/{rest}" if head in base else f"http://{target}"
    if head == "localhost":
        url = driver.product.engine.replace("127.0.0.1", "localhost") + "/healthz"
    flow = await driver.deploy(
        {
            "name": f"Reach {head}",
            "blocks": [
                {"name": "s", "type": "start", "next": "call"},
                {"name": "call", "type": "http_request", "url": json.dumps(url)},
            ],
        }
    )
    execution_id = await driver.start(flow["flowId"], {})
    failed = await driver.execution(execution_id, "failed")
    assert "egress policy" in failed["error"]
    assert failed["history"][-1]["event"] == "failed"
    assert "call" not in failed["results"]


async def test_the_allow_listed_stub_is_reachable(driver: Driver) -> None:
    flow = await driver.order_flow()  # it notifies the customer through the stub
    execution_id = await driver.start(
        flow["flowId"], {"order": {"id": "o-1", "total": 5, "customer": "a@b.example"}}
    )
    await driver.execution(execution_id, "waiting")
    _, token = await driver.user(["PaymentGateway"])
    callback = flow["triggers"][0]["callbackUrl"]
    await driver.callback(f"{callback}?execution={execution_id}", PAID, token)
    done = await driver.execution(execution_id, "completed")
    assert done["results"]["Notify Customer"]["status"] == 202  # the stub took it


# -- Kafka ------------------------------------------------------------------------------


async def test_a_user_published_straight_to_kafka_is_ignored(driver: Driver) -> None:
    flow = await driver.order_flow()
    execution_id = await driver.start(
        flow["flowId"], {"order": {"id": "o-1", "total": 5, "customer": "a@b.example"}}
    )
    await driver.execution(execution_id, "waiting")
    forged = {
        "activationId": str(uuid.uuid4()),
        "flowId": flow["flowId"],
        "triggerId": flow["triggers"][0]["triggerId"],
        "execution": execution_id,
        "data": PAID,
        "user": {
            "objectId": "X",
            "ownerId": "X",
            "email": "forger@example.com",
            "created": 1,
            "roles": ["PaymentGateway", "FlowAdmin"],
        },
        "source": "http",  # claiming to come from the gateway changes nothing
        "receivedAt": 1,
    }
    await driver.publish((json.dumps(forged).encode(), execution_id.encode()))
    answer = await driver.outcome_of(forged["activationId"])
    assert answer["outcome"] == "IGNORED_AUTH"
    assert (await driver.execution(execution_id))["status"] == "waiting"


# -- the auth service -------------------------------------------------------------------


class _Store:
    """Just enough of the user store for login: one user."""

    def __init__(self, user: Any) -> None:
        self.user = user

    async def user_by_email(self, email: str) -> Any:
        return self.user

    def __getattr__(self, name: str) -> Any:
        async def nothing(*args: Any) -> Any:
            return self.user

        return nothing


async def test_guessing_from_one_address_never_locks_the_user_out_elsewhere() -> None:
    from auth.core import StoredUser

    passwords = Passwords(at_once=2)
    user = StoredUser("U", "bond@mi6.uk", await passwords.hash("the right one"), 1, {})
    now = [1_000_000]
    limits = Limits(
        token_ttl_ms=60_000,
        per_pair=Backoff(free=3, base_ms=1000, max_ms=60_000),
        per_address=RateLimiter(1000, 60_000),
        registrations=RateLimiter(1000, 60_000),
    )

    class Events:
        async def publish(self, event: Any) -> None:
            return None

    accounts = Accounts(_Store(user), passwords, Events(), limits, lambda: now[0])
    waits, statuses = [], []
    for _ in range(8):  # the attacker, from one address
        try:
            await accounts.login({"login": "bond@mi6.uk", "password": "guess"}, "10.6.6.6")
        except RateLimited as limited:
            waits.append(limited.retry_after)
            now[0] += limited.retry_after * 1000
        except RequestError as wrong:
            statuses.append(wrong.status)
        now[0] += 1
    # 3 failures free, then one try per delay, each delay twice the last
    assert statuses == [401] * 5
    assert waits == [1, 2, 4]
    # the real user, from home, is not held back at all
    answer = await accounts.login(
        {"login": "bond@mi6.uk", "password": "the right one"}, "192.0.2.7"
    )
    assert "user-token" in answer


@contextlib.asynccontextmanager
async def auth_service(mongodb_url: str, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The auth service over the real store, with these settings, from address 10.0.0.9."""
    from faststream.kafka import KafkaBroker, TestKafkaBroker
    from pymongo import AsyncMongoClient

    from auth.app import create_app
    from auth.settings import Settings

    database = f"sec_{uuid.uuid4().hex[:8]}"
    broker = KafkaBroker()
    app = create_app(
        Settings(topic_prefix="sec", mongodb_url=mongodb_url, database=database, **settings),
        broker=broker,
        configure_logging=False,
    )
    try:
        async with TestKafkaBroker(broker), app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=("10.0.0.9", 1))
            async with httpx.AsyncClient(transport=transport, base_url="http://auth") as http:
                yield http
    finally:
        client: AsyncMongoClient[Any] = AsyncMongoClient(mongodb_url)
        await client.drop_database(database)
        await client.close()


async def test_registration_is_limited_per_address(mongodb_url: str) -> None:
    async with auth_service(mongodb_url, register_limit_per_address=2) as http:
        answers = [
            await http.post(
                "/api/users/register",
                json={"email": f"u{n}@example.com", "password": "long enough"},
            )
            for n in range(3)
        ]
    assert [a.status_code for a in answers] == [201, 201, 429]
    assert answers[2].json()["code"] == 4290
    assert "retry-after" in answers[2].headers


async def test_at_most_the_configured_number_of_password_hashes_run_at_once() -> None:
    passwords = Passwords(at_once=2)
    await asyncio.gather(*(passwords.hash(f"password {n}") for n in range(8)))
    assert passwords.most_at_once == 2


@pytest.mark.parametrize(
    "field",
    [
        "objectId",
        "ownerId",
        "created",
        "updated",
        "lastLogin",
        "userStatus",
        "roles",
        "Roles",
        "EMAIL",
        " email",
        "userstatus",
    ],
)
async def test_registration_refuses_system_fields(driver: Driver, field: str) -> None:
    body = {"email": f"{uuid.uuid4().hex[:8]}@example.com", "password": "long enough", field: 1}
    answer = await driver.http.post(f"{driver.product.auth}/api/users/register", json=body)
    assert (answer.status_code, answer.json()["code"]) == (400, 2004)
    assert field in answer.json()["message"]


async def test_registration_can_require_the_admin_key(mongodb_url: str) -> None:
    body = {"email": "a@example.com", "password": "long enough"}
    async with auth_service(mongodb_url, registration="admin", admin_key="k") as http:
        refused = await http.post("/api/users/register", json=body)
        taken = await http.post("/api/users/register", json=body, headers={"X-Admin-Key": "k"})
    assert (refused.status_code, refused.json()["code"]) == (403, 3002)
    assert taken.status_code == 201


async def test_disabling_a_user_revokes_its_tokens_for_good(driver: Driver) -> None:
    user, token = await driver.user(["PaymentGateway"])
    auth = driver.product.auth
    for status in ("DISABLED", "ENABLED"):
        changed = await driver.http.put(
            f"{auth}/api/users/{user['objectId']}/status", json={"userStatus": status}
        )
        assert changed.status_code == 200
    answer = await driver.http.get(f"{auth}/api/users/isvalidusertoken/{token}")
    assert answer.json() is False


async def test_auths_internal_routes_answer_only_the_products_services(driver: Driver) -> None:
    _, token = await driver.user(["FlowAdmin"])
    introspect = f"{driver.product.auth}/internal/tokens/introspect"
    for headers, status in [({}, 401), ({"X-Internal-Key": driver.product.admin_key}, 403)]:
        answer = await driver.http.post(introspect, json={"token": token}, headers=headers)
        assert answer.status_code == status
        assert answer.json()["code"] == 1001
    # the engine and the gateway hold the credential: a user-token still resolves
    flow = await driver.deploy(
        {
            "name": "Needs a user",
            "blocks": [{"name": "Hook", "type": "external_callback", "authenticationType": "USER"}],
        }
    )
    accepted = await driver.http.post(
        flow["triggers"][0]["callbackUrl"], json={}, headers={"user-token": token}
    )
    assert accepted.status_code == 200


async def test_the_gateways_token_cache_never_outlives_the_token() -> None:
    wall = [1_000_000]
    mono = [0.0]
    user = User(objectId="U", ownerId="U", email="u@x.example", created=1)

    async def introspect(token: str) -> TokenIntrospection:
        return TokenIntrospection(active=True, user=user, exp=wall[0] + 2_000)  # 2 s left

    cache = TokenCache(
        introspect, 10, ttl=60.0, negative_ttl=5.0, clock=lambda: mono[0], wall_ms=lambda: wall[0]
    )
    assert await cache.user("t") == user
    calls = []

    async def expired(token: str) -> TokenIntrospection:
        calls.append(token)
        return TokenIntrospection(active=False)

    cache._introspect = expired  # the auth service now says: expired
    mono[0] += 1.0
    wall[0] += 1_000
    assert await cache.user("t") == user  # within the token's life: from the cache
    mono[0] += 1.5
    wall[0] += 1_500
    assert await cache.user("t") is None  # past its expiry: asked again, and refused
    assert calls == ["t"]


# -- secrets ----------------------------------------------------------------------------


def _environment(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(): v.decode(errors="replace") for k, v in pairs}


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(child) for child in text]
    return found


async def test_the_admin_key_reaches_only_the_processes_that_check_it(driver: Driver) -> None:
    pids = driver.product.pids
    assert pids, "needs the product started by this session"
    # make the engine start its expression workers
    flow = await driver.deploy(
        {
            "name": "Workers",
            "blocks": [
                {"name": "s", "type": "start", "next": "cb"},
                {"name": "cb", "type": "external_callback", "condition": "data.x.all(i, i > 0)"},
            ],
        }
    )
    execution_id = await driver.start(flow["flowId"], {})
    await driver.execution(execution_id, "waiting")
    answer = await driver.callback(flow["triggers"][0]["callbackUrl"], {"x": [1]})
    assert (await driver.outcome(answer))["outcome"] == "ACTIVATED"
    key = driver.product.admin_key
    holders = {
        name: sorted(k for k, v in _environment(pid).items() if v == key)
        for name, pid in pids.items()
    }
    assert holders == {
        "engine": ["HOOKFLOW_ENGINE_ADMIN_KEY"],
        "auth": ["HOOKFLOW_AUTH_ADMIN_KEY"],
        "gateway": ["HOOKFLOW_GATEWAY_ADMIN_KEY"],
        "stub": [],
    }
    workers = _children(pids["engine"])
    assert workers, "the engine's expression workers"
    for worker in workers:
        assert key not in _environment(worker).values()


def test_local_logs_run_files_and_keys_are_readable_by_their_owner_only(
    tmp_path: Path, kafka_bootstrap: str, mongodb_url: str
) -> None:
    env = {
        **os.environ,
        "HOOKFLOW_LOCAL_DIR": str(tmp_path),
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "MONGODB_URL": mongodb_url,
        "HOOKFLOW_ENGINE_TOPIC_PREFIX": f"sec_{uuid.uuid4().hex[:6]}",
        **{f"HOOKFLOW_{n}_PORT": str(_free_port()) for n in ("ENGINE", "AUTH", "GATEWAY", "STUB")},
    }
    env["HOOKFLOW_AUTH_TOPIC_PREFIX"] = env["HOOKFLOW_GATEWAY_TOPIC_PREFIX"] = env[
        "HOOKFLOW_ENGINE_TOPIC_PREFIX"
    ]
    env["HOOKFLOW_ENGINE_DATABASE"] = env["HOOKFLOW_ENGINE_TOPIC_PREFIX"] + "_engine"
    env["HOOKFLOW_AUTH_DATABASE"] = env["HOOKFLOW_ENGINE_TOPIC_PREFIX"] + "_auth"
    script = str(ROOT / "deploy/local/services.sh")
    started = subprocess.run(  # noqa: S603  # the project's own script
        [script, "start"], env=env, capture_output=True, text=True, timeout=180
    )
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        files = [*tmp_path.glob("logs/*.log"), *tmp_path.glob("run/*.pid"), tmp_path / "admin-key"]
        assert len(files) >= 9
        modes = {str(f.relative_to(tmp_path)): oct(f.stat().st_mode & 0o777) for f in files}
        assert set(modes.values()) == {"0o600"}, modes
    finally:
        subprocess.run([script, "stop"], env=env, capture_output=True, timeout=120)  # noqa: S603


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_nothing_a_flow_viewer_can_read_holds_a_token_or_a_key(driver: Driver) -> None:
    """A FlowAdmin's user-token, published straight to Kafka in a message the engine can
    take and in one it cannot (a dead letter), is in no answer a FlowViewer can read;
    neither are the product's keys."""
    flow = await driver.deploy(
        {
            "name": "Seen by viewers",
            "blocks": [
                {"name": "Hook", "type": "external_callback", "next": "Who"},
                {"name": "Who", "type": "assign", "assign": {"by": "user.email"}},
            ],
        }
    )
    admin, admin_token = await driver.user(["FlowAdmin"])
    _, viewer_token = await driver.user(["FlowViewer"])
    base = {
        "flowId": flow["flowId"],
        "triggerId": flow["triggers"][0]["triggerId"],
        "userToken": admin_token,
        "receivedAt": 1,
    }
    taken = {**base, "activationId": str(uuid.uuid4()), "data": {"n": 1}}
    letter = {**base, "activationId": str(uuid.uuid4()), "data": {"n": [1] * 3}, "execution": 7}
    for message in (taken, letter):
        await driver.publish((json.dumps(message).encode(), b"k"))
    activated = await driver.outcome_of(taken["activationId"])
    assert activated["outcome"] == "ACTIVATED"
    assert (await driver.outcome_of(letter["activationId"]))["outcome"] == "INVALID"

    engine = driver.product.engine
    viewer = {"user-token": viewer_token}
    readable = [
        f"{engine}/api/automation/flows/{flow['flowId']}",
        f"{engine}/api/automation/flow/{flow['flowId']}/executions",
        f"{engine}/api/automation/activations/{taken['activationId']}",
        f"{engine}/api/automation/activations/{letter['activationId']}",
        f"{engine}/api/automation/dead-letters?limit=100",
        *(f"{engine}/api/automation/executions/{e}" for e in activated["executionIds"]),
    ]
    secrets_ = [admin_token, driver.product.admin_key, *_process_keys(driver)]
    async with httpx.AsyncClient(timeout=30, headers=viewer) as client:
        letters = (await client.get(readable[4])).json()["deadLetters"]
        (parked,) = [d for d in letters if d["activationId"] == letter["activationId"]]
        for url in [*readable, f"{engine}/api/automation/dead-letters/{parked['deadLetterId']}"]:
            response = await client.get(url)
            assert response.status_code == 200, url
            for secret in secrets_:
                assert secret not in response.text, url
    execution = await driver.execution(activated["executionIds"][0], "completed")
    assert execution["vars"]["by"] == admin["email"]  # the token was resolved, not kept


def _process_keys(driver: Driver) -> list[str]:
    """The activation and internal keys the product's processes were given."""
    keys = []
    for pid in driver.product.pids.values():
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        for entry in environ:
            name, _, value = entry.decode(errors="replace").partition("=")
            if name.endswith(("_ACTIVATION_KEY", "_INTERNAL_KEY")) and value:
                keys.append(value)
    assert keys, "the product's processes hold keys"
    return keys
