"""Which waiting executions an activation resumes: the one it names (`execution=<id>`),
every one whose condition holds (`all`) or the oldest such (`any`), found through the
correlation index when the condition has a key; a redelivery after a crash resumes
exactly the executions its first delivery chose, no more."""

from dataclasses import dataclass

from engine.core import execution as ex
from engine.core.correlation import MISSING
from engine.core.matching import outcome
from engine.ports import Resuming, Store
from engine.usecases.activation import Activation, Decision, waits_at, waits_for
from engine.usecases.buffer import Buffer
from engine.usecases.conditions import Conditions
from schemas import opaque
from schemas.callbacks import Selector, SelectorKind
from schemas.events import Outcome

# `any` resumes the oldest execution whose condition holds; it records this many, in
# order, so that one taken meanwhile by another activation leaves it the next
_ANY_CHOICES = 8


@dataclass(frozen=True)
class _Plan:
    """The executions to resume, in order, with those read and checked already, and how
    many were left waiting because their condition was false."""

    execution_ids: tuple[str, ...]
    read: dict[str, ex.ExecutionState]
    filtered: int = 0


class Selection:
    """Resumes the executions an activation selects: one path, with a strategy per
    selector that plans which executions it resumes (or decides at once)."""

    def __init__(self, store: Store, conditions: Conditions, buffer: Buffer) -> None:
        self._store = store
        self._conditions = conditions
        self._buffer = buffer

    async def resume(
        self,
        act: Activation,
        selector: Selector,
        resuming: Resuming | None,
        nobody_waits: set[str] | None,
        read_ahead: dict[str, ex.ExecutionState] | None,
    ) -> Decision:
        """Resume what the activation selects; its decision.

        Args:
            resuming: what a first delivery chose, when this is a redelivery after a crash.
        """
        if resuming is not None:
            planned: _Plan | Decision = _Plan(resuming.execution_ids, {})
        elif selector.execution_id is not None:
            planned = await self._by_id(act, selector.execution_id, read_ahead)
        else:
            planned = await self._waiting(act, selector, nobody_waits)
        if not isinstance(planned, _Plan):
            return planned
        activated = []
        for execution_id in planned.execution_ids:
            state = planned.read.get(execution_id) or await self._store.get_execution(execution_id)
            if state is None:
                continue
            checked = execution_id in planned.read
            if await self._buffer.resume(act, state, checked=checked):
                activated.append(execution_id)
                if selector.kind == SelectorKind.ANY:
                    break
        decided = outcome(planned.filtered, len(activated))
        return decided, activated, _why(act, decided, planned.filtered)

    async def _by_id(
        self,
        act: Activation,
        execution_id: str,
        read_ahead: dict[str, ex.ExecutionState] | None,
    ) -> "_Plan | Decision":
        """`execution=<id>`: read that execution; a redelivery finds itself in `applied`.

        A state read ahead for the batch may be stale: it is used only where it shows the
        execution waiting for this activation (the compare-and-set refuses it if it changed
        since, and the execution is read again); any other answer is read afresh.
        """
        state = read_ahead.pop(execution_id, None) if read_ahead else None
        if state is None or not waits_for(state, act):
            state = await self._store.get_execution(execution_id)
        if state is None or state.flow_id != act.flow.flow_id:
            return (
                Outcome.NO_WAITER,
                [],
                f"execution {execution_id} is not one of this flow version",
            )
        if act.activation_id in state.applied:
            return Outcome.ACTIVATED, [state.execution_id], None
        if not waits_at(state, act.trigger_id):
            where = f" at {state.wait_at}" if state.wait_at else ""
            return (
                Outcome.NO_WAITER,
                [],
                f"execution {execution_id} is {state.status.value}{where}, not at this trigger",
            )
        if not await self._conditions.holds(act, state):
            return Outcome.FILTERED, [], _why(act, Outcome.FILTERED, 1)
        return _Plan((state.execution_id,), {state.execution_id: state})

    async def _waiting(
        self, act: Activation, selector: Selector, nobody_waits: set[str] | None
    ) -> "_Plan | Decision":
        """`all` or `any`: find the candidates, by correlation key when the condition has one."""
        if nobody_waits is not None and act.trigger_id in nobody_waits:
            return Outcome.NO_WAITER, [], _NOBODY
        correlation = act.flow.correlations.get(act.block.name)
        wait_id = act.flow.wait_id(act.trigger_id)
        key = None
        if correlation is not None:
            if not await self._store.anyone_waiting(wait_id):
                if nobody_waits is not None:
                    nobody_waits.add(act.trigger_id)
                return Outcome.NO_WAITER, [], _NOBODY
            found = correlation.lookup_key(wait_id, act.command.data)
            if found is MISSING:  # the condition cannot hold for any execution
                path = ".".join(("data", *correlation.data_path))
                return Outcome.FILTERED, [], f"{path} is missing: the condition holds for nobody"
            assert isinstance(found, str)
            key = found
        holders: list[ex.ExecutionState] = []
        filtered = seen = passed = 0
        async for state in self._store.waiting(wait_id, key):
            if not waits_at(state, act.trigger_id):
                passed += 1  # its group has this member's activation already (mode `all`)
                continue
            seen += 1
            if await self._conditions.holds(act, state):
                holders.append(state)
                if selector.kind == SelectorKind.ANY and len(holders) == _ANY_CHOICES:
                    break
            else:
                filtered += 1
        if not seen and key is None and nobody_waits is not None:
            nobody_waits.add(act.trigger_id)
        if correlation is not None and not holders and not passed:
            filtered += 1  # executions wait at the trigger, none with this key
        if not holders:
            decided = outcome(filtered, 0)
            if decided == Outcome.FILTERED and correlation is not None and key is not None:
                path = ".".join(("data", *correlation.data_path))
                return (
                    decided,
                    [],
                    # the key is `<wait id>:<the value as canonical JSON>`
                    f"no execution waits for {path} = {_seen(key.partition(':')[2])}"
                    + (f" (the condition `{act.block.condition}`)" if act.block.condition else ""),
                )
            return decided, [], _why(act, decided, filtered)
        chosen = Resuming(act.activation_id, tuple(s.execution_id for s in holders))
        plan = await self._store.begin_resuming(chosen)
        read = {s.execution_id: s for s in holders} if plan == chosen else {}
        return _Plan(plan.execution_ids, read, filtered)


_NOBODY = "no execution of this flow version waits at this trigger"
_SEEN = 200  # characters of the data a reason quotes


def _seen(value: object) -> str:
    """What a reason quotes of the activation's data: its JSON, cut."""
    text = opaque.encode(value) if not isinstance(value, str) else value
    return text if len(text) <= _SEEN else text[:_SEEN] + "..."


def _why(act: Activation, decided: Outcome, filtered: int) -> str | None:
    """The reason of an outcome reached by looking at the waiting executions."""
    if decided == Outcome.FILTERED:
        return (
            f"the condition `{act.block.condition}` is false for {filtered} waiting "
            f"execution{'s' if filtered != 1 else ''}; data: {_seen(act.command.data)}"
        )
    if decided == Outcome.NO_WAITER:
        return _NOBODY + " (or each it matched was resumed by another activation meanwhile)"
    return None
