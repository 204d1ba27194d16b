"""The loop of a worker process that evaluates expressions not bounded in cost.

It imports only the expression core, so that a replacement starts fast. Each request is
`(expressions, context, assigns)`; the answer `("ok", values)` or `("error", message)`.
"""

import resource
import sys
from multiprocessing.connection import Connection
from typing import Any

from engine.core.expressions import Expression, ExpressionError, compile_expression

_CACHE_SIZE = 256


def serve(conn: Connection, memory_bytes: int) -> None:
    """Answer requests until the parent closes the connection."""
    if memory_bytes > 0:  # an allocation past this ends the process, not the machine
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    compiled: dict[str, Expression] = {}
    conn.send("ready")  # imports done: the parent's time limits start counting from here
    while True:
        try:
            expressions, context, assigns = conn.recv()
        except (EOFError, OSError):
            return
        conn.send(_evaluate(compiled, expressions, context, assigns))


def _evaluate(
    compiled: dict[str, Expression],
    expressions: list[tuple[str, str]],
    context: dict[str, Any],
    assigns: bool,
) -> tuple[str, Any]:
    values: dict[str, Any] = {}
    try:
        for key, source in expressions:
            expression = compiled.get(source)
            if expression is None:
                if len(compiled) >= _CACHE_SIZE:
                    compiled.clear()
                expression = compiled[source] = compile_expression(source)
            values[key] = expression.evaluate(context)
            if assigns:  # a later assignment sees the earlier ones
                context = {
                    **context,
                    "vars": {**context["vars"], key.split(".", 1)[1]: values[key]},
                }
    except ExpressionError as exc:
        return "error", str(exc)
    except MemoryError:
        return "error", "the expression needs more memory than its budget"
    return "ok", values


if __name__ == "__main__":
    serve(Connection(int(sys.argv[1])), int(sys.argv[2]))
