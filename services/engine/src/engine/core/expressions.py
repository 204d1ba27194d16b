"""CEL expressions: compile once at deploy, evaluate against an execution's context."""

import math
import re
from dataclasses import dataclass
from typing import Any

import cel

_POSITION = re.compile(r"<input>:(\d+):(\d+)")


class ExpressionError(Exception):
    """An expression failed to compile or to evaluate; the message is for users."""


@dataclass(frozen=True)
class Expression:
    """A compiled CEL expression with its source."""

    source: str
    program: cel.Program

    def evaluate(self, context: dict[str, Any]) -> Any:
        """Evaluate against `context`; raise ExpressionError on any runtime error."""
        try:
            value = self.program.execute(context)
        except Exception as exc:  # the extension raises KeyError, TypeError, ValueError...
            raise ExpressionError(_runtime_message(self.source, exc)) from exc
        return to_json(value)


def compile_expression(source: str) -> Expression:
    """Compile `source`; raise ExpressionError naming the line and column of a syntax error."""
    try:
        return Expression(source, cel.compile(source))
    except Exception as exc:
        text = str(exc)
        match = _POSITION.search(text)
        where = f" at line {match.group(1)}, column {match.group(2)}" if match else ""
        first = text.splitlines()[0] if text else type(exc).__name__
        detail = first.split(": ERROR: ", 1)[-1]
        raise ExpressionError(f"syntax error{where}: {detail}") from exc


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
