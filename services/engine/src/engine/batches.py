"""Batches of records, several in flight, run in order per key and keys concurrently,
committed in order; a record that fails is delivered again after a back-off with only
its partition rewound and paused, and one that cannot be taken becomes a dead letter (or,
as a last resort, a skipped record).

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
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic

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
    # batches handled at once: the next is taken while earlier ones wait on the store
    # and Kafka, so a record waits for about one batch instead of two or three
    depth: int = 4
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


Key = tuple[str, int, bytes | None]  # topic, partition, record key


@dataclass
class _Span:
    """A batch's records of one partition: where they start, the first one left undone
    (or the one after the last), and whether one was left undone."""

    first: int
    next: int
    undone: bool = False


@dataclass
class Batch(Generic[Command]):
    """A batch taken from the consumer: its items, its place among the batches in
    flight, and per key the chain of earlier items it follows."""

    seq: int
    items: list[Item[Command]]
    prior: dict[Key, "asyncio.Future[None] | None"]
    chains: dict[Key, "asyncio.Future[None]"]
    spans: dict[TopicPartition, _Span] = field(default_factory=dict)
    done: bool = False

    async def after_earlier(self) -> None:
        """Wait until the batches in flight that hold records of this batch's keys are
        done (their outcomes stored)."""
        earlier = [prior for prior in self.prior.values() if prior is not None]
        if earlier:
            await asyncio.wait(earlier)


class Batches:
    """Runs the batches of one consumer: in order per key, keys concurrently, and up to
    `depth` batches at once.

    A batch's handler returns once its work has started, so that the consumer takes what
    arrived meanwhile at once instead of after the batch (a record then waits for one
    batch, not for the end of the one ahead of it and its own); a record still follows
    the earlier records of its key, whichever batch they came in. Offsets are committed
    by this class, per partition up to its first record not yet done: never past one that
    an earlier batch still handles or left to be delivered again.

    A record that fails is not retried inside the batch (that would hold every other
    partition's records back): its partition is rewound to it and paused for the
    back-off at once, the records after it that batches in flight still hold are left
    for the delivery again, and it comes with a later batch. Its tries are counted here,
    by position, in this process.
    """

    _MAX_TRACKED = 10_000

    def __init__(self, config: ConsumerConfig, metrics: Metrics, skip: Skip) -> None:
        self._config = config
        self._metrics = metrics
        self._skip = skip
        # position -> (failures of its own, outages met)
        self._tries: dict[tuple[str, int, int], tuple[int, int]] = {}
        self._seq = 0
        self._chains: dict[Key, asyncio.Future[None]] = {}  # the last item of each key
        self._order: dict[TopicPartition, deque[Batch[Any]]] = {}  # in flight, per partition
        # partition -> (offset, seq): rewound to `offset` when batch `seq` was the last taken
        self._rewinds: dict[TopicPartition, tuple[int, int]] = {}
        # key -> (offset, seq): its record at `offset` comes again; its later records in
        # batches up to `seq` are left for their delivery again (other keys go on)
        self._held: dict[Key, tuple[int, int]] = {}
        self._expect: dict[TopicPartition, int] = {}  # where a rewound partition restarts
        self._floor: dict[TopicPartition, int] = {}  # commits stop here until it is done
        self._slots = asyncio.Semaphore(config.concurrency)
        self._depth = asyncio.Semaphore(config.depth)
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    def open(self, raw: Any, model: type[Command]) -> Batch[Command]:
        """A batch of records with their commands (or why each is not one), placed after
        the batches in flight. Records of a rewound partition fetched before its rewind
        are dropped: they come again."""
        records: Sequence[ConsumerRecord[Any, Any]] = (
            raw if isinstance(raw, tuple | list) else (raw,)
        )
        self._metrics.batch_size.observe(len(records))
        records = self._fresh(records)
        self._seq += 1
        batch: Batch[Command] = Batch(self._seq, [], {}, {})
        loop = asyncio.get_running_loop()
        for record in records:
            try:
                batch.items.append(Item(record, read_command(record.value, model)))
            except ValueError as exc:
                batch.items.append(Item(record, None, f"not a valid {model.__name__}: {exc}"))
            key = (record.topic, record.partition, record.key)
            if key not in batch.chains:
                batch.prior[key] = self._chains.get(key)
                batch.chains[key] = self._chains[key] = loop.create_future()
            partition = TopicPartition(record.topic, record.partition)
            span = batch.spans.get(partition)
            if span is None:
                batch.spans[partition] = span = _Span(record.offset, record.offset + 1)
                self._order.setdefault(partition, deque()).append(batch)
            span.next = max(span.next, record.offset + 1)
        return batch

    def _fresh(
        self, records: Sequence[ConsumerRecord[Any, Any]]
    ) -> Sequence[ConsumerRecord[Any, Any]]:
        if not self._expect:
            return records
        first: dict[TopicPartition, int] = {}
        for record in records:
            first.setdefault(TopicPartition(record.topic, record.partition), record.offset)
        stale = set()
        for partition, offset in first.items():
            expected = self._expect.get(partition)
            if expected is None:
                continue
            if offset == expected:
                del self._expect[partition]  # delivered again from where it was rewound
            elif offset > expected:
                stale.add(partition)
        return [r for r in records if TopicPartition(r.topic, r.partition) not in stale]

    async def submit(
        self,
        batch: Batch[Command],
        work: Callable[[], Awaitable[None]],
        consumer: Any,
    ) -> None:
        """Start the work of a batch and return once another may start (at once while
        fewer than `depth` are in flight); its offsets are committed when it and the
        batches before it are done.
        Without a consumer (FastStream's test broker) the work is done here."""
        if consumer is None:
            try:
                await work()
            finally:
                self._close(batch)
            return
        await self._depth.acquire()
        if self._closing:  # one at a time, done before the next is taken
            try:
                await work()
            except Exception as exc:
                self._abandon(batch, exc, consumer)
            finally:
                self._depth.release()
            await self._commit(self._close(batch), consumer)
            return

        async def run() -> None:
            error: BaseException | None = None
            try:
                await work()
            except Exception as exc:
                error = exc
            finally:
                self._depth.release()
            if error is not None:
                self._abandon(batch, error, consumer)
            await self._commit(self._close(batch), consumer)

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if any(prior is not None for prior in batch.prior.values()):
            # its keys are busy in a batch in flight (a burst to one trigger, say): taking
            # more now would only queue small batches behind them; what arrives meanwhile
            # makes the next batch larger instead
            await asyncio.wait([task])
        # return once another batch may start: the consumer takes what arrived meanwhile
        # then, all of it, instead of holding the next few records until a slot frees
        async with self._depth:
            pass

    async def drain(self) -> None:
        """Wait for every batch in flight (partitions revoked, or the consumer stopping)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self) -> None:
        """Before the consumer stops: the batches in flight finish and commit, and any
        batch taken meanwhile is handled before the next (so this ends under load too)."""
        self._closing = True
        await self.drain()

    async def run(
        self,
        batch: Batch[Command],
        handle: Callable[[Command], Awaitable[None]],
        park: Park[Command],
        consumer: Any,
    ) -> None:
        """Handle every item of a batch, each after the earlier items of its key; a
        partition is rewound and paused at its first record left undone, for that
        record's back-off."""
        by_key: dict[Key, list[Item[Command]]] = {}
        for item in batch.items:
            record = item.record
            by_key.setdefault((record.topic, record.partition, record.key), []).append(item)

        async def in_order(key: Key, keyed: list[Item[Command]]) -> None:
            prior = batch.prior.get(key)
            if prior is not None:
                await asyncio.shield(prior)
            async with self._slots:
                for index, item in enumerate(keyed):
                    if self._left(batch, item):
                        self._undone(batch, keyed[index:])
                        return
                    retry = await self._settle(item, handle, park, in_batch=consumer is None)
                    if retry is not None:
                        self._undone(batch, keyed[index:])
                        if consumer is not None:
                            record = item.record
                            partition = TopicPartition(record.topic, record.partition)
                            self._hold(key, record.offset)
                            self._rewind(batch.seq, partition, record.offset, retry, consumer)
                        return

        await asyncio.gather(*(in_order(key, keyed) for key, keyed in by_key.items()))
        if consumer is not None:
            self._note_lag(batch, consumer)

    def _left(self, batch: Batch[Any], item: Item[Any]) -> bool:
        """Whether an item is left for its delivery again: an earlier record of its key,
        in an earlier batch, was left to come again after its batch was taken."""
        record = item.record
        held = self._held.get((record.topic, record.partition, record.key))
        return held is not None and record.offset > held[0] and batch.seq <= held[1]

    @staticmethod
    def _undone(batch: Batch[Any], items: list[Item[Any]]) -> None:
        for item in items:
            span = batch.spans[TopicPartition(item.record.topic, item.record.partition)]
            if not span.undone or item.record.offset < span.next:
                span.next, span.undone = item.record.offset, True

    def _chain_done(self, key: Key, chain: "asyncio.Future[None]") -> None:
        if not chain.done():
            chain.set_result(None)
        if self._chains.get(key) is chain:
            del self._chains[key]

    def _hold(self, key: Key, offset: int) -> None:
        held = self._held.get(key)
        if held is None or offset <= held[0] or held[1] < self._seq:
            self._held[key] = (offset, self._seq)
        if len(self._held) > self._MAX_TRACKED:
            self._held.pop(next(iter(self._held)))

    def _rewind(
        self, seq: int, partition: TopicPartition, offset: int, retry: "_Retry", consumer: Any
    ) -> None:
        """Deliver a partition again from `offset` on, after `retry`'s back-off; `seq`:
        the batch the record at `offset` came in."""
        earlier = self._rewinds.get(partition)
        if earlier is None or offset < earlier[0] or earlier[1] < seq:
            self._rewinds[partition] = (offset, self._seq)
            self._expect[partition] = offset
            consumer.seek(partition, offset)
        self._pause(consumer, partition, retry.delay)
        if retry.outage:
            self._metrics.rewinds.labels(partition.topic).inc()

    def _abandon(self, batch: Batch[Any], error: BaseException, consumer: Any) -> None:
        """A batch whose work failed as a whole (the store away while its outcomes were
        read or written, say): each of its partitions is delivered again from the batch's
        first record on, after a back-off that grows while it keeps failing."""
        for partition, span in batch.spans.items():
            position = (partition.topic, partition.partition, span.first)
            own, outages = self._tries.pop(position, (0, 0))
            record = next(
                i.record
                for i in batch.items
                if i.record.offset == span.first and i.record.partition == partition.partition
            )
            retry = self._again(record, error, position, own, outages + 1)
            span.next, span.undone = span.first, True
            self._rewind(batch.seq, partition, span.first, retry, consumer)
        for item in batch.items:  # the first record of each key
            record = item.record
            key = (record.topic, record.partition, record.key)
            held = self._held.get(key)
            if held is None or held[1] < self._seq:
                self._hold(key, record.offset)

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """Partitions this consumer no longer owns: what was known of their rewinds."""
        for partition in partitions:
            self._rewinds.pop(partition, None)
            self._expect.pop(partition, None)
            self._floor.pop(partition, None)
        gone = {(p.topic, p.partition) for p in partitions}
        self._held = {k: v for k, v in self._held.items() if (k[0], k[1]) not in gone}

    def _close(self, batch: Batch[Any]) -> dict[TopicPartition, int]:
        """Mark a batch done; per partition, where the commit may now go."""
        batch.done = True
        for key, chain in batch.chains.items():  # its outcomes are stored: its keys go on
            self._chain_done(key, chain)
        positions: dict[TopicPartition, int] = {}
        for partition in batch.spans:
            queue = self._order.get(partition)
            while queue and queue[0].done:
                span = queue.popleft().spans[partition]
                floor = self._floor.get(partition)
                if floor is not None and span.first > floor:
                    continue  # taken before its partition was rewound: comes again
                positions[partition] = span.next
                if span.undone:
                    self._floor[partition] = span.next
                else:
                    self._floor.pop(partition, None)
            if queue is not None and not queue:
                del self._order[partition]
        return positions

    async def _commit(self, positions: dict[TopicPartition, int], consumer: Any) -> None:
        if not positions:
            return
        try:
            await consumer.commit(positions)
        except Exception:  # revoked meanwhile, or Kafka away: delivered again, decided once
            logger.warning("committing offsets failed", exc_info=True)

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

    def _note_lag(self, batch: Batch[Any], consumer: Any) -> None:
        for partition, span in batch.spans.items():
            end = consumer.highwater(partition)
            if isinstance(end, int):
                self._metrics.lag.labels(partition.topic, str(partition.partition)).set(
                    end - span.next
                )
