"""What the management API reads: flows and executions a page at a time, one execution,
an activation's outcome (or its dead letter's)."""

from engine.core import execution as ex
from engine.dead_letters import DeadLetters
from engine.ports import FlowRecord, Page, Store
from schemas.activations import (
    ActivationFilter,
    ActivationPage,
    ActivationRecord,
    ActivationSeries,
    ActivationSummary,
)
from schemas.events import ActivationOutcome, ExecutionStatus, Outcome

# the records one summary counts at most (the newest): a chart of an hour of a trigger
# taking 25 callbacks a second
SUMMARY_LIMIT = 100_000


class Queries:
    """Reads for the management API."""

    def __init__(self, store: Store, letters: DeadLetters) -> None:
        self._store = store
        self._letters = letters

    async def flows(self, cursor: str | None, limit: int) -> tuple[list[FlowRecord], str | None]:
        """Every deployed version, oldest first; ValueError for a cursor that is not one."""
        return await self._store.list_flows(cursor, limit)

    async def executions(
        self, flow_id: str, status: ExecutionStatus | None, cursor: str | None, limit: int
    ) -> Page:
        """A flow's executions, oldest first; ValueError for a cursor that is not one."""
        return await self._store.list_executions(flow_id, status, cursor, limit)

    async def execution(self, execution_id: str) -> ex.ExecutionState | None:
        return await self._store.get_execution(execution_id)

    async def activation(self, activation_id: str) -> ActivationOutcome | None:
        """The activation's outcome; `DEAD_LETTERED` while its dead letter waits."""
        outcome = await self._store.get_activation(activation_id)
        if isinstance(outcome, ActivationOutcome):
            return outcome
        return await self._letters.outcome_of(activation_id)

    async def activation_record(self, activation_id: str) -> ActivationRecord | None:
        """The activation as the log shows it (with its body while it is kept)."""
        found = await self._store.activation_record(activation_id)
        if found is not None:
            return ActivationRecord.of(*found)
        outcome = await self.activation(activation_id)
        return None if outcome is None else ActivationRecord.of(outcome, None)

    async def activations(
        self, where: ActivationFilter, cursor: str | None, limit: int
    ) -> ActivationPage:
        """A page of the log, newest first; ValueError for a cursor that is not one."""
        page, cursor = await self._store.list_activations(where, cursor, limit)
        return ActivationPage(
            activations=[ActivationRecord.of(*found) for found in page], next=cursor
        )

    async def activation_summary(
        self, where: ActivationFilter, bucket_seconds: int
    ) -> ActivationSummary:
        """The matching records counted per trigger and outcome in buckets from
        `where.since` to `where.until` (both set); at most SUMMARY_LIMIT records, the
        newest."""
        assert where.since is not None
        assert where.until is not None
        since, until, width = where.since, where.until, bucket_seconds * 1000
        found = await self._store.activation_times(where, SUMMARY_LIMIT + 1)
        truncated = len(found) > SUMMARY_LIMIT
        buckets = -(-(until - since) // width)
        counts: dict[tuple[str, str], list[int]] = {}
        for at, trigger_id, outcome in found[:SUMMARY_LIMIT]:
            index = (at - since) // width
            if 0 <= index < buckets:
                counts.setdefault((trigger_id, outcome), [0] * buckets)[index] += 1
        return ActivationSummary(
            since=since,
            until=until,
            bucketSeconds=bucket_seconds,
            series=[
                ActivationSeries(triggerId=trigger_id, outcome=Outcome(outcome), counts=series)
                for (trigger_id, outcome), series in sorted(counts.items())
            ],
            counted=min(len(found), SUMMARY_LIMIT),
            truncated=truncated,
        )
