"""Validate a flow definition at deploy and compile it into a runnable flow."""

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
    HttpRequestBlock,
    ReturnBlock,
    StartBlock,
)


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
    if isinstance(block, ExternalCallbackBlock) and block.onTimeout is not None:
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
    for block in definition.blocks:
        if block.name in blocks:
            problems.append(f"block name {block.name!r} is used more than once")
        blocks[block.name] = block

    incoming: dict[str, int] = dict.fromkeys(blocks, 0)
    for block in definition.blocks:
        if isinstance(block, BranchBlock) and block.next is not None:
            problems.append(f"block {block.name!r}: a branch continues with then/else, not next")
        for target in successors(block):
            if target not in blocks:
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

    expressions: dict[tuple[str, str], Expression] = {}
    for block in definition.blocks:
        for key, source in expression_sources(block):
            try:
                expressions[(block.name, key)] = compile_expression(source)
            except ExpressionError as exc:
                problems.append(f"block {block.name!r}, {key}: {exc}")
        if (
            isinstance(block, ExternalCallbackBlock)
            and block.requiredRoles
            and (block.authenticationType != "USER")
        ):
            problems.append(f"block {block.name!r}: requiredRoles needs authenticationType USER")
        if (
            isinstance(block, ExternalCallbackBlock)
            and block.onTimeout is not None
            and block.timeoutSeconds is None
        ):
            problems.append(f"block {block.name!r}: onTimeout needs timeoutSeconds")
        if (
            isinstance(block, ExternalCallbackBlock)
            and block.authenticationType != "SIGNATURE"
            and (block.signatureScheme is not None or block.toleranceSeconds is not None)
        ):
            problems.append(
                f"block {block.name!r}: signatureScheme and toleranceSeconds need "
                "authenticationType SIGNATURE"
            )

    if problems or entry is None:
        raise DefinitionError(problems)
    trigger_ids = {
        b.name: trigger_id(b.name).lower()
        for b in definition.blocks
        if isinstance(b, ExternalCallbackBlock)
    }
    correlations = {
        b.name: found
        for b in definition.blocks
        if isinstance(b, ExternalCallbackBlock)
        and b.condition is not None
        and (found := recognise(b.condition)) is not None
    }
    return Flow(
        flow_id.lower(),
        definition,
        blocks,
        entry,
        expressions,
        trigger_ids,
        correlations=correlations,
    )


def _entry(definition: FlowDefinition, incoming: dict[str, int], problems: list[str]) -> str | None:
    starts = [b.name for b in definition.blocks if isinstance(b, StartBlock)]
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
