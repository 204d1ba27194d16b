"""The engine's one door: the use cases built together, under the calls the consumers,
the dead letters, the lifespan and the tests make. Each call delegates to one use case.

I/O goes through the ports; every decision is made by the pure core. An activation is
applied through single-document steps that a redelivery can repeat (docs/design.md):
its outcome, if stored, is the answer; an execution is resumed by a compare-and-set
on its version and remembers the activations it applied; an `all`/`any` activation
records the executions it chose before resuming the first, so that a redelivery after
a crash finishes exactly those.
"""

from collections.abc import Callable

from engine.catalog import Catalog
from engine.core import execution as ex
from engine.ports import Evaluator, HttpRunner, Publisher, Resuming, Store, TokenResolver
from engine.usecases.activation import UNREAD, Unread
from engine.usecases.buffer import Buffer
from engine.usecases.conditions import Conditions
from engine.usecases.decide import Decisions, EngineConfig
from engine.usecases.failures import Failures
from engine.usecases.requests import Requests
from engine.usecases.resume import Resumer
from engine.usecases.selection import Selection
from engine.usecases.start import Starts
from engine.usecases.timers import Timers
from schemas.events import ActivateTrigger, ActivationOutcome, StartExecution


class Engine:
    """Starts executions and applies activations, exactly once per effect."""

    def __init__(
        self,
        catalog: Catalog,
        store: Store,
        publisher: Publisher,
        http: HttpRunner,
        tokens: TokenResolver,
        config: EngineConfig,
        clock: Callable[[], int],
        expressions: Evaluator,
    ) -> None:
        requests = Requests(http, expressions, clock)
        conditions = Conditions(store, expressions, clock)
        resumer = Resumer(store, publisher, requests, conditions, clock)
        buffer = Buffer(catalog, store, publisher, resumer, conditions, clock)
        starts = Starts(catalog, store, publisher, requests, buffer, clock)
        selection = Selection(store, conditions, buffer)
        self._decisions = Decisions(
            catalog,
            store,
            publisher,
            tokens,
            config,
            clock,
            (conditions, starts, selection, buffer),
        )
        self._starts = starts
        self._buffer = buffer
        self._timers = Timers(catalog, store, publisher, requests, buffer, clock)
        self._failures = Failures(catalog, store, publisher, clock)

    async def start(self, command: StartExecution) -> ex.ExecutionState | None:
        """Start an execution (a redelivered command finds the first one's)."""
        return await self._starts.start(command)

    async def activate(self, command: ActivateTrigger) -> ActivationOutcome:
        """Apply an activation once; a redelivery answers the outcome already decided."""
        decision, fresh = await self.decide(command)
        if fresh:
            (decision,) = await self.record([decision])
        else:
            await self.republish(decision)
        return decision

    async def decide(
        self,
        command: ActivateTrigger,
        found: ActivationOutcome | Resuming | Unread | None = UNREAD,
        nobody_waits: set[str] | None = None,
        read_ahead: dict[str, ex.ExecutionState] | None = None,
    ) -> tuple[ActivationOutcome, bool]:
        """`Decisions.decide`: the outcome, and whether it is newly decided."""
        return await self._decisions.decide(command, found, nobody_waits, read_ahead)

    async def record(self, decisions: list[ActivationOutcome]) -> list[ActivationOutcome]:
        """Store newly decided outcomes, then publish what is final."""
        return await self._decisions.record(decisions)

    async def republish(self, decision: ActivationOutcome) -> None:
        """Answer an outcome decided before again (a redelivery)."""
        await self._decisions.republish(decision)

    async def read_activations(
        self, activation_ids: list[str]
    ) -> dict[str, ActivationOutcome | Resuming]:
        """What the store holds for many activations, in one read (for a batch)."""
        return await self._decisions.read_activations(activation_ids)

    async def read_ahead(
        self,
        commands: list[ActivateTrigger],
        found: dict[str, ActivationOutcome | Resuming],
    ) -> dict[str, ex.ExecutionState]:
        """The executions a batch's undecided activations name, in one read."""
        return await self._decisions.read_ahead(commands, found)

    async def fire_timers(self, limit: int = 500) -> int:
        """Time out the waits whose deadline has come; return how many timed out."""
        return await self._timers.fire(limit)

    async def sweep_buffer(self, limit: int = 500) -> int:
        """Settle buffered activations whose time ran out; return how many were settled."""
        return await self._buffer.sweep(limit)

    async def give_up(
        self, execution_id: str, reason: str, start: StartExecution | None = None
    ) -> bool:
        """Fail an execution a message kept failing on; whether it was failed now."""
        return await self._failures.give_up(execution_id, reason, start)
