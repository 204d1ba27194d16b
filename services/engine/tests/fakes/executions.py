"""Executions (compare-and-set on the version) and the timers of their waits."""

import copy
from collections.abc import AsyncIterator
from dataclasses import replace

from engine.core.execution import ExecutionState
from engine.ports import (
    Page,
    Timer,
)
from schemas.events import (
    ExecutionStatus,
)

from .data import Data, keyset_page, suspend


class Executions(Data):
    """Executions (compare-and-set on the version) and the timers of their waits."""

    def _arm(self, state: ExecutionState) -> None:
        if state.deadline is not None and state.status == ExecutionStatus.WAITING:
            timer_id = f"{state.execution_id}:{state.deadline}"
            self.timers.setdefault(timer_id, Timer(timer_id, state.execution_id, state.deadline))

    async def due_timers(self, now: int, limit: int) -> list[Timer]:
        return sorted((t for t in self.timers.values() if t.due <= now), key=lambda t: t.due)[
            :limit
        ]

    async def drop_timer(self, timer_id: str) -> None:
        self.timers.pop(timer_id, None)

    async def create_execution(self, state: ExecutionState) -> bool:
        await suspend()
        self._arm(state)
        if state.execution_id in self.executions:
            return False
        self.executions[state.execution_id] = copy.deepcopy(replace(state, version=0))
        return True

    async def get_execution(self, execution_id: str) -> ExecutionState | None:
        await suspend()
        return copy.deepcopy(self.executions.get(execution_id.lower()))

    async def get_executions(self, execution_ids: list[str]) -> dict[str, ExecutionState]:
        await suspend()
        found = {i.lower(): self.executions.get(i.lower()) for i in execution_ids}
        return {i: copy.deepcopy(state) for i, state in found.items() if state is not None}

    async def save_execution(self, state: ExecutionState) -> bool:
        await suspend()
        self._arm(state)
        current = self.executions.get(state.execution_id)
        if current is None or current.version != state.version - 1:
            return False
        self.executions[state.execution_id] = copy.deepcopy(state)
        return True

    async def list_executions(
        self, flow_id: str, status: ExecutionStatus | None, cursor: str | None, limit: int
    ) -> Page:
        matching = [
            s
            for s in self.executions.values()
            if s.flow_id == flow_id.lower() and (status is None or s.status == status)
        ]
        page, next_cursor = keyset_page(
            matching, lambda s: (s.created, s.execution_id), cursor, limit
        )
        return copy.deepcopy(page), next_cursor

    async def waiting(self, wait_id: str, key: str | None = None) -> AsyncIterator[ExecutionState]:
        await suspend()
        found = sorted(
            (
                s
                for s in self.executions.values()
                if s.wait_at == wait_id and (key is None or s.wait_key == key)
            ),
            key=lambda s: (s.wait_since, s.execution_id),
        )
        for state in found:
            yield copy.deepcopy(state)

    async def anyone_waiting(self, wait_id: str) -> bool:
        await suspend()
        return any(s.wait_at == wait_id for s in self.executions.values())
