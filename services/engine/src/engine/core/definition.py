"""Validate a flow definition at deploy and compile it into a runnable flow."""

import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from engine.core.correlation import Correlation, recognise
from engine.core.expressions import Expression, ExpressionError, compile_expression
from schemas.flows import (
    AssignBlock,
    Block,
    BranchBlock,
    ExternalCallbackBlock,
    FlowDefinition,
    GroupMode,
    HttpRequestBlock,
    ReturnBlock,
    StartBlock,
    TriggersGroupBlock,
)

# the namespace of a triggers group's wait id (`group_wait_id`)
_GROUP_NAMESPACE = uuid.UUID("6f1d52a4-3c55-4b8e-9a0e-2f4c1b7d9e31")


class DefinitionError(Exception):
    """A definition cannot be deployed; `problems` lists every reason, one per item."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Flow:
    """A deployed flow version, ready to run: blocks by name and compiled expressions."""

    flow_id: str
    definition: FlowDefinition
    blocks: Mapping[str, Block]
    entry: str
    expressions: Mapping[tuple[str, str], Expression]
    trigger_ids: Mapping[str, str]  # block name -> trigger id
    callback_urls: Mapping[str, str] = field(default_factory=dict)  # block name -> URL
    # block name -> how its condition correlates (callback blocks whose condition has a key)
    correlations: Mapping[str, Correlation] = field(default_factory=dict)
    # member block name -> the triggers group it belongs to
    groups: Mapping[str, str] = field(default_factory=dict)

    @cached_property
    def guarded_blocks(self) -> frozenset[str]:
        """Blocks with an expression not bounded in cost: evaluated under a time limit."""
        return frozenset(block for (block, _), e in self.expressions.items() if not e.bounded)

    @cached_property
    def trigger_blocks(self) -> Mapping[str, str]:
        """Trigger id -> block name."""
        return {tid: name for name, tid in self.trigger_ids.items()}

    def expression(self, block: str, key: str) -> Expression:
        """Return the compiled expression `key` of `block` (keys as `expression_sources` yields)."""
        return self.expressions[(block, key)]

    def block_expressions(self, block: str) -> list[tuple[str, Expression]]:
        """The compiled expressions of `block`, by key, in the order they are evaluated."""
        return [
            (key, self.expressions[(block, key)])
            for key, _ in expression_sources(self.blocks[block])
        ]

    def trigger(self, trigger_id: str) -> ExternalCallbackBlock | None:
        """Return the callback block with `trigger_id`, or None."""
        name = self.trigger_blocks.get(trigger_id.lower())
        block = self.blocks.get(name) if name else None
        return block if isinstance(block, ExternalCallbackBlock) else None

    @property
    def entry_is_trigger(self) -> bool:
        return isinstance(self.blocks[self.entry], ExternalCallbackBlock)

    def group_of(self, trigger_id: str) -> TriggersGroupBlock | None:
        """The triggers group whose member has `trigger_id`, or None."""
        group = self.groups.get(self.trigger_blocks.get(trigger_id, ""))
        block = self.blocks.get(group) if group else None
        return block if isinstance(block, TriggersGroupBlock) else None

    def wait_id(self, trigger_id: str) -> str:
        """What an execution waiting at this trigger is found by: the trigger id, or for
        a group's member the group's wait id (one indexed field for every member)."""
        return self._member_waits.get(trigger_id, trigger_id)

    @cached_property
    def _member_waits(self) -> Mapping[str, str]:
        """Member trigger id -> its group's wait id."""
        return {
            self.trigger_ids[member]: group_wait_id(self.flow_id, group)
            for member, group in self.groups.items()
        }

    def members(self, group: str) -> list[str]:
        """The trigger ids of a triggers group's members, in their order in the flow."""
        block = self.blocks[group]
        assert isinstance(block, TriggersGroupBlock)
        return [self.trigger_ids[member.name] for member in block.triggers]


def group_wait_id(flow_id: str, group: str) -> str:
    """The id every member of a flow version's triggers group is waited at by."""
    return str(uuid.uuid5(_GROUP_NAMESPACE, f"{flow_id}/{group}"))


def all_blocks(definition: FlowDefinition) -> Iterator[Block]:
    """Every block of a definition: each triggers group followed by its members."""
    for block in definition.blocks:
        yield block
        if isinstance(block, TriggersGroupBlock):
            yield from block.triggers


def expression_sources(block: Block) -> Iterator[tuple[str, str]]:
    """Yield (key, source) for every expression of a block."""
    if isinstance(block, AssignBlock):
        for var, source in block.assign.items():
            yield f"assign.{var}", source
    elif isinstance(block, BranchBlock):
        yield "if", block.if_
    elif isinstance(block, ExternalCallbackBlock | StartBlock):
        if block.condition is not None:
            yield "condition", block.condition
    elif isinstance(block, ReturnBlock):
        yield "value", block.value
    elif isinstance(block, HttpRequestBlock):
        yield "url", block.url
        for header, source in block.headers.items():
            yield f"headers.{header}", source
        if block.body is not None:
            yield "body", block.body


def successors(block: Block) -> list[str]:
    """Names of the blocks that `block` may continue with."""
    if isinstance(block, BranchBlock):
        return [name for name in (block.then, block.else_) if name is not None]
    if isinstance(block, ExternalCallbackBlock | TriggersGroupBlock) and block.onTimeout:
        return [name for name in (block.next, block.onTimeout) if name is not None]
    return [block.next] if block.next is not None else []


def compile_flow(
    definition: FlowDefinition, flow_id: str, trigger_id: Callable[[str], str]
) -> Flow:
    """Check every rule of a definition and compile it; raise DefinitionError listing problems.

    Args:
        trigger_id: gives the trigger id of the External Callback block with this name
            (a new UUID at deploy, the stored one when a deployed version is loaded).
    """
    problems: list[str] = []
    blocks: dict[str, Block] = {}
    for block in all_blocks(definition):
        if block.name in blocks:
            problems.append(f"block name {block.name!r} is used more than once")
        blocks[block.name] = block
    groups = {
        member.name: block.name
        for block in definition.blocks
        if isinstance(block, TriggersGroupBlock)
        for member in block.triggers
    }

    incoming: dict[str, int] = {b.name: 0 for b in definition.blocks}
    for block in definition.blocks:
        if isinstance(block, BranchBlock) and block.next is not None:
            problems.append(f"block {block.name!r}: a branch continues with then/else, not next")
        for target in successors(block):
            if target in groups:
                problems.append(
                    f"block {block.name!r} continues with {target!r}, a member of triggers "
                    f"group {groups[target]!r}: continue with the group"
                )
            elif target not in blocks:
                problems.append(f"block {block.name!r} continues with unknown block {target!r}")
            else:
                incoming[target] += 1

    entry = _entry(definition, incoming, problems)
    if entry is not None:
        reached = _reachable(entry, blocks)
        problems.extend(
            f"block {b.name!r} is unreachable from the entry block {entry!r}"
            for b in definition.blocks
            if b.name not in reached
        )
        if isinstance(blocks.get(entry), TriggersGroupBlock):
            problems.append(
                f"triggers group {entry!r} cannot be the entry block: begin with a start block"
            )

    expressions: dict[tuple[str, str], Expression] = {}
    for block in all_blocks(definition):
        for key, source in expression_sources(block):
            try:
                expressions[(block.name, key)] = compile_expression(source)
            except ExpressionError as exc:
                problems.append(f"block {block.name!r}, {key}: {exc}")
        if isinstance(block, ExternalCallbackBlock):
            problems.extend(_callback_problems(block, block.name in groups))
        elif isinstance(block, TriggersGroupBlock):
            problems.extend(_group_problems(block))

    if problems or entry is None:
        raise DefinitionError(problems)
    trigger_ids = {
        b.name: trigger_id(b.name).lower()
        for b in all_blocks(definition)
        if isinstance(b, ExternalCallbackBlock)
    }
    return Flow(
        flow_id.lower(),
        definition,
        blocks,
        entry,
        expressions,
        trigger_ids,
        correlations=_correlations(definition),
        groups=groups,
    )


def _callback_problems(block: ExternalCallbackBlock, member: bool) -> Iterator[str]:
    if block.requiredRoles and block.authenticationType != "USER":
        yield f"block {block.name!r}: requiredRoles needs authenticationType USER"
    if block.onTimeout is not None and block.timeoutSeconds is None:
        yield f"block {block.name!r}: onTimeout needs timeoutSeconds"
    if block.authenticationType != "SIGNATURE" and (
        block.signatureScheme is not None or block.toleranceSeconds is not None
    ):
        yield (
            f"block {block.name!r}: signatureScheme and toleranceSeconds need "
            "authenticationType SIGNATURE"
        )
    if member:
        for setting in ("next", "timeoutSeconds", "onTimeout"):
            if getattr(block, setting) is not None:
                yield (
                    f"block {block.name!r}: a triggers group's member has no {setting} "
                    "(the group has next, windowSeconds and onTimeout)"
                )


def _group_problems(block: TriggersGroupBlock) -> Iterator[str]:
    if len(block.triggers) < 2:
        yield (
            f"triggers group {block.name!r} has {len(block.triggers)} member(s): "
            "a group needs at least two (one trigger is an external_callback block)"
        )
    if block.mode == GroupMode.ALL and block.windowSeconds is None:
        yield (
            f"triggers group {block.name!r}: mode all needs windowSeconds (how long after "
            "the first activation the others may arrive)"
        )
    if block.onTimeout is not None and block.windowSeconds is None:
        yield f"triggers group {block.name!r}: onTimeout needs windowSeconds"


def _correlations(definition: FlowDefinition) -> dict[str, Correlation]:
    """How each callback block's condition correlates, where it does.

    A group's executions are found by one stored key: that of its first member whose
    condition correlates; another member uses it only when its condition compares with
    the very same value expression, else it looks its candidates up by the group.
    """
    found: dict[str, Correlation] = {}
    for block in definition.blocks:
        members = block.triggers if isinstance(block, TriggersGroupBlock) else [block]
        shared: str | None = None
        for member in members:
            if not isinstance(member, ExternalCallbackBlock) or member.condition is None:
                continue
            correlation = recognise(member.condition)
            if correlation is None:
                continue
            shared = shared or correlation.value.source
            if correlation.value.source == shared:
                found[member.name] = correlation
    return found


def _entry(definition: FlowDefinition, incoming: dict[str, int], problems: list[str]) -> str | None:
    starts = [b.name for b in all_blocks(definition) if isinstance(b, StartBlock)]
    if len(starts) > 1:
        problems.append(f"a flow has one start block, found {len(starts)}: {starts}")
        return None
    if starts:
        if incoming[starts[0]]:
            problems.append(f"start block {starts[0]!r} cannot be the target of another block")
        return starts[0]
    roots = [name for name, count in incoming.items() if count == 0]
    if len(roots) != 1:
        found = f"found {len(roots)}: {roots}" if roots else "every block has a predecessor"
        problems.append(f"a flow needs exactly one entry block (no predecessor), {found}")
        return None
    return roots[0]


def _reachable(entry: str, blocks: Mapping[str, Block]) -> set[str]:
    seen: set[str] = set()
    stack = [entry]
    while stack:
        name = stack.pop()
        if name in seen or name not in blocks:
            continue
        seen.add(name)
        stack.extend(successors(blocks[name]))
    return seen
