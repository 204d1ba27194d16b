"""Dead letters: messages the engine gave up on, kept to be inspected and replayed.

A message that is not a valid command is parked at once; a valid one whose processing
failed on every attempt is parked with its last error (the consumers decide when,
`consumers.py`). Parking stores the letter, publishes it on the dead-letter topic,
fails the execution it was about (if known) and answers the activation (if its id can
be read): `INVALID` is its final outcome, `DEAD_LETTERED` only until a replay decides
it. Every step can be repeated: a letter's id derives from the record's position.
"""

import hashlib
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.ports import Publisher, Store
from engine.service import Engine
from schemas.callbacks import Selector
from schemas.events import (
    ActivateTrigger,
    ActivationOutcome,
    DeadLetter,
    DeadLetterKind,
    Outcome,
    StartExecution,
)

logger = logging.getLogger(__name__)

_LETTER_NAMESPACE = uuid.UUID("0d7c2a55-58a6-4b8e-9f0e-3c1d2b4a5e60")
MAX_ERROR = 2000  # characters of an error kept with its letter


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


class DeadLetters:
    """Parks, lists and replays dead letters."""

    def __init__(
        self, engine: Engine, store: Store, publisher: Publisher, clock: Callable[[], int]
    ) -> None:
        self._engine = engine
        self._store = store
        self._publish = publisher
        self._now = clock

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
        value = (record.value or b"").decode("utf-8", errors="replace")
        activation_id = _activation_id(command, value)
        if execution_id is None:
            execution_id = _execution_id(command)
        # the same record parked again (a redelivery) is the same letter
        digest = hashlib.sha256(record.value or b"").hexdigest()
        position = f"{record.topic}/{record.partition}/{record.offset}/{digest}"
        letter = DeadLetter(
            deadLetterId=str(uuid.uuid5(_LETTER_NAMESPACE, position)),
            kind=kind,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key.decode("utf-8", errors="replace") if record.key is not None else None,
            value=value,
            error=error[:MAX_ERROR],
            attempts=attempts,
            activationId=activation_id,
            executionId=execution_id,
            at=self._now(),
        )
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

    async def replay(self, letter_id: str) -> DeadLetter:
        """Publish a letter's message again to its topic: it is decided as if new."""
        letter = await self._store.get_dead_letter(letter_id)
        if letter is None:
            raise UnknownDeadLetter(letter_id)
        await self._publish.replay(letter)
        replayed = await self._store.mark_replayed(letter_id, self._now())
        logger.info("dead letter replayed", extra={"dead_letter_id": letter_id})
        return replayed or letter


def _outcome(letter: DeadLetter) -> ActivationOutcome | None:
    """The outcome a dead letter gives its activation, if it names one."""
    if letter.activationId is None:
        return None
    fields = _fields(letter.value)  # the original message: its flow and trigger
    return ActivationOutcome(
        activationId=letter.activationId,
        flowId=_text(fields.get("flowId")).lower(),
        triggerId=_text(fields.get("triggerId")).lower(),
        outcome=Outcome.INVALID if letter.kind == DeadLetterKind.INVALID else Outcome.DEAD_LETTERED,
        detail=f"dead-lettered ({letter.deadLetterId}): {letter.error}"[:MAX_ERROR],
        decidedAt=letter.at,
    )


def _fields(value: str) -> dict[str, Any]:
    try:
        fields = json.loads(value)
    except ValueError:
        return {}
    return fields if isinstance(fields, dict) else {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _activation_id(command: ActivateTrigger | StartExecution | None, value: str) -> str | None:
    if isinstance(command, ActivateTrigger):
        return command.activationId
    if command is not None:
        return None
    found = _fields(value).get("activationId")
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
