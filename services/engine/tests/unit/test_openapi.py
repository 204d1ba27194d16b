import re

import httpx
import schemathesis
from faststream.kafka import KafkaBroker, TestKafkaBroker
from starlette.routing import Route

from engine import openapi
from engine.app import create_app
from engine.settings import Settings
from schemas.frontdoor import Service, service_of

from ..fakes import InMemoryStore

KEY = "unit-admin-key"
ADMIN = {"X-Admin-Key": KEY}


def test_the_committed_document_is_current() -> None:
    assert openapi.COMMITTED.read_text() == openapi.rendered(), (
        "docs/openapi/engine.json is stale: run `make schemas` and commit it"
    )


async def test_the_engine_serves_a_document_of_every_management_route() -> None:
    broker = KafkaBroker()
    app = create_app(
        Settings(topic_prefix="unit", admin_key=KEY),
        store=InMemoryStore(),
        broker=broker,
        configure_logging=False,
    )
    routes = {r.path for r in app.routes if isinstance(r, Route) and r.path.startswith("/api/")}
    assert routes == set(openapi.document()["paths"])
    async with TestKafkaBroker(broker), app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://engine", headers=ADMIN
        ) as http:
            assert (await http.get("/openapi.json")).json() == openapi.document()


def test_the_document_is_valid_openapi() -> None:
    schema = schemathesis.openapi.from_dict(openapi.document())
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) == 23  # the log, a replay, replays by filter, its summary, system


def test_every_management_route_is_served_on_the_one_origin() -> None:
    """The gateway's front door passes each of the engine's paths on (else the console,
    served through it, finds its calls answered 404); a start by id is the gateway's own
    there (the same request, answered the same way)."""
    elsewhere = {
        path: service_of(re.sub(r"\{[^}]+\}", "x", path)) for path in openapi.document()["paths"]
    }
    assert {p: s for p, s in elsewhere.items() if s != Service.ENGINE} == {
        "/api/automation/flow/{flowId}/execute": Service.GATEWAY
    }
