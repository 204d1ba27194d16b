"""CEL expressions: compile once at deploy, evaluate against an execution's context.

Every expression has a cost budget, checked at deploy: its length, how deeply it nests,
and how deeply its comprehensions (`map`, `filter`, `all`, `exists`, `exists_one`) nest.
Without a comprehension, evaluating an expression costs time in proportion to the
expression and the values it reads: it is `bounded` and runs in place. One with a
comprehension can cost far more (a nested `map` over the posted data multiplies
sizes): the service runs it in a worker process under a time limit.
"""

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import cel

_POSITION = re.compile(r"<input>:(\d+):(\d+)")
MAX_LENGTH = 2_000  # characters
MAX_NESTING = 32  # parentheses, brackets and braces inside one another
MAX_COMPREHENSION_DEPTH = 2  # comprehensions inside one another
_MACROS = frozenset({"map", "filter", "all", "exists", "exists_one"})


class ExpressionError(Exception):
    """An expression failed to compile or to evaluate; the message is for users."""


@dataclass(frozen=True)
class Shape:
    """What the cost budget looks at in an expression's text."""

    nesting: int
    comprehensions: int
    comprehension_depth: int


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Expression:
    """A compiled CEL expression with its source."""

    source: str
    program: cel.Program
    # every word of the source: the context names it can read are among them
    words: frozenset[str]
    bounded: bool = True  # no comprehension: cheap enough to evaluate in place
    # a pure selection (`results['Pay'].data`, `input.items[0]`): the root name and the
    # keys and indexes below it, read from the context as they are. CEL has no integers
    # beyond 64 bits and would hand such a number back as a float; a copy must not.
    path: "tuple[str, tuple[str | int, ...]] | None" = None

    def evaluate(self, context: "Mapping[str, Any] | Bindings") -> Any:
        """Evaluate against `context`; raise ExpressionError on any runtime error.

        Only the context names the source mentions are handed to CEL, which converts
        every value it is given (`data.amount` took 2.5 us with `data` alone, 21 us
        with an execution's whole context).
        """
        if self.path is not None:
            return self._select(context, *self.path)
        try:
            if isinstance(context, Bindings):
                value = context.execute(self.program)
            else:
                value = self.program.execute(
                    {name: v for name, v in context.items() if name in self.words}
                )
        except Exception as exc:  # the extension raises KeyError, TypeError, ValueError...
            raise ExpressionError(_runtime_message(self.source, exc)) from exc
        return to_json(value)

    def _select(
        self, context: "Mapping[str, Any] | Bindings", root: str, steps: tuple[str | int, ...]
    ) -> Any:
        """The value at the path, as CEL selects it: a key of an object, an index of a
        list; anything else is the error CEL gives."""
        names = context.lookup if isinstance(context, Bindings) else context.get
        value = names(root, _ABSENT)
        if value is _ABSENT:
            raise ExpressionError(f"`{self.source}`: undeclared reference to '{root}'")
        for step in steps:
            if isinstance(step, str) and isinstance(value, dict):
                if step not in value:
                    raise ExpressionError(f"`{self.source}`: no such field {step!r}")
                value = value[step]
            elif isinstance(step, int) and isinstance(value, list):
                if step >= len(value):
                    raise ExpressionError(f"`{self.source}`: index {step} out of range")
                value = value[step]
            else:
                kind = "null" if value is None else type(value).__name__
                raise ExpressionError(f"`{self.source}`: {kind} has no {step!r}")
        if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
            raise ExpressionError(f"result {value} is not a JSON number")
        return value


_ABSENT = object()
_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
# a root name, then `.name`, `['text']`, `["text"]` or `[digits]`, with spaces between
_STEP = re.compile(
    rf"\s*(?:\.\s*(?P<field>{_IDENTIFIER})|\[\s*(?:'(?P<single>[^'\\\n]*)'"
    rf"|\"(?P<double>[^\"\\\n]*)\"|(?P<index>\d+))\s*\])"
)
_ROOT = re.compile(rf"\s*(?P<root>{_IDENTIFIER})")
_LITERALS = frozenset({"true", "false", "null", "in"})


def selection(source: str) -> "tuple[str, tuple[str | int, ...]] | None":
    """The root and steps of a source that only selects (else None): evaluated by
    walking the context, it gives the same value as CEL, integers of any size intact."""
    found = _ROOT.match(source)
    if found is None or found["root"] in _LITERALS:
        return None
    steps: list[str | int] = []
    at = found.end()
    while at < len(source):
        step = _STEP.match(source, at)
        if step is None:
            return None if source[at:].strip() else (found["root"], tuple(steps))
        if step["index"] is not None:
            steps.append(int(step["index"]))
        else:
            steps.append(step["field"] or step["single"] or step["double"] or "")
        at = step.end()
    return found["root"], tuple(steps)


@dataclass
class Bindings:
    """A context whose `shared` names are converted to CEL once, for many evaluations.

    An activation's `data` (up to a megabyte) and `user` are the same for every waiting
    execution its condition is evaluated for; only each execution's own names change.
    """

    shared: Mapping[str, Any]
    own: Mapping[str, Any] = field(default_factory=dict)
    _context: "cel.Context | None" = None

    def lookup(self, name: str, default: Any = None) -> Any:
        if name in self.shared:
            return self.shared[name]
        return self.own.get(name, default)

    def execute(self, program: cel.Program) -> Any:
        if self._context is None:
            self._context = cel.Context()
            for name, value in self.shared.items():
                self._context.add_variable(name, value)
            # consulted first; None falls through to the shared names
            self._context.set_variable_resolver(
                lambda name: None if name in self.shared else self.own.get(name)
            )
        return program.execute(self._context)


def shape(source: str) -> Shape:
    """Measure nesting and comprehensions, outside string literals."""
    depth = max_depth = comprehensions = macro_depth = max_macro_depth = 0
    stack: list[bool] = []  # per open bracket: whether it opened a comprehension
    i, n = 0, len(source)
    while i < n:
        char = source[i]
        if char in "'\"":
            i = _string_end(source, i)
            continue
        if char in "([{":
            macro = char == "(" and _macro_before(source, i)
            stack.append(macro)
            depth = len(stack)
            max_depth = max(max_depth, depth)
            if macro:
                comprehensions += 1
                macro_depth += 1
                max_macro_depth = max(max_macro_depth, macro_depth)
        elif char in ")]}" and stack and stack.pop():
            macro_depth -= 1
        i += 1
    return Shape(max_depth, comprehensions, max_macro_depth)


def _string_end(source: str, start: int) -> int:
    """The index after the string literal that starts at `start`."""
    quote = source[start]
    raw = start > 0 and source[start - 1] in "rR"
    if source.startswith(quote * 3, start):
        end = source.find(quote * 3, start + 3)
        return len(source) if end < 0 else end + 3
    i = start + 1
    while i < len(source):
        if source[i] == "\\" and not raw:
            i += 2
            continue
        if source[i] == quote:
            return i + 1
        i += 1
    return len(source)


def _macro_before(source: str, paren: int) -> bool:
    """Whether the parenthesis at `paren` opens `.map(`, `.filter(`, ... (a comprehension)."""
    end = paren
    while end > 0 and source[end - 1].isspace():
        end -= 1
    start = end
    while start > 0 and (source[start - 1].isalnum() or source[start - 1] == "_"):
        start -= 1
    if source[start:end] not in _MACROS:
        return False
    dot = start
    while dot > 0 and source[dot - 1].isspace():
        dot -= 1
    return dot > 0 and source[dot - 1] == "."


def check_budget(source: str) -> Shape:
    """Refuse an expression over the cost budget, saying which limit and by how much."""
    if len(source) > MAX_LENGTH:
        raise ExpressionError(
            f"over the cost budget: {len(source)} characters (at most {MAX_LENGTH})"
        )
    measured = shape(source)
    if measured.nesting > MAX_NESTING:
        raise ExpressionError(
            f"over the cost budget: nested {measured.nesting} deep (at most {MAX_NESTING})"
        )
    if measured.comprehension_depth > MAX_COMPREHENSION_DEPTH:
        raise ExpressionError(
            f"over the cost budget: comprehensions (map, filter, all, exists) nested "
            f"{measured.comprehension_depth} deep (at most {MAX_COMPREHENSION_DEPTH})"
        )
    return measured


def compile_expression(source: str) -> Expression:
    """Compile `source` within the cost budget; raise ExpressionError naming the line and
    column of a syntax error, or the limit it is over."""
    measured = check_budget(source)
    try:
        program = cel.compile(source)
    except Exception as exc:
        text = str(exc)
        match = _POSITION.search(text)
        where = f" at line {match.group(1)}, column {match.group(2)}" if match else ""
        first = text.splitlines()[0] if text else type(exc).__name__
        detail = first.split(": ERROR: ", 1)[-1]
        raise ExpressionError(f"syntax error{where}: {detail}") from exc
    words = frozenset(_WORD.findall(source))
    return Expression(
        source, program, words, bounded=measured.comprehensions == 0, path=selection(source)
    )


def _runtime_message(source: str, exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"`{source}`: no such field {exc.args[0]!r}"
    text = str(exc).split(". CEL does not coerce", 1)[0]
    return f"`{source}`: {text}"


def to_json(value: Any) -> Any:
    """Convert a CEL result into a plain JSON value (bytes, timestamps and the like become text)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ExpressionError(f"result {value} is not a JSON number")
        return value
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
