"""The services' traces exported over OTLP into a real Jaeger (the one `make traces`
runs, built from the Go module proxy by `deploy/tools.sh jaeger`), read back from its
query API and drawn as `make traces` draws them."""

import importlib.util
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from schemas.tracing import provider_from_env

from .test_traces import CALLER_SPAN, TRACE, paid, product

ROOT = Path(__file__).resolve().parents[2]


def _module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


EXAMPLE = _module(ROOT / "deploy" / "local" / "trace_example.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def jaeger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A Jaeger on free ports: (its OTLP/HTTP address, its query address)."""
    binary = subprocess.run(  # noqa: S603  # our own script
        [ROOT / "deploy" / "tools.sh", "jaeger"], check=True, capture_output=True, text=True
    ).stdout.strip()
    ports = {name: _free_port() for name in ("OTLP", "QUERY", "QUERY_GRPC", "HEALTH")}
    env = {**os.environ, **{f"HOOKFLOW_JAEGER_{k}_PORT": str(v) for k, v in ports.items()}}
    log = tmp_path_factory.mktemp("jaeger") / "jaeger.log"
    with log.open("w") as output:
        process = subprocess.Popen(  # noqa: S603  # the binary it built
            [binary, "--config", ROOT / "deploy" / "monitoring" / "jaeger" / "config.yaml"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log.read_text()
            try:
                socket.create_connection(("127.0.0.1", ports["OTLP"]), 1).close()
                socket.create_connection(("127.0.0.1", ports["QUERY"]), 1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        yield f"http://127.0.0.1:{ports['OTLP']}", f"http://127.0.0.1:{ports['QUERY']}"
    finally:
        process.kill()  # its memory is all it keeps
        process.wait(10)


@pytest.mark.integration
async def test_a_callbacks_trace_lands_in_jaeger_across_both_services(
    kafka_bootstrap: str,
    mongodb_url: str,
    unique_name: str,
    jaeger: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    otlp, query = jaeger
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp)  # as `make traces` sets it
    engine_provider, gateway_provider = provider_from_env("engine"), provider_from_env("gateway")
    assert engine_provider is not None
    assert gateway_provider is not None
    providers = (engine_provider, gateway_provider)
    async with product(kafka_bootstrap, mongodb_url, unique_name, providers) as (
        engine,
        gateway,
    ):
        traceparent = f"00-{TRACE}-{CALLER_SPAN}-01"
        activation_id, _ = await paid(engine, gateway, {"traceparent": traceparent})
    for provider in providers:
        provider.force_flush()
        provider.shutdown()

    trace = EXAMPLE.fetch_trace(query, TRACE, {"accept", "publish", "decide"}, 30)
    tree = [
        (span["operationName"], service, depth) for span, service, depth in EXAMPLE.spans_of(trace)
    ]
    # the caller's span is not in Jaeger: the gateway's accept is the root it shows
    assert tree[:3] == [
        ("accept", "hookflow-gateway", 0),
        ("publish", "hookflow-gateway", 1),
        ("decide", "hookflow-engine", 2),
    ]
    assert {name for name, _, depth in tree[3:] if depth == 3} >= {"store.save_execution"}
    decide = next(
        span for span, _, _ in EXAMPLE.spans_of(trace) if span["operationName"] == "decide"
    )
    tags = {tag["key"]: tag["value"] for tag in decide["tags"]}
    assert (tags["hookflow.activation_id"], tags["hookflow.outcome"]) == (
        activation_id,
        "ACTIVATED",
    )
    lines = EXAMPLE.waterfall(trace)
    assert lines[0].startswith(f"trace {TRACE}: {len(tree)} spans")
    assert [line.split()[0] for line in lines[1:4]] == [
        "hookflow-gateway",
        "hookflow-gateway",
        "hookflow-engine",
    ]
