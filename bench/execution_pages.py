"""A page of a flow's executions among many against a page among 10,000 (L2, L2s).

The executions are written straight to the store as the engine writes them (one flow,
one a millisecond, their statuses mixed as a busy flow's are: most completed, some
waiting, failed, running, terminated), in two databases: 10,000 and `large`. A page is
what the API and the console ask for (`MongoStore.list_executions`, 50, oldest first):
every status (L2) and the waiting ones (L2s), the first page and the page after a cursor
in the middle, each timed `runs` times. The index (flowId, status, created) serves a
status's page in order; a page of every status is the merge of one such page per
status. The same page read as one query, sorted whole (the store's way before), is
timed beside it among the large set, for the ratio in the notes.
"""

import asyncio
import time
from typing import TYPE_CHECKING, Any

from log_pages import page_figures

if TYPE_CHECKING:
    from suite import Suite

SMALL = 10_000
PAGE = 50
FLOW = "bench-executions"
# of every 20 executions: a busy flow's mix
MIX = ["completed"] * 14 + ["waiting"] * 3 + ["failed", "running", "terminated"]


async def _seed(mongodb: str, database: str, count: int) -> int:
    """`count` executions of one flow; the middle one's creation time."""
    from pymongo import AsyncMongoClient

    from engine.core.state import ExecutionState
    from engine.store import MongoStore
    from engine.store.documents import execution_to_doc
    from schemas.events import ExecutionStatus

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb)
    await client.drop_database(database)
    await MongoStore(client[database]).setup()
    start = int(time.time() * 1000) - count
    for first in range(0, count, 10_000):
        docs = []
        for n in range(first, min(count, first + 10_000)):
            status = ExecutionStatus(MIX[n % len(MIX)])
            waiting = status == ExecutionStatus.WAITING
            state = ExecutionState(
                execution_id=f"x{n:09}",
                flow_id=FLOW,
                status=status,
                at=None,
                input={"orderId": f"o-{n}"},
                created=start + n,
                updated=start + n,
                waiting_on=("t-bench",) if waiting else (),
                history=({"at": start + n, "event": "started"},),
            )
            docs.append({**execution_to_doc(state), "version": 0})
        await client[database]["executions"].insert_many(docs, ordered=False)
    await client.close()
    return start + count // 2


async def _pages(
    mongodb: str, database: str, middle: int, runs: int, whole: bool
) -> dict[str, list[float]]:
    """Milliseconds per page: every status first and after the middle, the waiting
    ones; with `whole`, the every-status pages read as one query sorted whole too."""
    from pymongo import AsyncMongoClient

    from engine.ports import encode_cursor
    from engine.store import MongoStore
    from engine.store.documents import keyset_page
    from schemas.events import ExecutionStatus

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb)
    store = MongoStore(client[database])
    deep = encode_cursor(middle, "")
    timings: dict[str, list[float]] = {}

    async def timed(kind: str, status: ExecutionStatus | None, cursor: str | None) -> None:
        started = time.perf_counter()
        page, _ = await store.list_executions(FLOW, status, cursor, PAGE)
        timings.setdefault(kind, []).append(1000 * (time.perf_counter() - started))
        assert len(page) == PAGE
        if status is None:  # every execution in order: consecutive creation times
            created = [s.created for s in page]
            assert created == list(range(created[0], created[0] + PAGE)), kind

    async def sorted_whole(kind: str, cursor: str | None) -> None:
        started = time.perf_counter()
        docs, _ = await keyset_page(
            client[database]["executions"], {"flowId": FLOW}, "created", cursor, PAGE
        )
        timings.setdefault(kind, []).append(1000 * (time.perf_counter() - started))
        assert len(docs) == PAGE

    for _ in range(runs):
        await timed("every", None, None)
        await timed("every-deep", None, deep)
        await timed("waiting", ExecutionStatus.WAITING, deep)
        if whole:
            await sorted_whole("whole", None)
            await sorted_whole("whole-deep", deep)
    await client.drop_database(database)
    await client.close()
    return timings


def execution_pages(suite: "Suite", large: int) -> None:
    """L2, L2c and L2s: a page among `large` executions of a flow, the peer among 10,000."""
    mongodb, prefix = suite.s.mongodb, suite.s.prefix
    runs = max(3, suite.runs)
    measured = {}
    for count in (SMALL, large):
        database = f"{prefix}_executions_{count}"
        started = time.perf_counter()
        middle = asyncio.run(_seed(mongodb, database, count))
        seeded = time.perf_counter() - started
        measured[count] = asyncio.run(_pages(mongodb, database, middle, runs, count == large))
        suite.notes.append(
            f"L2: {count:,} executions written in {seeded:.0f} s ({count / seeded:,.0f}/s)."
        )
    small, big = measured[SMALL], measured[large]
    page_figures(
        suite,
        [
            ("every", "L2", "a flow's executions page, every status,"),
            ("every-deep", "L2c", "a flow's executions page, every status, after a middle cursor,"),
            ("waiting", "L2s", "a flow's waiting executions page after a middle cursor,"),
        ],
        f"among {large:,} executions (peer: among {SMALL:,})",
        big,
        small,
    )
    median = {kind: sorted(values)[len(values) // 2] for kind, values in big.items()}
    suite.notes.append(
        f"L2: among {large:,} executions, a page of every status read as one query sorted "
        f"whole (the store's way before) took {median['whole']:.1f} ms first and "
        f"{median['whole-deep']:.1f} ms after the middle, against {median['every']:.1f} "
        f"and {median['every-deep']:.1f} ms merged from one page per status (medians)."
    )
