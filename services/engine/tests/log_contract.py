"""The activation log's part of the Store contract: run against the in-memory fake and
MongoDB-wire servers (modules that import these tests provide a `store` fixture)."""

from engine.ports import Store
from schemas.activations import ActivationFilter
from schemas.events import ActivationOutcome, ActivationSource, Outcome

from .store_contract import AWKWARD


def logged(n: int, received: int, outcome: Outcome, trigger: str = "t-1") -> ActivationOutcome:
    record = ActivationOutcome(
        activationId=f"log-{n:03d}",
        flowId="f1" if trigger != "t-9" else "f2",
        triggerId=trigger,
        outcome=outcome,
        decidedAt=received + 5,
        receivedAt=received,
        source=ActivationSource.HTTP,
        bodySize=10,
    )
    record._request = {"data": {"n": n, **AWKWARD}, "execution": "all", "user": None}
    return record


async def test_the_log_pages_newest_first_by_flow_trigger_outcome_and_time(store: Store) -> None:
    records = [
        logged(n, 1000 + 10 * (n // 2), [Outcome.NO_WAITER, Outcome.ACTIVATED][n % 2])
        for n in range(9)
    ] + [logged(9, 1040, Outcome.NO_WAITER, trigger="t-9")]
    assert await store.save_outcomes(records) == set()

    seen, cursor = [], None
    while True:  # pages of 3, two records sharing each time: the cursor splits ties
        page, cursor = await store.list_activations(ActivationFilter(), cursor, 3)
        seen += [o.activationId for o, _ in page]
        if cursor is None:
            break
    newest_first = sorted(records, key=lambda o: (o.receivedAt or 0, o.activationId), reverse=True)
    assert seen == [o.activationId for o in newest_first]

    where = ActivationFilter(triggerId="T-1", outcome=[Outcome.NO_WAITER], since=1010, until=1040)
    page, _ = await store.list_activations(where, None, 10)
    assert [o.activationId for o, _ in page] == ["log-006", "log-004", "log-002"]
    page, _ = await store.list_activations(ActivationFilter(flowId="f2"), None, 10)
    assert [o.activationId for o, _ in page] == ["log-009"]
    # the request comes back as it was posted, integers beyond 64 bits too
    (outcome, request), *_ = (await store.list_activations(where, None, 1))[0]
    assert request == {"data": {"n": 6, **AWKWARD}, "execution": "all", "user": None}
    assert (outcome.receivedAt, outcome.source, outcome.bodySize) == (1030, "http", 10)
    found = await store.activation_record("log-006")
    assert found is not None
    assert found[1] == request
    assert await store.get_activation("log-006") == outcome  # the outcome as ever


async def test_the_charts_read_when_which_trigger_and_outcome_newest_first(store: Store) -> None:
    records = [logged(n, 1000 + n, [Outcome.NO_WAITER, Outcome.REFUSED][n % 2]) for n in range(6)]
    records.append(logged(6, 1003, Outcome.ACTIVATED, trigger="t-9"))
    assert await store.save_outcomes(records) == set()
    where = ActivationFilter(flowId="F1", since=1001, until=1005)
    assert await store.activation_times(where, 10) == [
        (1004, "t-1", "NO_WAITER"),
        (1003, "t-1", "REFUSED"),
        (1002, "t-1", "NO_WAITER"),
        (1001, "t-1", "REFUSED"),
    ]
    assert await store.activation_times(where, 2) == [
        (1004, "t-1", "NO_WAITER"),
        (1003, "t-1", "REFUSED"),
    ]
    refused = ActivationFilter(outcome=[Outcome.REFUSED])
    assert [at for at, _, _ in await store.activation_times(refused, 10)] == [1005, 1003, 1001]


async def test_bodies_then_records_expire(store: Store) -> None:
    await store.save_outcomes([logged(n, 1000 * n, Outcome.NO_WAITER) for n in range(1, 6)])
    # at 5,500: bodies received over 2,000 ms ago go, records over 4,000 ms ago
    assert await store.purge_activations(5500, body_ms=2000, log_ms=4000) == (2, 1)
    page, _ = await store.list_activations(ActivationFilter(), None, 10)
    assert [(o.activationId, r is not None) for o, r in page] == [
        ("log-005", True),
        ("log-004", True),
        ("log-003", False),
        ("log-002", False),
    ]
    assert await store.activation_record("log-001") is None
