"""The engine's adapters: HTTP against small in-process servers, Kafka's publisher
against a broker that is away."""

import asyncio
import gc

import httpx
import pytest
from faststream.kafka import KafkaBroker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from engine.adapters import AuthServiceTokens, HttpxRunner
from engine.adapters.kafka_publisher import KafkaPublisher
from engine.core.execution import HttpCall
from engine.ports import HttpError
from schemas.events import ActivationOutcome, ActivationSource, Outcome
from schemas.producer import Producer
from schemas.topics import Topics
from schemas.users import TokenIntrospection, User


async def echo(request: Request) -> Response:
    return JSONResponse(
        {
            "method": request.method,
            "body": await request.json(),
            "header": request.headers.get("x-order"),
        },
        status_code=201,
    )


async def big(request: Request) -> Response:
    return PlainTextResponse("x" * 5000)


async def introspect(request: Request) -> Response:
    token = (await request.json())["token"]
    user = User(objectId="U", ownerId="U", email="u@x.example", created=1)
    answer = TokenIntrospection(active=token == "good", user=user if token == "good" else None)
    return JSONResponse(answer.model_dump(mode="json"))


STUB = Starlette(
    routes=[
        Route("/echo", echo, methods=["POST"]),
        Route("/big", big),
        Route("/internal/tokens/introspect", introspect, methods=["POST"]),
    ]
)


def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=STUB))


async def test_a_json_response_becomes_the_blocks_result() -> None:
    async with client() as http:
        runner = HttpxRunner(http, max_bytes=1000)
        result = await runner(
            HttpCall("b", "POST", "http://stub/echo", {"X-Order": "o-1"}, {"a": [1]}, 5.0)
        )
    assert result["status"] == 201
    assert result["body"] == {"method": "POST", "body": {"a": [1]}, "header": "o-1"}
    assert result["headers"]["content-type"] == "application/json"


async def test_an_oversized_response_is_an_error() -> None:
    async with client() as http:
        runner = HttpxRunner(http, max_bytes=1000)
        with pytest.raises(HttpError, match="larger than 1000 bytes"):
            await runner(HttpCall("b", "GET", "http://stub/big", {}, None, 5.0))


async def test_an_unreachable_host_is_an_error() -> None:
    async with httpx.AsyncClient() as http:
        runner = HttpxRunner(http, max_bytes=1000)
        with pytest.raises(HttpError, match="failed"):
            await runner(HttpCall("b", "GET", "http://127.0.0.1:9/", {}, None, 2.0))


async def test_raw_tokens_resolve_through_the_auth_service() -> None:
    async with client() as http:
        tokens = AuthServiceTokens(http, "http://stub")
        user = await tokens.resolve("good")
        assert user is not None
        assert user.email == "u@x.example"
        assert await tokens.resolve("bad") is None


@pytest.mark.parametrize(
    ("url", "headers", "says"),
    [
        ("http://127.0.0.1:9/x", {"X-Name": "José"}, "not ASCII"),
        ("http://127.0.0.1:9/\u0000", {}, "not sent"),
        ("http://[::1/x", {}, "not sent"),
        ("http://127.0.0.1:99999/x", {}, "99999"),
        ("http://127.0.0.1:9/x", {}, "failed"),  # nothing listens on the discard port
        ("nope://x", {}, "failed"),
    ],
)
async def test_a_request_that_cannot_be_made_is_an_http_error_naming_the_cause(
    url: str, headers: dict[str, str], says: str
) -> None:
    async with httpx.AsyncClient() as http:
        runner = HttpxRunner(http, max_bytes=1000)
        with pytest.raises(HttpError, match=says):
            await runner(HttpCall("b", "GET", url, headers, None, 2.0))


async def test_a_batch_refused_halfway_leaves_no_send_unwatched() -> None:
    """The broker is away and the producer's buffer is full after a batch's first record:
    the batch fails at once (it is tried again), and the record already enqueued, which
    fails later, is no "exception never retrieved" in the engine's log."""
    loop = asyncio.get_running_loop()
    unhandled: list[str] = []
    loop.set_exception_handler(lambda _, context: unhandled.append(context["message"]))
    producer = Producer("127.0.0.1:9", 1.0, 16384, "test", timeout_seconds=0.5, buffer_bytes=1024)
    await producer.start(connect_seconds=0.1)
    publisher = KafkaPublisher(KafkaBroker(), Topics("t"), producer)
    outcomes = [
        ActivationOutcome(
            activationId=f"a{n}",
            flowId="f",
            triggerId="t",
            outcome=Outcome.NO_WAITER,
            detail="x" * 600,
            decidedAt=1,
            receivedAt=1,
            source=ActivationSource.HTTP,
        )
        for n in range(3)
    ]
    try:
        with pytest.raises(BufferError):
            await publisher.outcomes(outcomes)
        await asyncio.sleep(1.5)  # the enqueued record's own deadline passes
        gc.collect()
        await asyncio.sleep(0)
        assert unhandled == []
    finally:
        await producer.stop(flush_seconds=0.1)
