"""Real adapters of the engine's ports: Kafka publisher, HTTP blocks, auth introspection."""

import json
from collections.abc import Sequence
from typing import Any

import httpx
from faststream.kafka import KafkaBroker

from engine.core.execution import HttpCall
from engine.ports import HttpError
from schemas.events import ActivationOutcome, ExecutionEvent, RegistryRecord, TriggerRegistered
from schemas.topics import Topics
from schemas.users import TokenIntrospection, User


class KafkaPublisher:
    """Publishes engine events; each waits for the broker's acknowledgement (acks=all)."""

    def __init__(self, broker: KafkaBroker, topics: Topics) -> None:
        self._broker = broker
        self._topics = topics

    async def execution_events(self, events: Sequence[ExecutionEvent]) -> None:
        for event in events:
            await self._broker.publish(
                event.model_dump(mode="json"),
                self._topics.execution_events,
                key=event.executionId.encode(),
            )

    async def outcome(self, outcome: ActivationOutcome) -> None:
        await self._broker.publish(
            outcome.model_dump(mode="json"),
            self._topics.activation_outcomes,
            key=outcome.activationId.encode(),
        )

    async def registry(self, records: Sequence[RegistryRecord]) -> None:
        for record in records:
            key = (
                f"{record.flowId}/{record.triggerId}"
                if isinstance(record, TriggerRegistered)
                else record.flowId
            )
            await self._broker.publish(
                record.model_dump(mode="json"), self._topics.flow_registry, key=key.encode()
            )


class HttpxRunner:
    """Runs http_request blocks with a timeout and a response size limit."""

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
        except httpx.TimeoutException as exc:
            raise HttpError(f"{call.method} {call.url} timed out after {call.timeout}s") from exc
        except httpx.HTTPError as exc:
            raise HttpError(f"{call.method} {call.url} failed: {exc}") from exc
        raw = b"".join(chunks)
        return {
            "status": response.status_code,
            "headers": dict(response.headers),
            "body": _decode(raw, response.headers.get("content-type", "")),
        }


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
        response = await self._client.post(self._url, json={"token": token})
        response.raise_for_status()  # auth unreachable or failing: retry the activation later
        answer = TokenIntrospection.model_validate_json(response.content)
        return answer.user if answer.active else None
