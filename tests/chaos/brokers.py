"""Fault suite on a three-broker Kafka: kill brokers under load, nothing acknowledged lost.

    .venv/bin/python -m tests.chaos.brokers [--executions 200]     (part of make chaos)

The suite's own three-node KRaft cluster (deploy/local/kafka.sh, HOOKFLOW_KAFKA_BROKERS=3:
every topic on three replicas, min.insync.replicas 2, a dead broker fenced after 3 s), its
own MongoDB-wire server and the three services; executions wait and callbacks are made
as in `chaos.py` (each retried until acknowledged, with its Idempotency-Key). Meanwhile,
one after the other, each repaired (the broker back in every in-sync replica set) before
the next:
1. kill -9 the leader of the busiest activations partition: the gateway's 503 window
   (from the first to the last answer that was not a 200) is reported;
2. kill -9 a broker that leads no activations partition (a follower): no 5xx at all;
3. kill -9 two brokers: every answer given meanwhile is a 503 (code 5030), never a 2xx; then
   both restart and callbacks are acknowledged again (the recovery time is reported).
Then the history check of `chaos.py`: every execution with an acknowledged callback
completed, each resumed exactly once. Prints one JSON object; exits 1 when a check fails.
"""

import argparse
import asyncio
import contextlib
import json
import secrets
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from .chaos import Infra, Load, Services, exactly_once, prepare, product, recoveries, settle

BROKERS = (1, 2, 3)
GRACE = 0.5  # an acknowledgement in flight when a broker died may still arrive


async def _describe(bootstrap: str, topics: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Each topic's partitions (leader, replicas, isr), or an error when the cluster does
    not answer within 10 s (it never blocks on a cluster without a quorum)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        async with asyncio.timeout(10):
            await admin.start()
            described = await admin.describe_topics(topics)
    finally:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await admin.close()
    return {d["topic"]: d["partitions"] for d in described}


async def _ends(bootstrap: str, topic: str, partitions: list[int]) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        async with asyncio.timeout(10):
            await consumer.start()
            ends = await consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
    finally:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await consumer.stop()
    return {tp.partition: end for tp, end in ends.items()}


def leaders(infra: Infra, topic: str) -> dict[int, int]:
    """The activations topic's partition -> its leader's node id."""
    described = asyncio.run(_describe(infra.kafka, [topic]))
    return {p["partition"]: p["leader"] for p in described[topic]}


def busiest_leader(infra: Infra, topic: str) -> tuple[int, int]:
    """(the partition with the most records, its leader)."""
    led = leaders(infra, topic)
    ends = asyncio.run(_ends(infra.kafka, topic, list(led)))
    partition = max(ends, key=lambda p: ends[p])
    return partition, led[partition]


def await_in_sync(infra: Infra, topics: list[str], timeout: float = 120) -> float:
    """Until every partition of `topics` has all three replicas in sync; the seconds."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with contextlib.suppress(Exception):
            described = asyncio.run(_describe(infra.kafka, topics))
            if all(
                len(p["isr"]) == len(BROKERS) and p["leader"] >= 0
                for partitions in described.values()
                for p in partitions
            ):
                return time.monotonic() - started
        time.sleep(0.5)
    raise RuntimeError(f"the replicas were not in sync again within {timeout} s")


def faults(infra: Infra, services: Services, load: Load, pause: float) -> list[dict[str, Any]]:
    topic = f"{services.prefix}.activations"
    watched = [f"{services.prefix}.{name}" for name in ("activations", "execution-events")]
    done: list[dict[str, Any]] = []
    time.sleep(pause)

    def strike(fault: str, victims: list[int], **facts: Any) -> None:
        """kill -9 the brokers, leave them dead `pause` s, start them again (each back
        makes a quorum with those alive) and wait until they are in every ISR."""
        struck = time.time()
        for broker in victims:
            infra.kill("kafka", broker)
        load.probe(pause)  # answers within the fault, whatever the workers' phase
        restarting = time.time()
        for broker in victims:
            infra.script("kafka", "start", str(broker))
        back = time.time()
        in_sync = await_in_sync(infra, watched)
        done.append(
            {
                "fault": fault,
                **facts,
                "struck": struck,
                "repaired": back,
                "down_until": restarting,
                "in_sync_seconds": round(in_sync, 1),
            }
        )
        time.sleep(pause)

    partition, leader = busiest_leader(infra, topic)
    strike(
        "kill -9 the leader of the busiest partition",
        [leader],
        broker=leader,
        partition=partition,
    )
    led = list(leaders(infra, topic).values())
    follower = next((b for b in BROKERS if b not in led), None)
    if follower is None:  # every broker leads a partition again: the least busy one
        follower = min(BROKERS, key=led.count)
    strike("kill -9 a follower", [follower], broker=follower, partitions_it_led=led.count(follower))
    two = [b for b in BROKERS if b != leaders(infra, topic)[0]][:2]
    strike("kill -9 two brokers", two, brokers=two)
    return done


def answered(load: Load, since: float, until: float) -> list[Any]:
    return [a for a in load.answers if since + GRACE < a.sent < until]


def run(count: int, pause: float, concurrency: int, seed: int | None = None) -> dict[str, Any]:
    seed = secrets.randbelow(2**31) if seed is None else seed
    print(f"broker chaos run, seed {seed}", file=sys.stderr, flush=True)
    started = time.time()
    with (
        tempfile.TemporaryDirectory(prefix="hookflow-brokers-") as tmp,
        product(Path(tmp), brokers=3, publish_timeout=5.0) as (infra, services),
    ):
        prepared = prepare(services, count, seed)
        # spread the callbacks over the faults: about 9 pauses and 40 s of restarts
        load = Load(prepared.calls, concurrency, rate=len(prepared.calls) / (9 * pause + 40))
        driver = threading.Thread(target=lambda: asyncio.run(load.run()), daemon=True)
        driver.start()
        injected = faults(infra, services, load, pause)
        time.sleep(5)
        load.faults_over.set()
        driver.join(timeout=900)
        ended = settle(services, prepared)
    leader, follower, two = injected
    # the leader's death: from the first answer that was not a 200 to the last
    troubled = [a for a in answered(load, leader["struck"], follower["struck"]) if a.status != 200]
    window = max(a.at for a in troubled) - min(a.sent for a in troubled) if troubled else 0.0
    follower_5xx = sorted(
        f"{a.status}/{a.code}"
        for a in answered(load, follower["struck"], two["struck"])
        if a.status >= 500 or a.status == 0
    )
    # answered while both were down: a call made just before the restart may be held
    # (up to the gateway's publish timeout) and acknowledged once they are back, rightly
    outage = [
        a for a in answered(load, two["struck"], two["down_until"]) if a.at < two["down_until"]
    ]
    not_503 = sorted({f"{a.status}/{a.code}" for a in outage if (a.status, a.code) != (503, 5030)})
    recovery = [a.at for a in load.answers if a.status == 200 and a.at >= two["down_until"]]
    two["recovered_after_restart_seconds"] = (
        round(min(recovery) - two["down_until"], 2) if recovery else None
    )
    leader["unavailable_window_seconds"] = round(window, 2)
    during = answered(load, leader["struck"], follower["struck"])
    leader["slowest_answer_seconds"] = (
        round(max(a.at - a.sent for a in during), 2) if during else None
    )
    leader["answers"] = sorted({f"{a.status}/{a.code}" for a in troubled})
    follower["5xx"] = follower_5xx
    two["answers"] = sorted({f"{a.status}/{a.code}" for a in outage})
    recoveries(injected, load, {e: x["history"] for e, x in ended.items()}, started)
    checked = exactly_once(prepared, load, ended)
    result = {
        "seed": seed,
        "brokers": 3,
        "executions": count,
        "calls": len(prepared.calls),
        "acknowledged": len(load.acknowledged),
        "completed": len(ended),
        **checked,
        "follower_5xx": follower_5xx,
        "answers_with_two_brokers_down_other_than_503_5030": not_503,
        "requests": len(load.answers),
        "faults": injected,
        "seconds": round(time.time() - started, 1),
    }
    result["passed"] = (
        not any(checked.values())
        and len(ended) == count
        and len(load.acknowledged) == len(prepared.calls)
        and not follower_5xx
        and follower["partitions_it_led"] == 0
        and not not_503
        and bool(outage)
        and two["recovered_after_restart_seconds"] is not None
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--executions", type=int, default=200)
    parser.add_argument("--pause", type=float, default=8.0, help="seconds each fault lasts")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, help="replay a run: the order of its calls")
    args = parser.parse_args()
    result = run(args.executions, args.pause, args.concurrency, args.seed)
    print(json.dumps(result, indent=2))
    sys.exit(0 if result["passed"] else 1)


if __name__ == "__main__":
    main()
