"""Real adapters of the engine's ports: Kafka publisher, HTTP blocks, auth introspection."""

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import httpx
from faststream.kafka import KafkaBroker

from engine.core.execution import HttpCall
from engine.ports import HttpError
from schemas.events import (
    ActivationOutcome,
    DeadLetter,
    ExecutionEvent,
    RegistryRecord,
    TriggerRegistered,
)
from schemas.topics import Topics
from schemas.users import TokenIntrospection, User, plausible_token


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
        # enqueued one after the other (their order on the partition), acknowledged together
        pending = []
        for event in events:
            sent = await self._events.publish(
                event.model_dump(mode="json"), key=event.executionId.encode(), no_confirm=True
            )
            if isinstance(sent, asyncio.Future):
                pending.append(sent)
        await asyncio.gather(*pending)

    async def outcome(self, outcome: ActivationOutcome) -> None:
        await self._outcomes.publish(
            outcome.model_dump(mode="json"), key=outcome.activationId.encode()
        )

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

    def __init__(self, client: httpx.AsyncClient, base_url: str) -> None:
        self._client = client
        self._url = base_url.rstrip("/") + self.PATH

    async def resolve(self, token: str) -> User | None:
        if not plausible_token(token):
            return None
        response = await self._client.post(self._url, json={"token": token})
        response.raise_for_status()  # auth unreachable or failing: retry the activation later
        answer = TokenIntrospection.model_validate_json(response.content)
        return answer.user if answer.active else None
