"""One trace from a caller's HTTP request to the execution's resume: the gateway and the
engine in one process on the real broker and store, their spans read from the SDK's
in-memory exporter."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pymongo import AsyncMongoClient

from engine.app import create_app as create_engine
from engine.settings import Settings as EngineSettings
from gateway.app import create_app as create_gateway
from gateway.settings import Settings as GatewaySettings
from schemas.tracing import new_provider

ADMIN = "trace-admin-key"
KEY = "trace-activation-key"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"  # the caller's trace
CALLER_SPAN = "00f067aa0ba902b7"
FLOW = {
    "name": "Traced",
    "blocks": [
        {"name": "s", "type": "start", "next": "Paid"},
        {
            "name": "Paid",
            "type": "external_callback",
            "condition": "data.orderId == input.orderId",
            "next": "Done",
        },
        {"name": "Done", "type": "assign", "assign": {"paid": "data.amount"}},
    ],
}


def _provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    """A provider as the services make one (sampling as the OTEL_* variables say: by
    default every trace, and a child as its parent), exporting into memory."""
    exporter = InMemorySpanExporter()
    provider = new_provider("test")
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


@contextlib.asynccontextmanager
async def _product(
    kafka: str, mongodb: str, name: str, traced: bool
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient, InMemorySpanExporter]]:
    provider, exporter = _provider()
    used = provider if traced else None
    async with product(kafka, mongodb, name, (used, used)) as (engine, gateway):
        yield engine, gateway, exporter


@contextlib.asynccontextmanager
async def product(
    kafka: str,
    mongodb: str,
    name: str,
    providers: tuple[TracerProvider | None, TracerProvider | None],
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """The engine and the gateway in this process, traced by `providers` (engine's,
    gateway's; None: off); their clients."""
    engine = create_engine(
        EngineSettings(
            kafka_bootstrap_servers=kafka,
            mongodb_url=mongodb,
            database=name,
            topic_prefix=name,
            consumer_group=name,
            topic_partitions=2,
            admin_key=ADMIN,
            activation_key=KEY,
        ),
        configure_logging=False,
        tracer_provider=providers[0],
    )
    gateway = create_gateway(
        GatewaySettings(
            kafka_bootstrap_servers=kafka, topic_prefix=name, admin_key=ADMIN, activation_key=KEY
        ),
        configure_logging=False,
        tracer_provider=providers[1],
    )
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(engine.router.lifespan_context(engine))
        await stack.enter_async_context(gateway.router.lifespan_context(gateway))
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app),
                    base_url=f"http://{role}",
                    headers={"X-Admin-Key": ADMIN},
                )
            )
            for role, app in (("engine", engine), ("gateway", gateway))
        ]
        async with asyncio.timeout(60):
            while (await clients[1].get("/readyz")).status_code != 200:
                await asyncio.sleep(0.1)
        yield clients[0], clients[1]
    mongo: AsyncMongoClient[Any] = AsyncMongoClient(mongodb)
    await mongo.drop_database(name)
    await mongo.close()


async def paid(
    engine: httpx.AsyncClient, gateway: httpx.AsyncClient, headers: dict[str, str]
) -> tuple[str, str]:
    """Deploy, start an execution, pay it with `headers`; (activation id, execution id)."""
    deployed = (await engine.post("/api/automation/flows", json=FLOW)).json()
    url = deployed["triggers"][0]["callbackUrl"].split("://", 1)[1].split("/", 1)[1]
    async with asyncio.timeout(30):  # the gateway learns the flow from the registry
        while (await gateway.post(f"/{url}?execution=no", json={})).status_code == 404:
            await asyncio.sleep(0.1)
    started = await engine.post(
        f"/api/automation/flow/{deployed['flowId']}/execute",
        params={"wait": 10},
        json={"orderId": "o-1"},
    )
    execution_id = started.json()["executionId"]
    paid = await gateway.post(f"/{url}", json={"orderId": "o-1", "amount": 3}, headers=headers)
    assert paid.status_code == 200, paid.text
    activation_id = paid.headers["x-activation-id"]
    async with asyncio.timeout(30):
        while (await engine.get(f"/api/automation/executions/{execution_id}")).json()[
            "status"
        ] != "completed":
            await asyncio.sleep(0.1)
    return activation_id, execution_id


def _in(spans: list[ReadableSpan], trace_id: str) -> dict[str, ReadableSpan]:
    return {
        s.name: s
        for s in spans
        if s.context is not None and format(s.context.trace_id, "032x") == trace_id
    }


@pytest.mark.integration
async def test_one_trace_spans_the_request_kafka_and_the_resume(
    kafka_bootstrap: str, mongodb_url: str, unique_name: str
) -> None:
    async with _product(kafka_bootstrap, mongodb_url, unique_name, traced=True) as (
        engine,
        gateway,
        exporter,
    ):
        traceparent = f"00-{TRACE}-{CALLER_SPAN}-01"
        activation_id, execution_id = await paid(engine, gateway, {"traceparent": traceparent})
        async with asyncio.timeout(10):
            while "decide" not in _in(list(exporter.get_finished_spans()), TRACE):
                await asyncio.sleep(0.1)
        spans = _in(list(exporter.get_finished_spans()), TRACE)
        accept, publish, decide = spans["accept"], spans["publish"], spans["decide"]
        # the caller's span is the parent of the gateway's, the gateway's of the engine's
        assert accept.parent is not None
        assert format(accept.parent.span_id, "016x") == CALLER_SPAN
        assert publish.parent is not None
        assert accept.context is not None
        assert publish.parent.span_id == accept.context.span_id
        assert decide.parent is not None
        assert publish.context is not None
        assert decide.parent.span_id == publish.context.span_id
        assert decide.attributes is not None
        assert decide.attributes["hookflow.activation_id"] == activation_id
        assert decide.attributes["hookflow.outcome"] == "ACTIVATED"
        # the decision's store calls are its spans: the lookup, the choice, the resume
        assert {"store.anyone_waiting", "store.begin_resuming", "store.save_execution"} <= set(
            spans
        )
        assert all(
            s.parent is not None
            and decide.context is not None
            and s.parent.span_id == decide.context.span_id
            for name, s in spans.items()
            if name.startswith("store.")
        )
        record = (await engine.get(f"/api/automation/activations/{activation_id}")).json()
        assert (record["traceId"], record["executionIds"]) == (TRACE, [execution_id])


@pytest.mark.integration
async def test_without_tracing_nothing_is_recorded_and_no_header_travels(
    kafka_bootstrap: str, mongodb_url: str, unique_name: str
) -> None:
    async with _product(kafka_bootstrap, mongodb_url, unique_name, traced=False) as (
        engine,
        gateway,
        exporter,
    ):
        activation_id, _ = await paid(
            engine, gateway, {"traceparent": f"00-{TRACE}-{CALLER_SPAN}-01"}
        )
        record = (await engine.get(f"/api/automation/activations/{activation_id}")).json()
        assert record["traceId"] is None
        assert exporter.get_finished_spans() == ()


@pytest.mark.integration
async def test_a_callback_its_caller_did_not_sample_is_not_recorded_but_keeps_its_trace(
    kafka_bootstrap: str, mongodb_url: str, unique_name: str
) -> None:
    async with _product(kafka_bootstrap, mongodb_url, unique_name, traced=True) as (
        engine,
        gateway,
        exporter,
    ):
        # flags 00: the caller did not sample its trace; neither service records it
        activation_id, execution_id = await paid(
            engine, gateway, {"traceparent": f"00-{TRACE}-{CALLER_SPAN}-00"}
        )
        record = (await engine.get(f"/api/automation/activations/{activation_id}")).json()
        # the log still names the caller's trace, for its own logs
        assert (record["traceId"], record["executionIds"]) == (TRACE, [execution_id])
        # a callback it did sample afterwards is recorded: the exporter is working
        traced, _ = await paid(engine, gateway, {"traceparent": f"00-{TRACE}-{CALLER_SPAN}-01"})
        async with asyncio.timeout(10):
            while "decide" not in _in(list(exporter.get_finished_spans()), TRACE):
                await asyncio.sleep(0.1)
        decided = [
            s.attributes["hookflow.activation_id"]
            for s in exporter.get_finished_spans()
            if s.name == "decide"
            and s.attributes
            and s.context
            and format(s.context.trace_id, "032x") == TRACE
        ]
        assert decided == [traced]
