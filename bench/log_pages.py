"""A page of the activation log among many records against a page among 10,000 (L1, L1a).

The records are written straight to the store as the engine writes them (100 triggers,
one a millisecond), in two databases: 10,000 and `large`. A page is what the API and
the console ask for (`MongoStore.list_activations`, 50 records, newest first): the
newest page of one trigger (L1), of the whole log (L1a), and the whole log's page
after a cursor in its middle (L1c, a keyset page deep in the log), each timed `runs`
times. All are served by an index ((triggerId, receivedAt, _id), (receivedAt, _id)):
on MongoDB, and on the local FerretDB with the project's patch 0006, which builds such
indexes ordered and reads a page from them (docs/infrastructure.md, "Sorted pages");
a page should cost the same among 10 thousand records and among 10 million
(`--log-records`). The explain the store's server gives is in the report's notes.
"""

import asyncio
import time
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from suite import Suite

SMALL = 10_000
TRIGGERS = 100
PAGE = 50


async def _seed(mongodb: str, database: str, count: int) -> tuple[list[str], int]:
    """`count` records over TRIGGERS triggers, as the engine writes them; the triggers
    and the middle record's time."""
    from pymongo import AsyncMongoClient

    from engine.store import MongoStore
    from engine.store.documents import outcome_to_doc
    from schemas.events import ActivationOutcome, ActivationSource, Outcome

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb)
    await client.drop_database(database)
    await MongoStore(client[database]).setup()
    triggers = [str(uuid.uuid4()) for _ in range(TRIGGERS)]
    start = int(time.time() * 1000) - count
    for first in range(0, count, 10_000):
        docs = []
        for n in range(first, min(count, first + 10_000)):
            outcome = ActivationOutcome(
                activationId=str(uuid.uuid4()),
                flowId="bench-log",
                triggerId=triggers[n % TRIGGERS],
                outcome=Outcome.NO_WAITER,
                detail="no execution of this flow version waits at this trigger",
                decidedAt=start + n + 3,
                receivedAt=start + n,
                source=ActivationSource.HTTP,
                bodySize=36,
            )
            outcome._request = {"data": {"orderId": f"o-{n}", "amount": n}, "execution": "all"}
            docs.append({"_id": outcome.activationId, **outcome_to_doc(outcome)})
        await client[database]["activations"].insert_many(docs, ordered=False)
    await client.close()
    return triggers, start + count // 2


async def _pages(
    mongodb: str, database: str, trigger: str, middle: int, runs: int
) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """Milliseconds per page: of one trigger, of the whole log, of the whole log after
    the middle record; and the server's explain of the trigger's page."""
    from pymongo import AsyncMongoClient

    from engine.ports import encode_cursor
    from engine.store import MongoStore
    from schemas.activations import ActivationFilter

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb)
    store = MongoStore(client[database])
    timings: dict[str, list[float]] = {"trigger": [], "all": [], "deep": []}
    for _ in range(runs):
        for kind, where, cursor in (
            ("trigger", ActivationFilter(triggerId=trigger), None),
            ("all", ActivationFilter(), None),
            ("deep", ActivationFilter(), encode_cursor(middle, "")),
        ):
            started = time.perf_counter()
            page, _ = await store.list_activations(where, cursor, PAGE)
            timings[kind].append(1000 * (time.perf_counter() - started))
            assert len(page) == PAGE
            if cursor:  # the records just before the middle one, newest first
                assert [o.receivedAt for o, _ in page] == list(
                    range(middle - 1, middle - 1 - PAGE, -1)
                )
    explain = await client[database].command(
        "explain",
        {
            "find": "activations",
            "filter": {"triggerId": trigger, "receivedAt": {"$exists": True}},
            "sort": {"receivedAt": -1, "_id": -1},
            "limit": PAGE + 1,
        },
    )
    await client.drop_database(database)
    await client.close()
    return timings, explain


def log_pages(suite: "Suite", large: int) -> None:
    """L1, L1a and L1c: a page among `large` records, the peer a page among 10,000."""
    mongodb, prefix = suite.s.mongodb, suite.s.prefix
    runs = max(3, suite.runs)
    measured = {}
    for count in (SMALL, large):
        database = f"{prefix}_log_{count}"
        started = time.perf_counter()
        triggers, middle = asyncio.run(_seed(mongodb, database, count))
        seeded = time.perf_counter() - started
        measured[count] = asyncio.run(_pages(mongodb, database, triggers[7], middle, runs))
        suite.notes.append(
            f"L1: {count:,} log records written in {seeded:.0f} s ({count / seeded:,.0f}/s)."
        )
    (small, _), (big, explain) = measured[SMALL], measured[large]
    page_figures(
        suite,
        [
            ("trigger", "L1", "activation log page of one trigger"),
            ("all", "L1a", "activation log page, no filter,"),
            ("deep", "L1c", "activation log page after a cursor in the middle,"),
        ],
        f"among {large:,} records (peer: among {SMALL:,})",
        big,
        small,
    )
    pushed = {k: explain.get(k) for k in ("filterPushdown", "sortPushdown", "limitPushdown")}
    plan = explain.get("queryPlanner", {})
    suite.notes.append(
        f"L1: the store's explain of a trigger's page: {pushed or 'no pushdown fields'}; "
        f"plan {plan.get('Plan') or plan.get('winningPlan')}."
    )


def page_figures(
    suite: "Suite",
    kinds: list[tuple[str, str, str]],
    among: str,
    big: dict[str, list[float]],
    small: dict[str, list[float]],
) -> None:
    """A figure per (timing kind, id, what): the page among many, its peer among few."""
    for kind, id_, what in kinds:
        figure = suite.fig(
            f"{what} {among}", "ms", "at most 2x (served by an index)", better="lower", id=id_
        )
        figure.values += big[kind]
        figure.peer += small[kind]
