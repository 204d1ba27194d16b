"""Dead letters: messages the engine gave up on, kept to be inspected and replayed.

A message that is not a valid command is parked at once; a valid one whose processing
failed on every attempt is parked with its last error (the consumers decide when,
`consumers.py`). Parking stores the letter, publishes it on the dead-letter topic,
fails the execution it was about (if known) and answers the activation (if its id can
be read): `INVALID` is its final outcome, `DEAD_LETTERED` only until a replay decides
it. Every step can be repeated: a letter's id derives from the record's position.

Whatever the record's bytes, its letter can be written: it is read with the gateway's
rules (no recursion, whatever its nesting), a letter larger than `max_bytes` as JSON
(below the broker's message limit) keeps only the head of the message with its size and
SHA-256, and a raw `userToken` is taken out of the message and kept sealed (with the key
that seals signing secrets), or dropped when there is no key: nobody who can read dead
letters reads a credential in them. When even that cannot be written, `skip` keeps the
record's position, size, SHA-256 and error in the store alone.
"""

import hashlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.letters import fields_of, with_token, without_token
from engine.ports import Publisher, Store
from engine.usecases import Engine
from schemas.callbacks import Selector
from schemas.events import (
    ActivateTrigger,
    ActivationOutcome,
    ActivationSource,
    DeadLetter,
    DeadLetterKind,
    Outcome,
    StartExecution,
)

logger = logging.getLogger(__name__)

_LETTER_NAMESPACE = uuid.UUID("0d7c2a55-58a6-4b8e-9f0e-3c1d2b4a5e60")
MAX_ERROR = 2000  # characters of an error kept with its letter
MAX_LETTER_BYTES = 512 * 1024  # a letter as JSON, well below the broker's 1 MB a message
HEAD = 16 * 1024  # characters of a message kept when the whole does not fit
MAX_KEY = 1024  # characters of a record's key kept


@dataclass(frozen=True)
class Received:
    """A record as the consumer took it from Kafka."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class UnknownDeadLetter(LookupError):
    pass


class IncompleteDeadLetter(ValueError):
    """The letter keeps only the head of its message: there is nothing whole to replay."""


class DeadLetters:
    """Parks, lists and replays dead letters."""

    def __init__(
        self,
        engine: Engine,
        store: Store,
        publisher: Publisher,
        clock: Callable[[], int],
        sealing_key: bytes | None = None,
        max_bytes: int = MAX_LETTER_BYTES,
    ) -> None:
        self._engine = engine
        self._store = store
        self._publish = publisher
        self._now = clock
        self._sealing = sealing_key
        self._max_bytes = max_bytes

    async def park(
        self,
        record: Received,
        kind: DeadLetterKind,
        error: str,
        attempts: int,
        command: ActivateTrigger | StartExecution | None = None,
        execution_id: str | None = None,
    ) -> DeadLetter:
        """Park a record; `command` is what it decoded to, if it did."""
        raw = record.value or b""
        fields = fields_of(raw)
        activation_id = _activation_id(command, fields)
        if execution_id is None:
            execution_id = _execution_id(command)
        letter_id, digest = _identity(record)
        value, sealed = without_token(raw, fields, letter_id, self._sealing)
        key = record.key.decode("utf-8", errors="replace") if record.key is not None else None
        letter = DeadLetter(
            deadLetterId=letter_id,
            kind=kind,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=key[:MAX_KEY] if key is not None else None,
            value=value,
            error=error[:MAX_ERROR],
            attempts=attempts,
            activationId=activation_id,
            executionId=execution_id,
            at=self._now(),
            size=len(raw),
            sha256=digest,
            truncated=key is not None and len(key) > MAX_KEY,
            sealedUserToken=sealed,
        )
        if len(letter.model_dump_json().encode()) > self._max_bytes:  # bytes, not characters
            letter = letter.model_copy(update={"value": value[:HEAD], "truncated": True})
        await self._store.save_dead_letter(letter)
        await self._publish.dead_letter(letter)
        logger.error(
            "message dead-lettered",
            extra={
                "dead_letter_id": letter.deadLetterId,
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "activation_id": activation_id,
                "execution_id": execution_id,
                "error": letter.error[:300],
            },
        )
        reason = f"dead-lettered ({letter.deadLetterId}): {letter.error}"
        if execution_id is not None:
            start = command if isinstance(command, StartExecution) else None
            await self._engine.give_up(execution_id, reason[:MAX_ERROR], start)
        outcome = _outcome(letter)
        if outcome is not None:
            if outcome.outcome == Outcome.INVALID:
                # final: the same bytes can never be valid (a stored outcome is never replaced)
                await self._store.save_outcome(outcome)
            await self._publish.outcomes([outcome])
        return letter

    async def outcome_of(self, activation_id: str) -> ActivationOutcome | None:
        """`DEAD_LETTERED` for an activation parked and not decided since."""
        letter = await self._store.dead_letter_of(activation_id)
        if letter is None or letter.kind != DeadLetterKind.FAILED:
            return None
        return _outcome(letter)

    async def list(self, cursor: str | None, limit: int) -> tuple[list[DeadLetter], str | None]:
        return await self._store.list_dead_letters(cursor, limit)

    async def get(self, letter_id: str) -> DeadLetter | None:
        return await self._store.get_dead_letter(letter_id)

    async def skip(self, record: Received, error: str) -> None:
        """The last resort for a record whose letter could not be written: its position,
        size, SHA-256 and error, in the store alone."""
        letter_id, digest = _identity(record)
        letter = DeadLetter(
            deadLetterId=letter_id,
            kind=DeadLetterKind.SKIPPED,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            value="",
            error=error[:MAX_ERROR],
            attempts=0,
            at=self._now(),
            size=len(record.value or b""),
            sha256=digest,
            truncated=True,
        )
        await self._store.save_dead_letter(letter)
        logger.critical(
            "message skipped: its dead letter could not be written",
            extra={
                "dead_letter_id": letter.deadLetterId,
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "error": letter.error[:300],
            },
        )

    async def replay(self, letter_id: str) -> DeadLetter:
        """Publish a letter's message again to its topic: it is decided as if new."""
        letter = await self._store.get_dead_letter(letter_id)
        if letter is None:
            raise UnknownDeadLetter(letter_id)
        if letter.truncated:
            raise IncompleteDeadLetter(
                f"dead letter {letter_id} keeps only the head of its message "
                f"({letter.size} bytes, SHA-256 {letter.sha256}): it cannot be replayed"
            )
        await self._publish.replay(
            letter.model_copy(update={"value": with_token(letter, self._sealing)})
        )
        replayed = await self._store.mark_replayed(letter_id, self._now())
        logger.info("dead letter replayed", extra={"dead_letter_id": letter_id})
        return replayed or letter


def _identity(record: Received) -> tuple[str, str]:
    """The letter id of a record and the SHA-256 of its bytes: the same record parked
    again (a redelivery) is the same letter."""
    digest = hashlib.sha256(record.value or b"").hexdigest()
    position = f"{record.topic}/{record.partition}/{record.offset}/{digest}"
    return str(uuid.uuid5(_LETTER_NAMESPACE, position)), digest


def _outcome(letter: DeadLetter) -> ActivationOutcome | None:
    """The outcome a dead letter gives its activation, if it names one."""
    if letter.activationId is None:
        return None
    fields = fields_of(letter.value.encode())  # the original message: its flow and trigger
    return ActivationOutcome(
        activationId=letter.activationId,
        flowId=_text(fields.get("flowId")).lower(),
        triggerId=_text(fields.get("triggerId")).lower(),
        outcome=Outcome.INVALID if letter.kind == DeadLetterKind.INVALID else Outcome.DEAD_LETTERED,
        detail=f"dead-lettered ({letter.deadLetterId}): {letter.error}"[:MAX_ERROR],
        decidedAt=letter.at,
        # in the log at when it was received (when it tells; else when it was parked)
        receivedAt=received if isinstance(received := fields.get("receivedAt"), int) else letter.at,
        source=ActivationSource.KAFKA,
    )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _activation_id(
    command: ActivateTrigger | StartExecution | None, fields: dict[str, Any]
) -> str | None:
    if isinstance(command, ActivateTrigger):
        return command.activationId
    if command is not None:
        return None
    found = fields.get("activationId")
    return found if isinstance(found, str) and 0 < len(found) <= 128 else None


def _execution_id(command: ActivateTrigger | StartExecution | None) -> str | None:
    if isinstance(command, StartExecution):
        return command.executionId.lower()
    if isinstance(command, ActivateTrigger):
        try:
            return Selector.parse(command.execution).execution_id
        except ValueError:
            return None
    return None
