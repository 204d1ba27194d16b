"""Acknowledged sends through librdkafka (`confluent-kafka`), with the guarantees of every
hookflow producer (acks=all, idempotent) and Kafka's default partitioner (murmur2: a key
lands where aiokafka and the Java clients put it).

The hot paths' sends go through it: the gateway's accepted callbacks and starts, the
engine's execution events and activation outcomes. There librdkafka measured cheaper
than FastStream's publisher on aiokafka (bench K0r, C0r, P1; docs/design.md, "Sends
through librdkafka"); FastStream keeps the subscribers and the few other publishers.

librdkafka sends from its own threads; a thread of this class serves its delivery
reports, and each report completes the future its sender awaits on the event loop (one
wake-up of the loop per batch of reports, not one per message).

An idempotent producer can fail for good (librdkafka's fatal error: the cluster refuses
it a producer id, or fences it): that client never sends again. The delivery thread then
fails what it still holds, logs why, and makes a new client (at once the first time,
then after a growing pause while the cause stays), so the service sends again once the
cluster lets it, without a restart.
"""

import asyncio
import collections
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka import Producer as Client

logger = logging.getLogger(__name__)

_client_logger = logging.getLogger(__name__ + ".librdkafka")
_SERVE_SECONDS = 0.05  # the delivery thread's wait for reports while idle
_RENEW_PAUSES = (0.0, 1.0, 2.0, 5.0, 10.0, 30.0)  # before each new client, in a row


class TooLarge(Exception):
    """The message is over the size the client or the broker takes."""


class Producer:
    """Acknowledged sends: `send`'s future completes once every in-sync replica has the
    record."""

    def __init__(
        self,
        bootstrap_servers: str,
        linger_ms: float,
        batch_bytes: int,
        client_id: str,
        timeout_seconds: float = 40.0,
        buffer_bytes: int = 32 * 1024 * 1024,
        on_renewed: Callable[[], None] | None = None,
    ) -> None:
        """`timeout_seconds`: how long a record may wait for its acknowledgement (the
        request's own deadline answers earlier); `buffer_bytes`: the records held
        unacknowledged at most, past which a send fails at once (the broker is away);
        `on_renewed`: called (on the delivery thread) each time a client failed for good
        and a new one was made (the services count it)."""
        self._config = {
            "bootstrap.servers": bootstrap_servers,
            "client.id": client_id,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": linger_ms,
            "batch.size": batch_bytes,
            "partitioner": "murmur2_random",
            "message.timeout.ms": int(timeout_seconds * 1000),
            "queue.buffering.max.kbytes": max(1, buffer_bytes // 1024),
            # a restarted broker is reached again within a second (librdkafka's
            # default backs off up to 10 s; aiokafka retries every 50 ms)
            "reconnect.backoff.max.ms": 1000,
            # its messages through the service's logging (its JSON lines), served by
            # the delivery thread's polls, rather than written to stderr
            "logger": _client_logger,
        }
        self._client = Client(self._config)
        self._on_renewed = on_renewed
        self._failed_in_a_row = 0  # fatal errors since the last acknowledged send
        self._reports: collections.deque[tuple[asyncio.Future[None], Any]] = collections.deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    async def start(self, connect_seconds: float = 5.0) -> None:
        """Serve delivery reports; connect first (the cluster's metadata, at most
        `connect_seconds`), so the first callback does not wait for it."""
        self._loop = asyncio.get_running_loop()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._serve, name="kafka-deliveries", daemon=True)
        self._thread.start()
        try:
            await asyncio.to_thread(self._client.list_topics, None, connect_seconds)
        except KafkaException as exc:  # sends wait for the broker as they would have
            logger.warning("Kafka not reached at start", extra={"error": str(exc)})

    async def stop(self, flush_seconds: float = 5.0) -> None:
        """Send what is pending (at most `flush_seconds`), then stop serving reports."""
        with contextlib.suppress(KafkaException):  # a client that failed for good
            await asyncio.to_thread(self._client.flush, flush_seconds)
        self._stopping.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
        self._settle()

    def send(
        self,
        topic: str,
        message: bytes,
        key: bytes,
        headers: dict[str, str],
        correlation_id: str | None = None,
    ) -> asyncio.Future[None]:
        """Enqueue `message` (sends enqueued one after another keep their order on a
        partition); the future completes once it is acknowledged. `TooLarge` for a size
        the client or the broker refuses, `KafkaException` or `BufferError` for the rest."""
        assert self._loop is not None, "start the producer first"
        future: asyncio.Future[None] = self._loop.create_future()
        reports = self._reports
        try:
            self._client.produce(
                topic,
                message,
                key,
                headers=(
                    [*headers.items(), ("correlation_id", correlation_id)]
                    if correlation_id
                    else list(headers.items())
                ),
                on_delivery=lambda error, _: reports.append((future, error)),
            )
        except KafkaException as exc:
            raise _error(exc.args[0]) from None
        return future

    def _serve(self) -> None:
        """The delivery thread: librdkafka calls `on_delivery` inside `poll`."""
        loop = self._loop
        assert loop is not None
        while not self._stopping.is_set():
            try:
                self._client.poll(_SERVE_SECONDS)
            except KafkaException as exc:  # poll raises librdkafka's fatal error
                error = exc.args[0]
                if error.fatal():
                    self._renew(error)
                else:
                    logger.warning("Kafka producer error", extra={"error": error.str()})
            if self._reports:
                try:
                    loop.call_soon_threadsafe(self._settle)
                except RuntimeError:  # the loop closed under a stopping process
                    return

    def _renew(self, error: KafkaError) -> None:
        """The delivery thread, on a fatal error: fail every record the failed client
        holds (their reports say so; a record already sent may have been written, and
        its sender's retry is deduplicated as any other), then make a new client, after
        a pause that grows while new clients fail the same way."""
        failed = self._client
        pause = _RENEW_PAUSES[min(self._failed_in_a_row, len(_RENEW_PAUSES) - 1)]
        self._failed_in_a_row += 1
        logger.error(
            "the Kafka producer failed for good; made anew",
            extra={"error": error.str(), "code": error.name(), "pause_seconds": pause},
        )
        failed.purge()
        with contextlib.suppress(KafkaException):
            failed.poll(0)  # their reports, with the purge's error
        if pause and self._stopping.wait(pause):  # sends fail meanwhile (refused)
            return
        self._client = Client(self._config)
        if self._on_renewed is not None:
            self._on_renewed()

    def _settle(self) -> None:
        reports = self._reports
        while reports:
            future, error = reports.popleft()
            if future.done():  # its request gave up (deadline) or was cancelled
                continue
            if error is None:
                self._failed_in_a_row = 0
                future.set_result(None)
            else:
                future.set_exception(_error(error))


def _error(error: KafkaError) -> Exception:
    if error.code() == KafkaError.MSG_SIZE_TOO_LARGE:
        return TooLarge(error.str())
    return KafkaException(error)
