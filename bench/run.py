"""The benchmark suite: `make bench` (full) or `make bench-smoke` (a few seconds each).

Starts the services as processes against the Kafka and MongoDB-wire server named by
KAFKA_BOOTSTRAP_SERVERS and MONGODB_URL, runs every figure several times with its raw
peer interleaved, and writes bench/results/latest.json, bench/results/report.md and
PNG plots. The load generator and the peers are separate processes. Nothing here
asserts a time: the report states each goal and whether it was met.
"""

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import bursts
import consumer_cost
import execution_pages
import ingestion
import log_pages
import memory
import resumes
import scaling
import timeouts
from harness import OUT, Services, progress, rss_peak_mb
from suite import Suite

# the activation log's records for L1 (the smoke run's fewer): on FerretDB 1.x the
# unfiltered page sorts them all in memory, about 75 ms per 1,000
LOG_RECORDS, LOG_SMOKE = 200_000, 12_000
EXECUTIONS, EXECUTIONS_SMOKE = 200_000, 12_000  # of one flow (L2)
# P4m, P7m, P13m: P4, P7 and P13 with a million waiting at the trigger (the third
# round's scale), after the figures at 100,000 waiting among a million stored
SCALE, SCALE_SMOKE = 1_000_000, 2_000


def run_all(suite: Suite, smoke: bool, log_records: int = LOG_RECORDS) -> None:
    """Every suite, in the order `make bench` runs them."""
    small, large, stored = (1, 200, 1000) if smoke else (1, 100_000, 900_000)
    for background in (small, suite.p3_background):
        progress(f"end-to-end resume with {background} executions waiting")
        resumes.resume(suite, background)
    progress(f"end-to-end resume with {large} waiting and {large + stored} stored")
    resumes.resume(suite, large, stored)
    resumes.resume_growth(suite, f"{small} waiting", f"{large} waiting, {large + stored} stored")
    progress("keyed activations among 100, then among many waiting")
    keyed_large = 1000 if smoke else 100_000
    single = resumes.keyed(suite, 100, keyed_large)
    progress(f"the same in triggers groups: {small}, then {large} waiting")
    resumes.resume(suite, small, grouped=True)
    resumes.resume(suite, large, grouped=True)
    resumes.resume_growth(suite, f"groups, {small} waiting", f"groups, {large} waiting", "P4g")
    resumes.resume_growth(
        suite,
        f"{large} waiting, {large + stored} stored",
        f"groups, {large} waiting",
        "G4",
        "at most 1.25x",
    )
    grouped = resumes.keyed(suite, 100, keyed_large, grouped=True)
    resumes.grouped_against_single(suite, keyed_large, single, grouped)
    progress("a burst of callbacks nobody waits for")
    bursts.burst(suite)
    accepts = suite.figures["burst decisions (peer: the gateway's acceptances)"].peer
    progress("sustained load at half the gateway's maximum")
    bursts.sustained(suite, 0.5 * statistics.median(accepts))
    minutes = 0.2 if smoke else 10.0
    progress(f"memory: {minutes:g} min at a quarter of the gateway's max")
    memory.memory(suite, minutes, 0.25 * statistics.median(accepts))
    progress("a second engine: CPU per decision, rebalance pauses")
    scaling.scaling(suite)
    if "engine" in suite.s.processes:
        suite.fig("peak RSS, engine", "MB", better="lower", id="M1").values.append(
            rss_peak_mb(suite.s.processes["engine"].pid)
        )
    timers, spread = (300, 5.0) if smoke else (10_000, 60.0)
    progress(f"{timers} wait timeouts due within {spread:.0f} s")
    timeouts.timers(suite, timers, spread)
    progress("health checks while guarded expressions run")
    consumer_cost.responsiveness(suite)
    progress("consumer overhead")
    consumer_cost.consumers(suite)
    # last of the engine's figures: a million more in the store would weigh on the others
    scale(suite, SCALE_SMOKE if smoke else SCALE, single[100])
    suite.s.stop("engine")  # the gateway is measured alone: no consumer competes
    progress("gateway ingestion")
    ingestion.ingestion(suite)
    progress("activation log pages among many records")
    log_pages.log_pages(suite, LOG_SMOKE if smoke else log_records)
    progress("a flow's executions pages among many")
    execution_pages.execution_pages(suite, EXECUTIONS_SMOKE if smoke else EXECUTIONS)


def machine() -> dict[str, Any]:
    memory = next(
        (
            int(line.split()[1]) // 1024
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        0,
    )
    versions = {}
    for package in ("faststream", "aiokafka", "pymongo", "starlette", "uvicorn", "pydantic"):
        from importlib.metadata import version

        versions[package] = version(package)
    return {
        "cores": os.cpu_count(),
        "memory_mb": memory,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "kafka": "Apache Kafka 4.1.1 (KRaft, one node)",
        "mongodb": "FerretDB 1.24.2 on SQLite with the project's patches",
        "packages": versions,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="a few seconds per figure")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--only",
        choices=(
            "ingestion",
            "resume",
            "burst",
            "log",
            "executions",
            "memory",
            "scale",
            "consumers",
        ),
        help="one part alone, for working on it (the report holds only its figures)",
    )
    parser.add_argument(
        "--log-records",
        type=int,
        default=LOG_RECORDS,
        help=f"the large activation log of L1 and L1a (default {LOG_RECORDS:,})",
    )
    args = parser.parse_args()
    if args.smoke:
        args.runs, args.seconds = 1, 1.0
    kafka, mongodb = os.environ["KAFKA_BOOTSTRAP_SERVERS"], os.environ["MONGODB_URL"]
    args.out.mkdir(parents=True, exist_ok=True)
    logs = args.out / "logs"
    logs.mkdir(exist_ok=True)
    services = Services(f"bench_{uuid.uuid4().hex[:6]}", kafka, mongodb, logs)
    suite = Suite(services, args.runs, args.seconds, args.smoke)
    started = time.time()
    try:
        services.start_product()
        suite.deploy()
        if args.only == "ingestion":
            services.stop("engine")
            ingestion.ingestion(suite)
        elif args.only == "resume":
            resumes.resume(suite, suite.p3_background)
        elif args.only == "scale":
            scale(suite, SCALE_SMOKE if args.smoke else SCALE)
        elif args.only == "memory":
            # a quarter of the gateway's max as the committed run measured it (P1)
            memory.memory(suite, 0.2 if args.smoke else 10.0, 800.0)
        elif args.only == "consumers":
            consumer_cost.consumers(suite)
        elif args.only == "log":
            log_pages.log_pages(suite, LOG_SMOKE if args.smoke else args.log_records)
        elif args.only == "executions":
            execution_pages.execution_pages(suite, EXECUTIONS_SMOKE if args.smoke else EXECUTIONS)
        elif args.only == "burst":
            bursts.burst(suite)
            accepts = suite.figures["burst decisions (peer: the gateway's acceptances)"].peer
            bursts.sustained(suite, 0.5 * statistics.median(accepts))
        else:
            run_all(suite, args.smoke, args.log_records)
    finally:
        services.stop_all()
        _drop(mongodb, kafka, services.prefix)
    from report import write  # plotting is only needed here

    write(
        args.out,
        [f.summary() for f in suite.figures.values()],
        machine(),
        suite.notes,
        {
            "smoke": args.smoke,
            "runs": args.runs,
            "seconds": args.seconds,
            "wall_seconds": round(time.time() - started, 1),
            "command": ("make bench-smoke" if args.smoke else "make bench")
            + (f" (bench/run.py --only {args.only})" if args.only else ""),
        },
        profiles=suite.profiles,
        lag=suite.lag_series,
    )


def scale(suite: Suite, large: int, among_100: list[float] | None = None) -> None:
    """P4m, P13m and P7m: with `large` more executions waiting at the trigger, against
    1 waiting and 100 waiting (`among_100`: P7's times, measured before; else both are
    measured first)."""
    if "1 waiting" not in suite.resume_p50:
        progress("end-to-end resume with 1 execution waiting")
        resumes.resume(suite, 1)
    progress(f"end-to-end resume with {large} more executions waiting")
    resumes.resume(suite, large, tag="m")
    resumes.resume_growth(suite, "1 waiting", f"{large} waiting", id="P4m")
    progress(f"keyed activations among 100, then among {large} waiting")
    resumes.keyed(suite, 100, large, tag="m", among_small=among_100)


def _drop(mongodb: str, kafka: str, prefix: str) -> None:
    """Drop the run's databases and delete its topics: a broker that keeps every run's
    partitions spends more of the shared machine on them at each later run."""
    from pymongo import MongoClient

    connected: MongoClient[dict[str, Any]] = MongoClient(mongodb)
    with connected as client:
        for suffix in ("engine", "auth", "peer"):
            client.drop_database(f"{prefix}_{suffix}")
    asyncio.run(_delete_topics(kafka, f"{prefix}."))


async def _delete_topics(bootstrap: str, prefix: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
