"""The store contract against the real MongoDB-wire server, and what a decision costs there."""

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from engine.store import MongoStore, OutdatedDatabase
from schemas.events import ActivateTrigger, ActivationOutcome, Outcome, StartExecution
from schemas.flows import FlowDefinition

from ..log_contract import *  # noqa: F403  # the activation log's part of it
from ..store_contract import *  # noqa: F403  # the contract's tests run here
from ..store_contract import KEYED_ORDER, SCANNED_ORDER, engine_over


@pytest.fixture
async def store(mongo_db: AsyncDatabase[dict[str, Any]]) -> MongoStore:
    store = MongoStore(mongo_db, batch_size=2)
    await store.setup()
    return store


class Statements(monitoring.CommandListener):
    """Counts the statements (reads and writes) sent to the server."""

    KINDS = frozenset(
        {"find", "getMore", "insert", "update", "delete", "findAndModify", "aggregate"}
    )

    def __init__(self) -> None:
        self.sent: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name in self.KINDS:
            self.sent.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        return None

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        return None


@pytest.fixture
async def counted(
    mongodb_url: str, unique_name: str
) -> AsyncIterator[tuple[MongoStore, Statements]]:
    statements = Statements()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongodb_url, event_listeners=[statements]
    )
    try:
        store = MongoStore(client[unique_name])
        await store.setup()
        yield store, statements
    finally:
        await client.drop_database(unique_name)
        await client.close()


async def _decide(
    store: MongoStore,
    statements: Statements,
    definition: dict[str, Any],
    waiting: int,
    data: dict[str, Any],
    execution: str = "all",
) -> tuple[Outcome, list[str]]:
    engine, catalog, _ = engine_over(store)
    deployed = await catalog.deploy(FlowDefinition.model_validate(definition))
    started = []
    for i in range(waiting):
        command = StartExecution(
            executionId=str(uuid.uuid4()),
            flowId=deployed.flowId,
            input={"id": f"o{i}"},
            requestedAt=1,
        )
        await engine.start(command)
        started.append(command.executionId)
    target = {"first": started[0] if started else "nobody"}.get(execution, execution)
    statements.sent.clear()
    outcome = await engine.activate(
        ActivateTrigger(
            activationId="a1",
            flowId=deployed.flowId,
            triggerId=deployed.triggers[0].triggerId,
            data=data,
            execution=target,
            receivedAt=1,
        )
    )
    assert outcome.outcome in (Outcome.ACTIVATED, Outcome.NO_WAITER, Outcome.FILTERED)
    return outcome.outcome, list(statements.sent)


@pytest.mark.parametrize("definition", [KEYED_ORDER, SCANNED_ORDER], ids=["keyed", "scanned"])
async def test_a_resume_by_execution_id_costs_at_most_4_statements(
    counted: tuple[MongoStore, Statements], definition: dict[str, Any]
) -> None:
    outcome, sent = await _decide(*counted, definition, 3, {"id": "o0"}, execution="first")
    assert outcome == Outcome.ACTIVATED
    assert len(sent) <= 4, sent


@pytest.mark.parametrize("definition", [KEYED_ORDER, SCANNED_ORDER], ids=["keyed", "scanned"])
async def test_a_no_waiter_decision_costs_at_most_3_statements(
    counted: tuple[MongoStore, Statements], definition: dict[str, Any]
) -> None:
    outcome, sent = await _decide(*counted, definition, 0, {"id": "o0"})
    assert outcome == Outcome.NO_WAITER
    assert len(sent) <= 3, sent


async def test_a_keyed_activation_reads_only_its_key(
    counted: tuple[MongoStore, Statements],
) -> None:
    outcome, sent = await _decide(*counted, KEYED_ORDER, 50, {"id": "o7"})
    assert outcome == Outcome.ACTIVATED
    # the outcome, whether anybody waits, the key's candidates, the resume, its record, the outcome
    assert sent.count("getMore") == 0
    assert len(sent) <= 6, sent


async def test_a_database_of_the_earlier_design_is_refused_with_what_to_do(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    await mongo_db["claims"].insert_one({"_id": "w1", "activationId": "a1"})
    with pytest.raises(OutdatedDatabase, match=r"rm -rf \.local/ferretdb/data"):
        await MongoStore(mongo_db).setup()


async def test_a_buffered_outcome_stored_during_its_settling_upsert_is_settled(
    store: MongoStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch that kept an activation stores its BUFFERED outcome (an insert) while an
    execution that took it settles it (an upsert): the insert can land between the
    upsert's lookup and its own insert, which then collides. Settled over it all the same."""
    buffered = ActivationOutcome(
        activationId="a-race",
        flowId="f",
        triggerId="t",
        outcome=Outcome.BUFFERED,
        executionIds=[],
        decidedAt=1,
    )
    outcomes = store._outcomes
    update_one = outcomes.update_one
    raced: list[bool] = []

    async def overtaken(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("upsert") and not raced:
            # the upsert looked and found nothing; the batch's insert lands; the upsert's
            # own insert then collides, as the server answers it
            raced.append(True)
            assert not await store.save_outcomes([buffered])
            raise DuplicateKeyError("E11000 duplicate key error")
        return await update_one(*args, **kwargs)

    monkeypatch.setattr(outcomes, "update_one", overtaken)
    activated = buffered.model_copy(
        update={"outcome": Outcome.ACTIVATED, "executionIds": ["e1"], "decidedAt": 2}
    )
    assert await store.settle_outcome(activated)
    assert (await store.get_activation("a-race")) == activated
    # a final outcome is left as it is
    assert not await store.settle_outcome(activated.model_copy(update={"executionIds": ["e2"]}))
    assert (await store.get_activation("a-race")) == activated


async def test_a_keyset_page_of_overlapping_sets_holds_each_document_once(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    # as an execution that moves from one status to another while a flow's page of
    # every status is read: found by two of the narrowed reads
    from engine.store.documents import keyset_page

    collection = mongo_db["overlap"]
    await collection.insert_many(
        [{"_id": f"d{n}", "t": n // 2, "kind": "a" if n % 3 else "b"} for n in range(9)]
    )
    narrowings = [{}, {"kind": "a"}, {"kind": "b"}]  # every document is in two
    seen: list[str] = []
    cursor = None
    while True:
        page, cursor = await keyset_page(collection, {}, "t", cursor, 2, union_of=narrowings)
        assert len(page) <= 2
        seen += [doc["_id"] for doc in page]
        if cursor is None:
            break
    assert seen == [f"d{n}" for n in range(9)]
