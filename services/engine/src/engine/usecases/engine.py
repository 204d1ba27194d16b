"""The engine's one door: the calls the consumers, the dead letters, the lifespan and the
tests make, each delegated to one use case (wired in `app.py`, `wire_engine`).

I/O goes through the ports; every decision is made by the pure core. An activation is
applied through single-document steps that a redelivery can repeat (docs/design.md):
its outcome, if stored, is the answer; an execution is resumed by a compare-and-set
on its version and remembers the activations it applied; an `all`/`any` activation
records the executions it chose before resuming the first, so that a redelivery after
a crash finishes exactly those.
"""

from dataclasses import dataclass

from engine.core import execution as ex
from engine.ports import Resuming
from engine.usecases.activation import UNREAD, Unread
from engine.usecases.buffer import Buffer
from engine.usecases.decide import Decisions
from engine.usecases.failures import Failures
from engine.usecases.replay import Replays
from engine.usecases.start import Starts
from engine.usecases.stop import Stops
from engine.usecases.timers import Timers
from schemas.activations import ReplayAnswer, Replayed, ReplayRequest
from schemas.events import ActivateTrigger, ActivationOutcome, ActivationRefused, StartExecution


@dataclass(frozen=True)
class UseCases:
    """The use cases the door delegates to (wired in `app.py`)."""

    decisions: Decisions
    starts: Starts
    buffer: Buffer
    timers: Timers
    failures: Failures
    stops: Stops
    replays: Replays


class Engine:
    """Starts executions and applies activations, exactly once per effect."""

    def __init__(self, cases: "UseCases") -> None:
        self._decisions = cases.decisions
        self._starts = cases.starts
        self._buffer = cases.buffer
        self._timers = cases.timers
        self._failures = cases.failures
        self._stops = cases.stops
        self._replays = cases.replays

    async def start(self, command: StartExecution) -> ex.ExecutionState | None:
        """Start an execution (a redelivered command finds the first one's)."""
        return await self._starts.start(command)

    async def stop(self, execution_id: str, reason: str) -> ex.ExecutionState | None:
        """Terminate an execution (one that has ended stays as it is); None: unknown."""
        return await self._stops.stop(execution_id, reason)

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

    async def log_refused(self, refused: ActivationRefused) -> None:
        """Write a callback a gateway refused into the activation log."""
        await self._decisions.log_refused(refused)

    async def read_activations(
        self, activation_ids: list[str]
    ) -> dict[str, ActivationOutcome | Resuming]:
        """What the store holds for many activations, in one read (for a batch)."""
        return await self._decisions.read_activations(activation_ids)

    async def read_ahead(
        self,
        commands: list[ActivateTrigger],
    ) -> dict[str, ex.ExecutionState]:
        """The executions a batch's activations name, in one read."""
        return await self._decisions.read_ahead(commands)

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

    async def replay(self, activation_id: str) -> Replayed:
        """Send a logged activation again (`replayOf`); UnknownActivation, BodyNotKept."""
        return await self._replays.replay(activation_id)

    async def replay_matching(self, where: ReplayRequest) -> ReplayAnswer:
        """Replay every matching logged activation whose body is kept."""
        return await self._replays.replay_matching(where)
