"""Correlation keys: find the executions an activation may resume by a key, not by a scan.

A callback condition of the form `data.<path> == <expression over the execution>`, alone
or joined by `&&` with anything else, can only hold for an execution whose expression
value equals the activation's `data.<path>`. When an execution starts waiting, that
value is stored with it as a key; an activation then looks its candidates up by the
key of its own `data.<path>` and evaluates the full condition on them only.

The recognition is deliberately conservative (an unrecognised condition scans, which
is always right): the source is split at every `&&`, and the split is used only when
the source has no `||` and no `?` (the only operators that bind looser than `&&`) and
every piece compiles on its own, which no `&&` inside parentheses, a call, a macro or a
string allows. A term must be exactly `data.a.b == <value>` (or mirrored), and the
value must not refer to `data` or `user` nor contain a comparison or logic operator.
"""

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from engine.core.expressions import Expression, ExpressionError, compile_expression

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_DATA_PATH = re.compile(rf"^\s*data((?:\s*\.\s*{_IDENT})+)\s*$")
# the variables a stored key may be computed from: what an execution has while it waits
_EXECUTION_VARIABLES = frozenset({"input", "vars", "results", "execution", "callbackUrls"})
_OPERATORS = frozenset(
    {"_==_", "_!=_", "_<_", "_<=_", "_>_", "_>=_", "_&&_", "_||_", "_?_:_", "!_", "@in"}
)
_MAX_KEY_LENGTH = 512


class _Missing:
    """The activation's data has nothing at the correlated path."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


@dataclass(frozen=True)
class Correlation:
    """How one callback block's condition correlates an activation with an execution."""

    data_path: tuple[str, ...]
    value: Expression  # over the execution's context

    def wait_key(self, trigger_id: str, context: Mapping[str, Any]) -> str | None:
        """The key stored with an execution that starts waiting; None when it has none.

        An execution whose value cannot be computed has no key: its condition cannot
        hold for any activation (the term errors), so no keyed lookup needs to find it.
        """
        try:
            return key_of(trigger_id, self.value.evaluate(dict(context)))
        except ExpressionError:
            return None

    def lookup_key(self, trigger_id: str, data: Mapping[str, Any]) -> str | _Missing:
        """The key an activation's data looks executions up by; MISSING when it has none."""
        value: Any = data
        for name in self.data_path:
            if not isinstance(value, dict) or name not in value:
                return MISSING
            value = value[name]
        return key_of(trigger_id, value)


def recognise(condition: str) -> Correlation | None:
    """The correlation of a condition, or None when it is not of a recognised form."""
    for term in _terms(condition):
        for left, right in ((term[0], term[1]), (term[1], term[0])):
            path = _DATA_PATH.match(left)
            if path is None:
                continue
            value = _value_expression(right)
            if value is not None:
                names = tuple(part.strip() for part in path.group(1).split(".")[1:])
                return Correlation(names, value)
    return None


def _terms(condition: str) -> list[tuple[str, str]]:
    """The `left == right` pairs of a top-level conjunction (none when unsure)."""
    pieces = [condition]
    if "||" not in condition and "?" not in condition:
        split = condition.split("&&")
        if len(split) > 1 and all(_compiles(piece) for piece in split):
            pieces = split
    pairs = []
    for piece in pieces:
        sides = piece.split("==")
        if len(sides) == 2 and "=" not in sides[0][-1:] and not sides[1].startswith("="):
            pairs.append((sides[0], sides[1]))
    return pairs


def _compiles(source: str) -> bool:
    try:
        compile_expression(source)
    except ExpressionError:
        return False
    return True


def _value_expression(source: str) -> Expression | None:
    try:
        expression = compile_expression(source.strip())
    except ExpressionError:
        return None
    references = expression.program.references()
    variables = set(references.get("variables", []))
    functions = set(references.get("functions", []))
    if not variables <= _EXECUTION_VARIABLES or functions & _OPERATORS:
        return None
    return expression


def key_of(trigger_id: str, value: Any) -> str:
    """A key that two values CEL's `==` finds equal share: canonical JSON, per trigger."""
    text = json.dumps(_canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if len(text) > _MAX_KEY_LENGTH:
        text = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    return f"{trigger_id}:{text}"


def _canonical(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)  # 1 == 1.0 in CEL
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value
