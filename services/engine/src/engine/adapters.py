"""Real adapters of the engine's ports: Kafka publisher, HTTP blocks, auth introspection."""

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

import httpx
from faststream.kafka import KafkaBroker
from pydantic import BaseModel

from engine.core.execution import HttpCall
from engine.core.expressions import ExpressionError
from engine.ports import HttpError
from schemas.access import INTERNAL_KEY_HEADER
from schemas.events import (
    ActivationOutcome,
    DeadLetter,
    ExecutionEvent,
    RegistryRecord,
    TriggerRegistered,
)
from schemas.topics import Topics
from schemas.users import TokenIntrospection, User, plausible_token

_JSON = {"content-type": "application/json"}  # what the messages are


class KafkaPublisher:
    """Publishes engine events; each waits for the broker's acknowledgement (acks=all)."""

    def __init__(self, broker: KafkaBroker, topics: Topics) -> None:
        self._broker = broker
        self._inputs = frozenset({topics.activations, topics.execution_starts})
        self._letters = broker.publisher(
            topics.dead_letters,
            title="engine:dead-letters",
            schema=DeadLetter,
            description="Messages the engine gave up on: invalid ones at once, others after "
            "every attempt failed; key: the original key. Listed and replayed through "
            "/api/automation/dead-letters.",
        )
        self._events = broker.publisher(
            topics.execution_events,
            title="engine:execution-events",
            schema=ExecutionEvent,
            description="Executions started, waiting, resumed, completed and failed; "
            "key: execution id.",
        )
        self._outcomes = broker.publisher(
            topics.activation_outcomes,
            title="engine:activation-outcomes",
            schema=ActivationOutcome,
            description="What became of each activation; key: activation id.",
        )
        self._registry = broker.publisher(
            topics.flow_registry,
            title="engine:flow-registry",
            schema=RegistryRecord,
            description="Compacted: one record per flow version (key flowId) and per trigger "
            "(key flowId/triggerId); re-published at every engine start.",
        )

    async def execution_events(self, events: Sequence[ExecutionEvent]) -> None:
        await _acknowledged(self._events, [(e, e.executionId) for e in events])

    async def outcomes(self, outcomes: Sequence[ActivationOutcome]) -> None:
        await _acknowledged(self._outcomes, [(o, o.activationId) for o in outcomes])

    async def dead_letter(self, letter: DeadLetter) -> None:
        key = letter.key.encode() if letter.key is not None else None
        await self._letters.publish(letter.model_dump(mode="json"), key=key)

    async def replay(self, letter: DeadLetter) -> None:
        if letter.topic not in self._inputs:
            raise ValueError(f"dead letter {letter.deadLetterId} is from topic {letter.topic}")
        key = letter.key.encode() if letter.key is not None else None
        await self._broker.publish(
            letter.value.encode(),
            topic=letter.topic,
            key=key,
            headers={"content-type": "application/json"},
        )

    async def registry(self, records: Sequence[RegistryRecord]) -> None:
        for record in records:
            key = (
                f"{record.flowId}/{record.triggerId}"
                if isinstance(record, TriggerRegistered)
                else record.flowId
            )
            await self._registry.publish(record.model_dump(mode="json"), key=key.encode())


async def _acknowledged(publisher: Any, messages: Sequence[tuple[BaseModel, str]]) -> None:
    """Publish (message, key) pairs: enqueued one after the other (their order on a
    partition), acknowledged together; each written as JSON bytes by pydantic (FastStream
    would dump the model to a dict and that to text again)."""
    pending = []
    for message, key in messages:
        sent = await publisher.publish(
            message.model_dump_json().encode(), key=key.encode(), headers=_JSON, no_confirm=True
        )
        if isinstance(sent, asyncio.Future):
            pending.append(sent)
    await asyncio.gather(*pending)


class HttpxRunner:
    """Runs http_request blocks with a timeout and a response size limit.

    Whatever a request built from a flow's data can do wrong (a header that is not ASCII,
    a URL that does not parse, a port out of range, a refused connection) is an
    HttpError: the block fails and the execution with it, never the message.
    """

    def __init__(self, client: httpx.AsyncClient, max_bytes: int) -> None:
        self._client = client
        self._max = max_bytes

    async def __call__(self, call: HttpCall) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"headers": call.headers, "timeout": call.timeout}
        if isinstance(call.body, str):
            kwargs["content"] = call.body.encode()
        elif call.body is not None:
            kwargs["json"] = call.body
        try:
            async with self._client.stream(call.method, call.url, **kwargs) as response:
                chunks, size = [], 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > self._max:
                        raise HttpError(f"response larger than {self._max} bytes")
                    chunks.append(chunk)
        except HttpError:
            raise
        except httpx.TimeoutException as exc:
            raise HttpError(f"{call.method} {call.url} timed out after {call.timeout}s") from exc
        except httpx.HTTPError as exc:
            raise HttpError(f"{call.method} {call.url} failed: {exc}") from exc
        except UnicodeEncodeError as exc:
            raise HttpError(
                f"{call.method} {call.url} not sent: a header is not ASCII ({exc.reason})"
            ) from exc
        except Exception as exc:  # InvalidURL's cousins, ExceptionGroup from the transport
            raise HttpError(f"{call.method} {call.url!r} not sent: {_describe(exc)}") from exc
        raw = b"".join(chunks)
        return {
            "status": response.status_code,
            "headers": dict(response.headers),
            "body": _decode(raw, response.headers.get("content-type", "")),
        }


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        return _describe(exc.exceptions[0])
    return f"{type(exc).__name__}: {exc}"[:300]


def _decode(raw: bytes, content_type: str) -> Any:
    if not raw:
        return None
    text = raw.decode("utf-8", errors="replace")
    if "json" in content_type:
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


class AuthServiceTokens:
    """Resolves raw user-tokens through the auth service's introspection endpoint."""

    PATH = "/internal/tokens/introspect"

    def __init__(
        self, client: httpx.AsyncClient, base_url: str, internal_key: str | None = None
    ) -> None:
        self._client = client
        self._url = base_url.rstrip("/") + self.PATH
        self._headers = {INTERNAL_KEY_HEADER: internal_key} if internal_key else {}

    async def resolve(self, token: str) -> User | None:
        if not plausible_token(token):
            return None
        response = await self._client.post(self._url, json={"token": token}, headers=self._headers)
        response.raise_for_status()  # auth unreachable or failing: retry the activation later
        answer = TokenIntrospection.model_validate_json(response.content)
        return answer.user if answer.active else None


_WORKER_START_SECONDS = 60.0
_WORKER_ENVIRONMENT = {
    name: value for name, value in os.environ.items() if name in ("PATH", "PYTHONPATH", "LANG")
}


class _TimedOut(Exception):
    pass


class _Died(Exception):
    pass


class _Worker:
    """One evaluator process (`python -m engine._expression_worker`) and a socket to it.

    A plain subprocess, not `multiprocessing`: nothing of the engine's own main module
    runs again in it, and killing it is a signal to one process."""

    def __init__(self, process: "subprocess.Popen[bytes]", conn: Connection) -> None:
        self._process = process
        self._conn = conn

    @classmethod
    def start(cls, memory_bytes: int) -> "_Worker":
        ours, theirs = socket.socketpair()
        with theirs:
            process = subprocess.Popen(  # noqa: S603  # this interpreter, a module of ours
                [
                    sys.executable,
                    "-m",
                    "engine._expression_worker",
                    str(theirs.fileno()),
                    str(memory_bytes),
                ],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                env=_WORKER_ENVIRONMENT,  # none of the engine's settings, secrets least of all
            )
        worker = cls(process, Connection(ours.detach()))
        try:
            ready = worker._conn.poll(_WORKER_START_SECONDS) and worker._conn.recv() == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            worker.stop()
            raise RuntimeError("an expression worker did not start")
        return worker

    def alive(self) -> bool:
        return self._process.poll() is None

    def run(self, request: Any, seconds: float) -> Any:
        """Send a request and wait for its answer (in a thread: this blocks)."""
        try:
            self._conn.send(request)
            if not self._conn.poll(seconds):
                raise _TimedOut
            return self._conn.recv()
        except (EOFError, OSError) as exc:
            raise _Died from exc

    def stop(self) -> None:
        self._process.kill()
        self._process.wait(5)
        self._conn.close()


class ExpressionWorkers:
    """Evaluates expressions not bounded in cost in worker processes, under a time limit.

    The event loop only waits for an answer; a worker that runs out of time (or memory)
    is killed and replaced. Workers start at first use and are kept.
    """

    def __init__(self, processes: int, time_limit_seconds: float, memory_bytes: int) -> None:
        self._processes = processes
        self._limit = time_limit_seconds
        self._memory = memory_bytes
        self._idle: asyncio.Queue[_Worker | None] | None = None
        self._busy: set[_Worker] = set()
        self.replaced = 0

    async def __call__(
        self, expressions: Sequence[tuple[str, str]], context: dict[str, Any], assigns: bool
    ) -> dict[str, Any]:
        if self._idle is None:
            self._idle = asyncio.Queue()
            for _ in range(self._processes):
                self._idle.put_nowait(None)
        worker = await self._idle.get()
        try:
            if worker is None or not worker.alive():
                if worker is not None:
                    worker.stop()
                worker = await asyncio.to_thread(_Worker.start, self._memory)
            self._busy.add(worker)
            request = (list(expressions), context, assigns)
            kind, payload = await asyncio.to_thread(worker.run, request, self._limit)
        except _TimedOut:
            self._replace(worker)
            worker = None
            sources = "; ".join(source for _, source in expressions)[:200]
            raise ExpressionError(
                f"`{sources}`: cut off after {self._limit * 1000:.0f} ms, "
                "the time budget of an expression"
            ) from None
        except asyncio.CancelledError:  # the thread still waits on it: never reuse it
            self._replace(worker)
            worker = None
            raise
        except _Died:
            self._replace(worker)
            worker = None
            raise ExpressionError(
                "the expression stopped its evaluator (over its memory budget?)"
            ) from None
        finally:
            if worker is not None:
                self._busy.discard(worker)
            self._idle.put_nowait(worker)
        if kind == "error":
            raise ExpressionError(payload)
        return dict(payload)

    def _replace(self, worker: _Worker | None) -> None:
        if worker is not None:
            self._busy.discard(worker)
            worker.stop()
        self.replaced += 1

    async def close(self) -> None:
        """Stop every worker (the engine is shutting down)."""
        workers = list(self._busy)
        while self._idle is not None and not self._idle.empty():
            worker = self._idle.get_nowait()
            if worker is not None:
                workers.append(worker)
        for worker in workers:
            await asyncio.to_thread(worker.stop)
