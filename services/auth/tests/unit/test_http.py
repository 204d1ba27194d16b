"""The auth service over HTTP, with the in-memory store and FastStream's test broker."""

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker

from auth.app import create_app
from auth.openapi import document
from auth.settings import Settings
from schemas.topics import Topics

from ..fakes import InMemoryUserStore

ADMIN = "admin-secret-key"
PASSWORD = "correct horse battery"


INTERNAL = "unit-internal-key"


@pytest.fixture
async def service() -> AsyncIterator[tuple[httpx.AsyncClient, InMemoryUserStore, list[Any]]]:
    broker, store, events = KafkaBroker(), InMemoryUserStore(), []

    @broker.subscriber(Topics("unit").auth_events)
    async def capture(body: dict[str, Any]) -> None:
        events.append(body)

    settings = Settings(
        topic_prefix="unit", admin_key=ADMIN, login_backoff_free=3, internal_key=INTERNAL
    )
    app = create_app(settings, store=store, broker=broker, configure_logging=False)
    async with TestKafkaBroker(broker), app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("10.0.0.7", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://auth") as http:
            yield http, store, events


async def register(http: httpx.AsyncClient, email: str = "bond@mi6.uk") -> dict[str, Any]:
    response = await http.post(
        "/api/users/register",
        json={"email": email, "password": PASSWORD, "firstName": "James", "age": 45},
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def login(
    http: httpx.AsyncClient, login: str = "bond@mi6.uk", password: str = PASSWORD
) -> httpx.Response:
    return await http.post("/api/users/login", json={"login": login, "password": password})


async def introspect(http: httpx.AsyncClient, token: str) -> dict[str, Any]:
    response = await http.post(
        "/internal/tokens/introspect", json={"token": token}, headers={"X-Internal-Key": INTERNAL}
    )
    return dict(response.json())


async def test_register_answers_the_user_object(service: Any) -> None:
    http, _, _ = service
    user = await register(http)
    assert set(user) == {
        "objectId",
        "ownerId",
        "email",
        "created",
        "updated",
        "lastLogin",
        "userStatus",
        "roles",
        "firstName",
        "age",
    }
    assert user["userStatus"] == "ENABLED"
    assert user["ownerId"] == user["objectId"]
    duplicate = await http.post(
        "/api/users/register", json={"email": "BOND@mi6.uk", "password": PASSWORD}
    )
    assert (duplicate.status_code, duplicate.json()["code"]) == (409, 3033)


async def test_login_gives_a_token_that_introspects_to_the_user(service: Any) -> None:
    http, _, _ = service
    user = await register(http)
    response = await login(http, "Bond@MI6.uk")
    assert response.status_code == 200
    body = response.json()
    token = body.pop("user-token")
    assert len(token) >= 43  # 256 bits, base64url
    assert body["objectId"] == user["objectId"]
    assert body["lastLogin"] is not None
    answer = await introspect(http, token)
    assert answer["active"] is True
    assert answer["user"]["email"] == "bond@mi6.uk"
    assert (await http.get(f"/api/users/isvalidusertoken/{token}")).json() is True


async def test_a_failed_login_does_not_say_whether_the_email_exists(service: Any) -> None:
    http, _, _ = service
    await register(http)
    wrong_password = await login(http, password="wrong password!")
    unknown_email = await login(http, login="nobody@mi6.uk")
    assert wrong_password.status_code == unknown_email.status_code == 401
    assert wrong_password.json() == unknown_email.json()


async def test_logout_kills_the_token_and_announces_it(service: Any) -> None:
    http, _, events = service
    await register(http)
    token = (await login(http)).json()["user-token"]
    assert (await http.get("/api/users/logout", headers={"user-token": token})).status_code == 200
    assert (await introspect(http, token)) == {"active": False}
    assert (await http.get(f"/api/users/isvalidusertoken/{token}")).json() is False
    assert events[-1]["kind"] == "token_revoked"
    again = await http.get("/api/users/logout", headers={"user-token": token})
    assert (again.status_code, again.json()["code"]) == (401, 3064)


async def test_roles_need_the_admin_key_and_are_announced(service: Any) -> None:
    http, _, events = service
    user = await register(http)
    path = f"/api/users/{user['objectId']}/roles"
    refused = await http.put(path, json={"roles": ["PaymentGateway"]})
    assert (refused.status_code, refused.json()["code"]) == (403, 3002)
    wrong = await http.put(path, json={"roles": ["X"]}, headers={"x-admin-key": "guess"})
    assert wrong.status_code == 403
    done = await http.put(path, json={"roles": ["PaymentGateway"]}, headers={"x-admin-key": ADMIN})
    assert done.json()["roles"] == ["PaymentGateway"]
    assert events[-1] == {
        "kind": "roles_changed",
        "userId": user["objectId"],
        "roles": ["PaymentGateway"],
        "at": events[-1]["at"],
    }
    token = (await login(http)).json()["user-token"]
    assert (await introspect(http, token))["user"]["roles"] == ["PaymentGateway"]
    missing = await http.put(
        "/api/users/NOPE/roles", json={"roles": []}, headers={"x-admin-key": ADMIN}
    )
    assert (missing.status_code, missing.json()["code"]) == (404, 4045)


async def test_a_disabled_users_tokens_are_inactive(service: Any) -> None:
    http, _, events = service
    user = await register(http)
    token = (await login(http)).json()["user-token"]
    response = await http.put(
        f"/api/users/{user['objectId']}/status",
        json={"userStatus": "DISABLED"},
        headers={"x-admin-key": ADMIN},
    )
    assert response.status_code == 200
    assert [e["kind"] for e in events[-2:]] == ["user_disabled", "token_revoked"]
    assert (await introspect(http, token)) == {"active": False}
    refused = await login(http)
    assert (refused.status_code, refused.json()["code"]) == (403, 3000)
    # enabled again: its old tokens stay dead
    await http.put(
        f"/api/users/{user['objectId']}/status",
        json={"userStatus": "ENABLED"},
        headers={"x-admin-key": ADMIN},
    )
    assert (await introspect(http, token)) == {"active": False}
    assert (await login(http)).status_code == 200


async def test_an_expired_token_is_inactive(service: Any) -> None:
    http, store, _ = service
    await register(http)
    token = (await login(http)).json()["user-token"]
    for stored in store.tokens.values():
        store.tokens[stored.token_hash] = type(stored)(
            stored.token_hash, stored.user_id, stored.created, stored.created
        )
    assert (await introspect(http, token)) == {"active": False}
    assert (await introspect(http, "never-issued")) == {"active": False}


async def test_login_attempts_are_rate_limited_with_retry_after(service: Any) -> None:
    http, _, _ = service
    await register(http)
    for _ in range(3):
        assert (await login(http, password="wrong password!")).status_code == 401
    limited = await login(http)
    assert limited.status_code == 429
    assert limited.json()["code"] == 4290
    assert 1 <= int(limited.headers["retry-after"]) <= 60


async def test_bad_bodies_get_the_contract_error(service: Any) -> None:
    http, _, _ = service
    cases = [
        (b"{", "application/json", 400, 2000),
        (b"[]", "application/json", 400, 2001),
        (b"email=a", "application/x-www-form-urlencoded", 415, 4150),
        (b'{"x": "' + b"a" * 70_000 + b'"}', "application/json", 413, 4130),
    ]
    for content, content_type, status, code in cases:
        response = await http.post(
            "/api/users/register", content=content, headers={"content-type": content_type}
        )
        assert (response.status_code, response.json()["code"]) == (status, code)


async def test_secrets_never_appear_in_answers_logs_or_storage(
    service: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    http, store, _ = service
    caplog.set_level(logging.DEBUG)
    user = await register(http)
    token = (await login(http)).json()["user-token"]
    await introspect(http, token)
    await http.get("/api/users/logout", headers={"user-token": token})
    assert PASSWORD not in str(user)
    assert PASSWORD not in caplog.text
    assert token not in caplog.text
    stored = str(store.users) + str(store.tokens)
    assert PASSWORD not in stored
    assert token not in stored


async def test_introspection_answers_only_holders_of_the_internal_credential(service: Any) -> None:
    http, _, _ = service
    await register(http)
    token = (
        await http.post("/api/users/login", json={"login": "bond@mi6.uk", "password": PASSWORD})
    ).json()["user-token"]
    for headers, status in [({}, 401), ({"X-Internal-Key": "wrong"}, 403)]:
        response = await http.post(
            "/internal/tokens/introspect", json={"token": token}, headers=headers
        )
        assert response.status_code == status
        assert response.json()["code"] == 1001
        assert "bond@mi6.uk" not in response.text
    assert (await introspect(http, token))["user"]["email"] == "bond@mi6.uk"


async def test_the_service_serves_its_document_and_it_names_every_route(service: Any) -> None:
    http, _, _ = service
    served = (await http.get("/openapi.json")).json()
    assert served == document()
    routes = {r.path for r in http._transport.app.routes}  # the app's own table
    documented = set(served["paths"])
    assert routes - {"/healthz", "/readyz", "/openapi.json"} == documented


async def test_operators_register_past_the_limit_and_proxies_are_believed_only_if_trusted() -> None:
    broker, store = KafkaBroker(), InMemoryUserStore()
    settings = Settings(
        topic_prefix="unit",
        admin_key=ADMIN,
        internal_key=INTERNAL,
        register_limit_per_address=1,
        trusted_proxies="10.0.0.0/8",
    )
    app = create_app(settings, store=store, broker=broker, configure_logging=False)

    def client(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 5000))
        return httpx.AsyncClient(transport=transport, base_url="http://auth")

    def body(n: int) -> dict[str, Any]:
        return {"email": f"user{n}@example.com", "password": PASSWORD}

    async with (
        TestKafkaBroker(broker),
        app.router.lifespan_context(app),
        client("203.0.113.5") as direct,
        client("10.0.0.2") as proxy,
    ):
        for n in range(3):  # an operator's registrations: no limit
            created = await direct.post(
                "/api/users/register", json=body(n), headers={"x-admin-key": ADMIN}
            )
            assert created.status_code == 201
        wrong = await direct.post(
            "/api/users/register", json=body(9), headers={"x-admin-key": "guess"}
        )
        assert (wrong.status_code, wrong.json()["code"]) == (403, 3002)
        assert (await direct.post("/api/users/register", json=body(10))).status_code == 201
        limited = await direct.post("/api/users/register", json=body(11))
        assert limited.status_code == 429
        # a client's own X-Forwarded-For changes nothing...
        spoofed = await direct.post(
            "/api/users/register", json=body(12), headers={"x-forwarded-for": "1.2.3.4"}
        )
        assert spoofed.status_code == 429
        # ...a trusted proxy's does: each client behind it has its own count
        for n, address in ((20, "198.51.100.1"), (21, "198.51.100.2")):
            behind = await proxy.post(
                "/api/users/register", json=body(n), headers={"x-forwarded-for": address}
            )
            assert behind.status_code == 201
        again = await proxy.post(
            "/api/users/register", json=body(22), headers={"x-forwarded-for": "198.51.100.1"}
        )
        assert again.status_code == 429


async def test_a_user_is_read_by_itself_or_the_management_roles(
    service: tuple[httpx.AsyncClient, InMemoryUserStore, list[Any]],
) -> None:
    http, _, _ = service
    user = await register(http)
    other = await register(http, "m@mi6.uk")
    token = (await login(http)).json()["user-token"]
    for path in (f"/api/users/{user['objectId']}", f"/api/data/Users/{user['objectId']}"):
        mine = await http.get(path, headers={"user-token": token})
        assert mine.status_code == 200
        assert mine.json()["email"] == "bond@mi6.uk"
    refused = await http.get(f"/api/users/{other['objectId']}", headers={"user-token": token})
    assert (refused.status_code, refused.json()["code"]) == (403, 1001)
    anonymous = await http.get(f"/api/users/{user['objectId']}")
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, 1001)
    admin = await http.get(f"/api/users/{other['objectId']}", headers={"x-admin-key": ADMIN})
    assert admin.json()["email"] == "m@mi6.uk"
    missing = await http.get("/api/users/NOPE", headers={"x-admin-key": ADMIN})
    assert (missing.status_code, missing.json()["code"]) == (404, 4045)


async def test_registration_and_login_answer_backendless_codes(
    service: tuple[httpx.AsyncClient, InMemoryUserStore, list[Any]],
) -> None:
    http, _, _ = service
    for body, code in (
        ({"password": PASSWORD}, 3013),
        ({"email": "not an email", "password": PASSWORD}, 3040),
        ({"email": "a@b.co"}, 3011),
    ):
        refused = await http.post("/api/users/register", json=body)
        assert (refused.status_code, refused.json()["code"]) == (400, code)
    empty = await http.post("/api/users/login", json={"login": "", "password": PASSWORD})
    assert (empty.status_code, empty.json()["code"]) == (400, 3006)
