"""Hostile bytes published straight to Kafka never hold a partition back.

Every hostile record is followed, on the same partition (the same key), by a valid
activation that must be decided; the hostile record itself becomes a dead letter, its
activation (where its id can be read) `INVALID`, and the letter is never larger than the
broker takes nor holds a user-token.
"""

import asyncio
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymongo import AsyncMongoClient

from engine.settings import Settings
from schemas.events import ActivateTrigger
from schemas.topics import Topics

from ..flows import ENTRY_TRIGGER_FLOW, ORDER_FLOW
from .test_engine_kafka import (  # the same engine and probes as the other engine tests
    execution_in,
    outcome_of,
    running_engine,
    store_broken_flow,
)

Send = Callable[[bytes, str], Awaitable[None]]


@pytest.fixture
def hostile_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"topic_partitions": 2})


@pytest.fixture
async def send(hostile_settings: Settings) -> AsyncIterator[Send]:
    """Publish raw bytes to the activations topic, as any service on the cluster can."""
    producer = AIOKafkaProducer(
        bootstrap_servers=hostile_settings.kafka_bootstrap_servers,
        acks="all",
        max_request_size=1_048_000,
    )
    await producer.start()
    topic = Topics(hostile_settings.topic_prefix).activations

    async def publish(value: bytes, key: str) -> None:
        await producer.send_and_wait(topic, value, key=key.encode())

    yield publish
    await producer.stop()


@pytest.fixture
async def drop(hostile_settings: Settings) -> AsyncIterator[None]:
    yield
    client: AsyncMongoClient[Any] = AsyncMongoClient(
        hostile_settings.mongodb_url.get_secret_value()
    )
    await client.drop_database(hostile_settings.database)
    await client.close()


def _valid(flow_id: str, trigger_id: str, **data: Any) -> tuple[str, bytes]:
    command = ActivateTrigger(
        activationId=str(uuid.uuid4()),
        flowId=flow_id,
        triggerId=trigger_id,
        data={"event": "after", **data},
        receivedAt=1,
    )
    return command.activationId, command.model_dump_json().encode()


def _message(activation_id: str, flow_id: str, trigger_id: str, data: bytes) -> bytes:
    """An activation message with `data` written as given (any bytes)."""
    return (
        b'{"activationId":"'
        + activation_id.encode()
        + b'","flowId":"'
        + flow_id.encode()
        + b'","triggerId":"'
        + trigger_id.encode()
        + b'","receivedAt":1,"data":'
        + data
        + b"}"
    )


async def _deployed(engine: httpx.AsyncClient, flow: dict[str, Any]) -> tuple[str, str]:
    deployed = (await engine.post("/api/automation/flows", json=flow)).json()
    return deployed["flowId"], deployed["triggers"][0]["triggerId"]


async def _letters(engine: httpx.AsyncClient) -> list[dict[str, Any]]:
    letters: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = (await engine.get("/api/automation/dead-letters", params=params)).json()
        letters += page["deadLetters"]
        cursor = page["next"]
        if not cursor:
            return letters


async def _decided(engine: httpx.AsyncClient, activation_id: str) -> str:
    outcome = await outcome_of(engine, activation_id)
    assert outcome is not None, f"activation {activation_id} was never decided"
    return str(outcome["outcome"])


@pytest.mark.usefixtures("drop")
async def test_a_message_nested_2000_deep_is_invalid_and_its_partition_moves_on(
    hostile_settings: Settings, send: Send
) -> None:
    async with running_engine(hostile_settings) as engine:
        flow_id, trigger_id = await _deployed(engine, ENTRY_TRIGGER_FLOW)
        deep = b"[" * 2000 + b"]" * 2000
        await send(_message("a-deep", flow_id, trigger_id, deep), "k")
        after, valid = _valid(flow_id, trigger_id)
        await send(valid, "k")
        assert await _decided(engine, after) == "ACTIVATED"
        outcome = await outcome_of(engine, "a-deep")
        assert outcome["outcome"] == "INVALID"
        assert "nested deeper than 65 levels" in outcome["detail"]


@pytest.mark.usefixtures("drop")
@pytest.mark.parametrize(
    ("name", "data"),
    [
        # 300,000 quotes: 600 KB as a message, 1.2 MB as the text of a letter (invalid:
        # its data is not an object)
        ("quotes", b'["' + b'\\"' * 300_000 + b'"]'),
        # 400 KB that are not UTF-8: each becomes three bytes as text
        ("bytes", b'"' + b"\xff" * 400_000 + b'"'),
    ],
)
async def test_a_letter_too_large_for_the_broker_keeps_the_head_size_and_sha256(
    hostile_settings: Settings, send: Send, name: str, data: bytes
) -> None:
    async with running_engine(hostile_settings) as engine:
        flow_id, trigger_id = await _deployed(engine, ENTRY_TRIGGER_FLOW)
        raw = _message(f"a-{name}", flow_id, trigger_id, data)
        await send(raw, "k")
        after, valid = _valid(flow_id, trigger_id)
        await send(valid, "k")
        assert await _decided(engine, after) == "ACTIVATED"
        (letter,) = [d for d in await _letters(engine) if d["offset"] == 0]
        assert letter["truncated"] is True
        assert letter["size"] == len(raw)
        assert letter["sha256"] == hashlib.sha256(raw).hexdigest()
        assert raw.decode(errors="replace").startswith(letter["value"])
        assert 0 < len(letter["value"]) < len(raw)
        replay = await engine.post(f"/api/automation/dead-letters/{letter['deadLetterId']}/replay")
        assert replay.status_code == 409
        assert replay.json()["code"] == 4090


@pytest.mark.usefixtures("drop")
async def test_non_finite_numbers_and_deep_data_are_invalid_at_once_and_fail_nothing(
    hostile_settings: Settings, send: Send
) -> None:
    async with running_engine(hostile_settings) as engine:
        flow_id, trigger_id = await _deployed(engine, ORDER_FLOW)
        started = await engine.post(
            f"/api/automation/flow/{flow_id}/execute", json={"order": {"id": "o-1", "total": 1}}
        )
        execution_id = started.json()["executionId"]
        assert await execution_in(engine, execution_id, "waiting")
        target = f'"orderId":"o-1","execution":"{execution_id}"'.encode()
        bad = {
            "a-nan": b'{"amount":NaN,' + target + b"}",
            "a-inf": b'{"amount":1e400,' + target + b"}",
            "a-deep": b'{"x":' + b"[" * 100 + b"]" * 100 + b"," + target + b"}",
        }
        for activation_id, data in bad.items():
            await send(_message(activation_id, flow_id, trigger_id, data), execution_id)
        for activation_id in bad:
            outcome = await outcome_of(engine, activation_id)
            assert outcome["outcome"] == "INVALID", outcome
        letters = await _letters(engine)
        assert sorted(d["attempts"] for d in letters) == [1, 1, 1]  # never retried
        still = (await engine.get(f"/api/automation/executions/{execution_id}")).json()
        assert still["status"] == "waiting"


@pytest.mark.usefixtures("drop")
async def test_fields_a_publisher_added_are_ignored(hostile_settings: Settings, send: Send) -> None:
    async with running_engine(hostile_settings) as engine:
        flow_id, trigger_id = await _deployed(engine, ENTRY_TRIGGER_FLOW)
        activation_id, valid = _valid(flow_id, trigger_id)
        extended = json.loads(valid) | {"tenant": "t-1", "schemaVersion": 2}
        await send(json.dumps(extended).encode(), "k")
        assert await _decided(engine, activation_id) == "ACTIVATED"
        assert await _letters(engine) == []


@pytest.mark.usefixtures("drop")
async def test_a_retrying_message_delays_only_its_own_partition(
    hostile_settings: Settings, send: Send
) -> None:
    settings = hostile_settings.model_copy(
        update={"consumer_attempts": 5, "retry_backoff_seconds": 1.0}
    )
    async with running_engine(settings) as engine:
        flow_id, trigger_id = await _deployed(engine, ENTRY_TRIGGER_FLOW)
        await store_broken_flow(settings)  # its activations fail on every try
        failing = "a-failing"
        await send(_message(failing, "broken", str(uuid.uuid4()), b"{}"), "a")  # partition 0
        # the other partition (of two)
        others = []
        for _ in range(5):
            activation_id, valid = _valid(flow_id, trigger_id)
            await send(valid, "d")  # partition 1
            others.append(activation_id)
        for activation_id in others:
            assert await _decided(engine, activation_id) == "ACTIVATED"
        # every one was decided while the failing one was still being tried (1+2+4+5 s)
        listed = (await engine.get(f"/api/automation/activations/{failing}")).status_code
        assert listed == 404
        assert await _decided(engine, failing) == "DEAD_LETTERED"


@pytest.mark.usefixtures("drop")
async def test_a_record_being_retried_is_not_committed_past_by_the_batches_after_it(
    hostile_settings: Settings, send: Send
) -> None:
    """Batches taken while a record of their partition is tried again (several are in
    flight at once) never commit past it: an engine stopped meanwhile leaves it, and the
    records after it, to the next engine, which decides each once."""
    settings = hostile_settings.model_copy(
        update={"consumer_attempts": 3, "retry_backoff_seconds": 1.0, "consumer_depth": 4}
    )
    async with running_engine(settings) as engine:
        flow_id, trigger_id = await _deployed(engine, ENTRY_TRIGGER_FLOW)
        await store_broken_flow(settings)  # its activations fail on every try
        failing = "a-failing"
        await send(_message(failing, "broken", str(uuid.uuid4()), b"{}"), "a")  # partition 0
        after = []
        for n in range(6):  # on the same partition, other keys, one batch each
            activation_id, valid = _valid(flow_id, trigger_id, n=n)
            await send(valid, "bce"[n % 3])
            after.append(activation_id)
            await asyncio.sleep(0.05)
        for activation_id in after:
            assert await _decided(engine, activation_id) == "ACTIVATED"
        # stopped while the failing one is still tried (its third try is 1 + 2 s later)
        assert (await engine.get(f"/api/automation/activations/{failing}")).status_code == 404
    await _remove_broken_flow(settings)  # (an engine cannot start with it stored)
    async with running_engine(settings) as engine:
        # delivered again, not committed past: its flow is gone now
        assert await _decided(engine, failing) == "UNKNOWN_TRIGGER"
        started = []
        for activation_id in after:
            outcome = await outcome_of(engine, activation_id)
            assert outcome is not None
            started += outcome["executionIds"]
        assert len(set(started)) == len(after)  # each started one execution, once
        for execution_id in started:
            execution = (await engine.get(f"/api/automation/executions/{execution_id}")).json()
            assert [h["event"] for h in execution["history"]].count("started") == 1


async def _remove_broken_flow(settings: Settings) -> None:
    client: AsyncMongoClient[Any] = AsyncMongoClient(settings.mongodb_url.get_secret_value())
    await client[settings.database]["flows"].delete_one({"_id": "broken"})
    await client.close()


def _hostile(flow_id: str, trigger_id: str) -> st.SearchStrategy[bytes]:
    """Bytes any publisher could send, none of them a valid command: random, deep, huge,
    escaped, not UTF-8, not finite, of the wrong types, with a readable activation id or
    without."""

    def with_data(data: bytes) -> bytes:
        return _message(f"a-{uuid.uuid4()}", flow_id, trigger_id, data)

    depth = st.integers(65, 5000)
    return st.one_of(
        st.binary(max_size=2000),
        st.builds(lambda n: b"[" * n + b"]" * n, depth),
        st.builds(lambda n: b'{"a":' * n + b"1" + b"}" * n, depth),
        st.builds(lambda n: with_data(b"[" * n + b"]" * n), depth),
        # escaped strings, in data that is not an object (so that each is invalid)
        st.builds(lambda n: with_data(b'["' + b'\\"' * n + b'"]'), st.integers(1, 400_000)),
        st.builds(lambda n: with_data(b'["' + b"\\u0000" * n + b'"]'), st.integers(1, 150_000)),
        st.builds(lambda b: with_data(b'"' + b + b'"'), st.binary(min_size=1, max_size=300_000)),
        st.builds(
            with_data,
            st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e999"]).map(
                lambda n: b'{"n":' + n + b"}"
            ),
        ),
        st.builds(with_data, st.sampled_from([b"1", b'"s"', b"[]", b"null", b"true"])),
        st.builds(with_data, st.just(b'{"s":"\\ud800"}')),
        st.fixed_dictionaries(
            {
                "activationId": st.one_of(st.integers(), st.none(), st.text(max_size=5000)),
                "flowId": st.one_of(st.integers(), st.just(flow_id), st.lists(st.integers())),
                "triggerId": st.one_of(st.just(trigger_id), st.booleans()),
                "receivedAt": st.one_of(st.text(), st.floats(allow_nan=False)),
                "userToken": st.just("secret-user-token-of-someone"),
            }
        ).map(lambda fields: json.dumps(fields).encode()),
    )


def _examples(strategy: st.SearchStrategy[bytes], count: int) -> list[bytes]:
    found: list[bytes] = []

    @settings(
        max_examples=count,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(example: bytes) -> None:
        found.append(example)

    collect()
    return found


@pytest.mark.usefixtures("drop")
async def test_hostile_bytes_never_hold_their_partition_back_across_a_restart(
    hostile_settings: Settings, send: Send
) -> None:
    async with running_engine(hostile_settings) as engine:
        flow_id, trigger_id = await _deployed(engine, ENTRY_TRIGGER_FLOW)
    hostile = [m for m in _examples(_hostile(flow_id, trigger_id), 40) if len(m) < 1_000_000]
    half = len(hostile) // 2
    valid_ids = []
    async with running_engine(hostile_settings) as engine:
        for n, message in enumerate(hostile[:half]):
            await send(message, f"key-{n % 4}")
            activation_id, valid = _valid(flow_id, trigger_id)
            await send(valid, f"key-{n % 4}")
            valid_ids.append(activation_id)
        await asyncio.sleep(0.5)  # the engine stops in the middle of them
    for n, message in enumerate(hostile[half:]):
        await send(message, f"key-{n % 4}")
        activation_id, valid = _valid(flow_id, trigger_id)
        await send(valid, f"key-{n % 4}")
        valid_ids.append(activation_id)
    async with running_engine(hostile_settings) as engine:
        for activation_id in valid_ids:
            assert await _decided(engine, activation_id) == "ACTIVATED"
        letters = await _letters(engine)
        assert len(letters) == len(hostile)
        assert {d["kind"] for d in letters} == {"invalid"}
        for letter in letters:
            assert len(json.dumps(letter)) < 1_000_000
            assert "secret-user-token-of-someone" not in json.dumps(letter)
        metrics = (await engine.get("/metrics")).text
        assert "hookflow_engine_skipped_messages_total{" not in metrics
        assert "hookflow_engine_rewinds_total{" not in metrics
