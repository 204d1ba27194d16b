"""Drive the running product over HTTP the way its users do."""

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from schemas.topics import Topics

from ..conftest import ROOT, Product

ORDER_FLOW = Path(ROOT / "examples" / "order-flow.json")


class Driver:
    def __init__(self, product: Product, http: httpx.AsyncClient) -> None:
        self.product = product
        self.http = http

    async def deploy(self, definition: dict[str, Any]) -> dict[str, Any]:
        response = await self.http.post(
            f"{self.product.engine}/api/automation/flows", json=definition
        )
        assert response.status_code == 201, response.text
        body = dict(response.json())
        async with asyncio.timeout(30):  # the gateway learns it from the flow registry
            while (
                await self.http.post(
                    f"{self.product.gateway}/api/automation/flow/{body['flowId']}/execute",
                    content=b"[]",
                )
            ).status_code == 404:
                await asyncio.sleep(0.1)
            for trigger in body["triggers"]:  # an invalid selector: 400 once it is known
                while (
                    await self.http.post(f"{trigger['callbackUrl']}?execution=not%20one")
                ).status_code == 404:
                    await asyncio.sleep(0.1)
        return body

    async def order_flow(self) -> dict[str, Any]:
        text = ORDER_FLOW.read_text()  # noqa: ASYNC240  # a small local file
        definition = json.loads(text.replace("http://127.0.0.1:8089", self.product.stub))
        return await self.deploy(definition)

    async def start(self, flow_id: str, input_: dict[str, Any]) -> str:
        response = await self.http.post(
            f"{self.product.gateway}/api/automation/flow/{flow_id}/execute", json=input_
        )
        assert response.status_code == 202, response.text
        return str(response.json()["executionId"])

    async def callback(
        self, url: str, body: Any = None, token: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token:
            headers["user-token"] = token
        if body is not None:
            kwargs["json"] = body
        return await self.http.post(url, headers=headers, **kwargs)

    async def execution(self, execution_id: str, status: str | None = None) -> dict[str, Any]:
        """The execution, once it exists (and has `status`, when given)."""
        url = f"{self.product.engine}/api/automation/executions/{execution_id}"
        return await self._once(url, "status", status, f"execution {execution_id}")

    async def outcome(self, response: httpx.Response) -> dict[str, Any]:
        """The outcome of a callback, once decided."""
        return await self.outcome_of(response.headers["x-activation-id"])

    async def outcome_of(self, activation_id: str, until: str | None = None) -> dict[str, Any]:
        """An activation's outcome, once decided (and `until`, when given: a buffered
        activation is settled later)."""
        url = f"{self.product.engine}/api/automation/activations/{activation_id}"
        return await self._once(url, "outcome", until, f"activation {activation_id}")

    async def _once(self, url: str, field: str, value: str | None, what: str) -> dict[str, Any]:
        """GET `url` until it answers 200 (with `field` equal to `value`, when given)."""
        last: Any = None
        try:
            async with asyncio.timeout(30):
                while True:
                    response = await self.http.get(url)
                    last = response.json()
                    if response.status_code == 200 and value in (None, last[field]):
                        return dict(last)
                    await asyncio.sleep(0.1)
        except TimeoutError:
            raise AssertionError(f"{what} never became {value}: {last}") from None

    async def publish(self, *messages: tuple[bytes, bytes]) -> None:
        """Publish (message, key) pairs straight to the activations topic, as a service
        inside the platform would."""
        producer = AIOKafkaProducer(
            bootstrap_servers=self.product.kafka, acks="all", enable_idempotence=True
        )
        await producer.start()
        try:
            for message, key in messages:
                await producer.send_and_wait(
                    Topics(self.product.topic_prefix).activations, message, key=key
                )
        finally:
            await producer.stop()

    async def user(self, roles: list[str], **properties: Any) -> tuple[dict[str, Any], str]:
        """A registered user with roles, and a user-token of it."""
        email = f"{uuid.uuid4().hex[:10]}@example.com"
        password = "e2e password " + uuid.uuid4().hex
        auth = self.product.auth
        user = (
            await self.http.post(
                f"{auth}/api/users/register",
                json={"email": email, "password": password, **properties},
            )
        ).json()
        if roles:
            response = await self.http.put(
                f"{auth}/api/users/{user['objectId']}/roles",
                json={"roles": roles},
                headers={"x-admin-key": self.product.admin_key},
            )
            assert response.status_code == 200, response.text
        login = await self.http.post(
            f"{auth}/api/users/login", json={"login": email, "password": password}
        )
        return dict(login.json()), str(login.json()["user-token"])
