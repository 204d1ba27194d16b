"""The consumer's cost: the batch consumer against a raw one, health checks while
expressions run."""

import time
from typing import TYPE_CHECKING

from harness import http, peer
from measures import HEAVY, in_place_stall

if TYPE_CHECKING:
    from suite import Suite


def responsiveness(suite: "Suite") -> None:
    """P10: the engine's /healthz latency while guarded expressions run, against the
    lateness of an event loop that evaluates the same condition in place (as the
    engine did before expressions had a budget)."""
    engine, gateway = suite.s.url("engine"), suite.s.url("gateway")
    items = list(range(300 if suite.smoke else 1000))  # 2 s, or a minute, in place
    flow = http(
        "POST",
        f"{engine}/api/automation/flows",
        {
            "name": "bench-heavy",
            "blocks": [
                {"name": "Go", "type": "start", "next": "Wait"},
                {"name": "Wait", "type": "external_callback", "condition": HEAVY},
            ],
        },
    )
    for _ in range(2):
        http("POST", f"{gateway}/api/automation/flow/{flow['flowId']}/execute", {})
    callback = flow["triggers"][0]["callbackUrl"]
    for _ in range(suite.runs):
        latencies: list[float] = []
        stop = time.monotonic() + max(3.0, suite.seconds)
        sent = 0
        while time.monotonic() < stop:
            if sent < 3:  # each is cut off after 1 s for each waiting execution
                http("POST", callback, {"items": items})
                sent += 1
            started = time.perf_counter()
            http("GET", f"{engine}/healthz")
            latencies.append((time.perf_counter() - started) * 1000)
            time.sleep(0.01)
        suite.fig(
            "engine /healthz max latency while guarded expressions run",
            "ms",
            "below 100 ms",
            better="lower",
            id="P10",
        ).values.append(max(latencies))
        suite.fig(
            "engine /healthz max latency while guarded expressions run", "ms", id="P10"
        ).peer.append(in_place_stall(items[:300]))


def consumers(suite: "Suite") -> None:
    count = 2000 if suite.smoke else 50_000
    for run in range(suite.runs):
        topic = f"{suite.s.prefix}.peer-consume-{run}"
        peer("fill", "--bootstrap", suite.s.kafka, "--topic", topic, "--count", str(count))
        raw = peer(
            "consume-raw", "--bootstrap", suite.s.kafka, "--topic", topic, "--count", str(count)
        )
        fast = peer(
            "consume-faststream",
            "--bootstrap",
            suite.s.kafka,
            "--topic",
            topic,
            "--count",
            str(count),
        )
        figure = suite.fig(
            "batch consumer throughput (FastStream vs raw aiokafka getmany)",
            "messages/s",
            "at least 80% of the raw consumer",
            id="P5",
        )
        figure.values.append(fast["throughput"])
        figure.peer.append(raw["throughput"])
        # the same two with librdkafka (confluent-kafka): the choice of the engine's client
        raw_rd = peer(
            "consume-rdkafka", "--bootstrap", suite.s.kafka, "--topic", topic, "--count", str(count)
        )
        fast_rd = peer(
            "consume-faststream-rdkafka",
            "--bootstrap",
            suite.s.kafka,
            "--topic",
            topic,
            "--count",
            str(count),
        )
        for id, name, value, against in (
            ("P5r", "raw librdkafka batch consumer (peer: raw aiokafka getmany)", raw_rd, raw),
            (
                "P5f",
                "FastStream batch consumer on librdkafka (peer: on aiokafka, the engine's)",
                fast_rd,
                fast,
            ),
        ):
            figure = suite.fig(name, "messages/s", "", id=id)
            figure.values.append(value["throughput"])
            figure.peer.append(against["throughput"])
