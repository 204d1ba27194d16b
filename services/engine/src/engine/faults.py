"""Whose an error is: the infrastructure's (the store, Kafka or the auth service away:
waiting helps) or the record's own (dead-lettering helps); and how a dead letter tells it."""

import itertools
from collections.abc import Iterator

import httpx
from aiokafka.errors import (
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)
from pymongo.errors import ConnectionFailure, PyMongoError

# Errors of the infrastructure, not of a record: waiting for it helps, dead-lettering would not
_INFRASTRUCTURE = (
    ConnectionFailure,
    KafkaError,
    httpx.TransportError,
    httpx.HTTPStatusError,
    OSError,
)
# ...except a message the broker refuses for its size: the same bytes never fit
_TOO_LARGE = (MessageSizeTooLargeError, RecordTooLargeError, RecordListTooLargeError)


def infrastructure_error(error: BaseException) -> bool:
    """Whether `error` (or what caused it) is the infrastructure's: the store, Kafka or the
    auth service unreachable, failing or timing out."""
    causes = list(chain(error))
    if any(isinstance(seen, _TOO_LARGE) for seen in causes):
        return False
    return any(
        isinstance(seen, _INFRASTRUCTURE)
        or (
            isinstance(seen, PyMongoError)
            and (
                seen.has_error_label("RetryableWriteError")
                or seen.has_error_label("TransientTransactionError")
            )
        )
        for seen in causes
    )


def chain(error: BaseException | None) -> Iterator[BaseException]:
    """`error` and what caused it, outermost first (at most 20: a cycle ends too)."""
    seen = 0
    while error is not None and seen < 20:
        yield error
        error = error.__cause__ or error.__context__
        seen += 1


def describe(error: BaseException) -> str:
    """The error and its causes, innermost last: what a user reads in the dead letter."""
    parts = [f"{type(e).__name__}: {_shown(e)}" for e in itertools.islice(chain(error), 5)]
    return " <- ".join(reversed(parts))


def _shown(error: BaseException) -> str:
    try:
        return str(error)[:500]
    except Exception:  # an error that cannot say what it is still has a type
        return "(no description)"
