"""A batch of records, run in order per key and keys concurrently; a record that fails
is delivered again after a back-off with only its partition rewound and paused, and one
that cannot be taken becomes a dead letter (or, as a last resort, a skipped record).

The rules (the contract's "Bad input and poison messages" and "Hostile input"):
- a record that is not a valid command is dead-lettered at once; it is read with the
  gateway's rules (`schemas.requests.parse_object`: nesting, numbers that are not
  finite, lone surrogates), and fields it does not know are ignored;
- a record whose handling fails is tried again after a back-off that doubles: its
  partition is rewound to it and paused meanwhile, so that it delays only its own
  partition; after `attempts` tries, if the error is one the record causes, it is
  dead-lettered and its partition moves on;
- if the error is the infrastructure's (the store, Kafka or the auth service away), the
  partition is rewound and paused the same way, as long as it takes;
- if its dead letter cannot be written either (not for the infrastructure's sake), the
  last resort keeps its position, size, SHA-256 and error in the store, counts it in
  `hookflow_engine_skipped_messages_total`, and the partition moves on.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from engine.faults import describe, infrastructure_error
from engine.metrics import Metrics
from engine.records import Command, Item, read_command

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConsumerConfig:
    group: str
    batch_size: int = 500
    batch_timeout_ms: int = 20
    # bytes fetched per partition at a time: the consumer fetches a partition again only
    # once what it fetched is handled, and each fetch stalls the partition (100-250 ms
    # on the local machine); at the client's 1 MB (2,000 callbacks) that capped one
    # partition at 3,500 decisions/s
    fetch_bytes: int = 8 * 1024 * 1024
    # keys handled at once within a batch; their compare-and-sets go to the store
    # together (`store._GroupedSaves`), so more at once is cheaper per resume for the
    # engine and the server alike: 128 resumed 20% more a second than 16 on 2 cores
    concurrency: int = 128
    attempts: int = 5  # tries of one record before it is dead-lettered
    backoff_seconds: float = 0.2  # after the first failed try; doubled after each, at most 5 s
    max_backoff_seconds: float = 5.0


Park = Callable[[Item[Command], BaseException | None], Awaitable[None]]
# the last resort for a record whose dead letter could not be written: (record, error)
Skip = Callable[[ConsumerRecord[Any, Any], str], Awaitable[None]]


@dataclass(frozen=True)
class _Retry:
    """A record to deliver again after `delay` seconds; `outage` when the
    infrastructure failed it (then it is tried for as long as it takes: outages do
    not count as the record's own failures)."""

    delay: float
    outage: bool
    tries: int  # of this kind, so far


class Batches:
    """Runs the items of a batch: in order per key, keys concurrently.

    A record that fails is not retried inside the batch (that would hold every other
    partition's records back): its partition is rewound to it and paused for the
    back-off, and it comes again with a later batch. Its tries are counted here, by
    position, in this process.
    """

    _MAX_TRACKED = 10_000

    def __init__(self, config: ConsumerConfig, metrics: Metrics, skip: Skip) -> None:
        self._config = config
        self._metrics = metrics
        self._skip = skip
        # position -> (failures of its own, outages met)
        self._tries: dict[tuple[str, int, int], tuple[int, int]] = {}

    def parsed(self, raw: Any, model: type[Command]) -> list[Item[Command]]:
        """The records of a batch with their commands, or why each is not one."""
        records: Sequence[ConsumerRecord[Any, Any]] = (
            raw if isinstance(raw, tuple | list) else (raw,)
        )
        self._metrics.batch_size.observe(len(records))
        items: list[Item[Command]] = []
        for record in records:
            try:
                items.append(Item(record, read_command(record.value, model)))
            except ValueError as exc:
                items.append(Item(record, None, f"not a valid {model.__name__}: {exc}"))
        return items

    async def run(
        self,
        items: list[Item[Command]],
        handle: Callable[[Command], Awaitable[None]],
        park: Park[Command],
        consumer: Any,
    ) -> None:
        """Handle every item; rewind and pause each partition at its first record left
        undone, for that record's back-off."""
        by_key: dict[tuple[str, int, bytes | None], list[Item[Command]]] = {}
        for item in items:
            record = item.record
            by_key.setdefault((record.topic, record.partition, record.key), []).append(item)
        failed: dict[TopicPartition, tuple[int, _Retry]] = {}
        slots = asyncio.Semaphore(self._config.concurrency)

        async def in_order(keyed: list[Item[Command]]) -> None:
            async with slots:
                for item in keyed:
                    retry = await self._settle(item, handle, park, in_batch=consumer is None)
                    if retry is not None:
                        record = item.record
                        partition = TopicPartition(record.topic, record.partition)
                        earlier = failed.get(partition)
                        if earlier is None or record.offset < earlier[0]:
                            failed[partition] = (record.offset, retry)
                        return

        await asyncio.gather(*(in_order(keyed) for keyed in by_key.values()))
        if consumer is None:  # FastStream's test broker has no consumer
            return
        for partition, (offset, retry) in failed.items():
            consumer.seek(partition, offset)  # the commit after this batch stops there
            self._pause(consumer, partition, retry.delay)
            if retry.outage:
                self._metrics.rewinds.labels(partition.topic).inc()
        self._note_lag(items, {p: offset for p, (offset, _) in failed.items()}, consumer)

    @staticmethod
    def _pause(consumer: Any, partition: TopicPartition, delay: float) -> None:
        """Fetch nothing more of `partition` for `delay` seconds (unless it is revoked
        meanwhile: its next owner starts at once)."""
        with contextlib.suppress(Exception):
            consumer.pause(partition)

        def resume() -> None:
            with contextlib.suppress(Exception):  # revoked meanwhile
                consumer.resume(partition)

        asyncio.get_running_loop().call_later(delay, resume)

    async def _settle(
        self,
        item: Item[Command],
        handle: Callable[[Command], Awaitable[None]],
        park: Park[Command],
        in_batch: bool,
    ) -> _Retry | None:
        """Handle an item, or park it; a `_Retry` leaves it to be delivered again.
        `in_batch` (no consumer to rewind, as under the test broker): wait and try again
        here."""
        while True:
            retry = await self._once(item, handle, park)
            if retry is None or not in_batch:
                return retry
            if retry.outage and retry.tries >= self._config.attempts:
                return retry  # left undone: delivered again after the outage
            await asyncio.sleep(retry.delay)

    async def _once(
        self,
        item: Item[Command],
        handle: Callable[[Command], Awaitable[None]],
        park: Park[Command],
    ) -> _Retry | None:
        record = item.record
        position = (record.topic, record.partition, record.offset)
        own, outages = self._tries.pop(position, (0, 0))
        error: BaseException | None = None
        if item.command is not None:
            command = item.command
            try:
                await handle(command)
            except Exception as exc:
                error = exc
                if infrastructure_error(exc):
                    return self._again(record, exc, position, own, outages + 1)
                own += 1
                if own < self._config.attempts:
                    return self._again(record, exc, position, own, outages)
                self._failed(record, exc, own)
            else:
                return None
        # invalid, or failed by its own doing: parked
        try:
            await park(item, error)
        except Exception as exc:
            if infrastructure_error(exc):
                return self._again(record, exc, position, own, outages + 1)
            self._failed(record, exc, own)
            # not even the dead letter could be written: the last resort
            return await self._last_resort(item, error, exc, position, (own, outages))
        return None

    async def _last_resort(
        self,
        item: Item[Command],
        error: BaseException | None,
        parking: BaseException,
        position: tuple[str, int, int],
        tries: tuple[int, int],
    ) -> _Retry | None:
        record = item.record
        why = f"its dead letter could not be written ({describe(parking)}); it was " + (
            f"failing with {describe(error)}" if error is not None else item.invalid or "invalid"
        )
        try:
            await self._skip(record, why)
        except Exception as exc:
            if infrastructure_error(exc):
                return self._again(record, exc, position, tries[0], tries[1] + 1)
            self._failed(record, exc, tries[0])
            logger.critical(
                "message skipped without a record of it",
                exc_info=True,
                extra={
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                },
            )
        self._metrics.skipped.labels(record.topic).inc()
        return None

    def _again(
        self,
        record: ConsumerRecord[Any, Any],
        error: BaseException,
        position: tuple[str, int, int],
        own: int,
        outages: int,
    ) -> _Retry:
        """Note a failed try of a record to be delivered again; when, and why."""
        self._failed(record, error, own + outages)
        if len(self._tries) >= self._MAX_TRACKED:
            self._tries.clear()  # positions left behind by revoked partitions
        self._tries[position] = (own, outages)
        outage = infrastructure_error(error)
        tries = outages if outage else own
        delay = min(
            self._config.backoff_seconds * 2 ** min(max(0, tries - 1), 16),
            self._config.max_backoff_seconds,
        )
        return _Retry(delay, outage, tries)

    def _failed(self, record: ConsumerRecord[Any, Any], error: BaseException, tries: int) -> None:
        self._metrics.retries.labels(record.topic).inc()
        logger.warning(
            "handling failed",
            exc_info=error,
            extra={
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "attempt": tries,
            },
        )

    def _note_lag(
        self,
        items: list[Item[Command]],
        failed: dict[TopicPartition, int],
        consumer: Any,
    ) -> None:
        handled: dict[TopicPartition, int] = {}
        for item in items:
            partition = TopicPartition(item.record.topic, item.record.partition)
            handled[partition] = max(handled.get(partition, -1), item.record.offset + 1)
        for partition, next_offset in handled.items():
            end = consumer.highwater(partition)
            if isinstance(end, int):
                behind = end - failed.get(partition, next_offset)
                self._metrics.lag.labels(partition.topic, str(partition.partition)).set(behind)
