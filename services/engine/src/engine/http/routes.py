"""The state every group of the management API's routes uses, and what they share:
who calls, and publishing a start."""

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from starlette.requests import Request

from engine.catalog import Catalog
from engine.dead_letters import DeadLetters
from engine.http.params import PUBLISH_SECONDS
from engine.ports import Evaluator, TokenResolver
from engine.usecases import Engine
from engine.usecases.queries import Queries
from schemas.access import ADMIN_KEY_HEADER, auth_unavailable
from schemas.errors import ErrorCode
from schemas.events import StartExecution
from schemas.requests import RequestError
from schemas.users import User

logger = logging.getLogger(__name__)


class Routes:
    """What every group of routes holds (set once by `Endpoints`)."""

    _catalog: Catalog
    _queries: Queries
    _letters: DeadLetters
    _engine: Engine
    _request_start: Callable[[StartExecution], Awaitable[None]]
    _now: Callable[[], int]
    _evaluate: Evaluator
    _tokens: TokenResolver
    _admin_key: str | None
    _activation_key: str | None

    async def _caller(self, request: Request) -> tuple[str | None, User | None]:
        """The admin key sent, if any, and else the user of the user-token sent."""
        key = request.headers.get(ADMIN_KEY_HEADER)
        token = request.headers.get("user-token")
        if key is not None or not token:
            return key, None
        try:
            return None, await self._tokens.resolve(token)
        except Exception as exc:  # the auth service did not answer
            logger.warning("auth service unavailable", extra={"error": repr(exc)})
            raise auth_unavailable() from exc

    async def _publish_start(self, command: StartExecution) -> None:
        """Publish a start, acknowledged by Kafka; 413 or 503 when it is not."""
        try:
            async with asyncio.timeout(PUBLISH_SECONDS):
                await self._request_start(command)
        except MessageSizeTooLargeError:
            raise RequestError(
                413, ErrorCode.BODY_TOO_LARGE, "the input is too large for the broker"
            ) from None
        except (KafkaError, TimeoutError) as exc:
            logger.warning("start not published", extra={"error": repr(exc)})
            raise RequestError(
                503,
                ErrorCode.BROKER_UNAVAILABLE,
                "the start was not accepted: the broker is unavailable; retry later",
            ) from exc
