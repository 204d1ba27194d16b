"""The state every group of the management API's routes uses."""

from collections.abc import Awaitable, Callable

from engine.catalog import Catalog
from engine.dead_letters import DeadLetters
from engine.ports import Evaluator
from engine.usecases.queries import Queries
from schemas.events import StartExecution


class Routes:
    """What every group of routes holds (set once by `Endpoints`)."""

    _catalog: Catalog
    _queries: Queries
    _letters: DeadLetters
    _request_start: Callable[[StartExecution], Awaitable[None]]
    _now: Callable[[], int]
    _evaluate: Evaluator
