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

import contextlib
import hashlib
import json
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.ports import Publisher, Store
from engine.usecases import Engine
from schemas.callbacks import Selector
from schemas.events import (
    ActivateTrigger,
    ActivationOutcome,
    DeadLetter,
    DeadLetterKind,
    Outcome,
    StartExecution,
)
from schemas.requests import MAX_DEPTH, RequestError, parse_object
from schemas.sealing import seal, unseal

logger = logging.getLogger(__name__)

_LETTER_NAMESPACE = uuid.UUID("0d7c2a55-58a6-4b8e-9f0e-3c1d2b4a5e60")
MAX_ERROR = 2000  # characters of an error kept with its letter
MAX_LETTER_BYTES = 512 * 1024  # a letter as JSON, well below the broker's 1 MB a message
HEAD = 16 * 1024  # characters of a message kept when the whole does not fit
MAX_KEY = 1024  # characters of a record's key kept
_TOKEN = "userToken"  # noqa: S105  # the field's name, not a token
# a userToken in text that is not a JSON object (so cannot be taken out field by field)
_TOKEN_TEXT = re.compile(r'"userToken"\s*:\s*"(?:[^"\\]|\\.)*"?')


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
        fields = _fields(raw)
        activation_id = _activation_id(command, fields)
        if execution_id is None:
            execution_id = _execution_id(command)
        letter_id, digest = _identity(record)
        value, sealed = self._without_token(raw, fields, letter_id)
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
        await self._publish.replay(letter.model_copy(update={"value": self._with_token(letter)}))
        replayed = await self._store.mark_replayed(letter_id, self._now())
        logger.info("dead letter replayed", extra={"dead_letter_id": letter_id})
        return replayed or letter

    def _without_token(
        self, raw: bytes, fields: dict[str, Any], letter_id: str
    ) -> tuple[str, str | None]:
        """The message as text without its userToken, and the token sealed (if any)."""
        token = fields.get(_TOKEN)
        if isinstance(token, str):
            rest = {name: value for name, value in fields.items() if name != _TOKEN}
            sealed = seal(self._sealing, token, letter_id) if self._sealing else None
            return _JSON.encode(rest), sealed
        text = raw.decode("utf-8", errors="replace")
        if _TOKEN in text:
            text = _TOKEN_TEXT.sub(f'"{_TOKEN}":"(removed)"', text)
        return text, None

    def _with_token(self, letter: DeadLetter) -> str:
        """The letter's message as it was sent: its sealed userToken put back."""
        if letter.sealedUserToken is None or self._sealing is None:
            return letter.value
        fields = _fields(letter.value.encode())
        try:
            fields[_TOKEN] = unseal(self._sealing, letter.sealedUserToken, letter.deadLetterId)
        except ValueError:
            logger.warning(
                "a dead letter's user-token does not open with this engine's key",
                extra={"dead_letter_id": letter.deadLetterId},
            )
            return letter.value
        return _JSON.encode(fields)


def _identity(record: Received) -> tuple[str, str]:
    """The letter id of a record and the SHA-256 of its bytes: the same record parked
    again (a redelivery) is the same letter."""
    digest = hashlib.sha256(record.value or b"").hexdigest()
    position = f"{record.topic}/{record.partition}/{record.offset}/{digest}"
    return str(uuid.uuid5(_LETTER_NAMESPACE, position)), digest


_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _outcome(letter: DeadLetter) -> ActivationOutcome | None:
    """The outcome a dead letter gives its activation, if it names one."""
    if letter.activationId is None:
        return None
    fields = _fields(letter.value.encode())  # the original message: its flow and trigger
    return ActivationOutcome(
        activationId=letter.activationId,
        flowId=_text(fields.get("flowId")).lower(),
        triggerId=_text(fields.get("triggerId")).lower(),
        outcome=Outcome.INVALID if letter.kind == DeadLetterKind.INVALID else Outcome.DEAD_LETTERED,
        detail=f"dead-lettered ({letter.deadLetterId}): {letter.error}"[:MAX_ERROR],
        decidedAt=letter.at,
    )


def _fields(raw: bytes) -> dict[str, Any]:
    """The message's fields, when it is a JSON object by the gateway's rules; else the
    ids among its top-level fields that can still be read (`_top_level`)."""
    try:
        return parse_object(raw, MAX_DEPTH + 1)
    except RequestError:
        return _top_level(raw, ("activationId", "flowId", "triggerId"))


_SCANNED = 64 * 1024  # bytes of a message that cannot be parsed, read for its ids
_NEXT = re.compile(rb'["\[\]{}]')
_STRING_REST = re.compile(rb'(?:[^"\\]|\\.)*+"')
_STRING_VALUE = re.compile(rb'\s*:\s*("(?:[^"\\]|\\.){1,256}+")')


def _top_level(raw: bytes, names: tuple[str, ...]) -> dict[str, Any]:
    """The string values of `names` among the top-level fields of an object that does
    not parse (nested too deep, broken further on): its first bytes are read token by
    token, each string skipped whole, without recursion, in time linear in their size."""
    head = raw[:_SCANNED]
    wanted = {b'"' + name.encode() + b'"': name for name in names}
    found: dict[str, Any] = {}
    depth, at = 0, 0
    while (token := _NEXT.search(head, at)) is not None:
        char = head[token.start()]
        if char != ord('"'):
            depth += 1 if char in b"[{" else -1
            at = token.end()
            continue
        end = _STRING_REST.match(head, token.end())
        if end is None:
            break  # a string that does not end in what was read
        name = wanted.get(head[token.start() : end.end()]) if depth == 1 else None
        value = _STRING_VALUE.match(head, end.end()) if name else None
        if name and value:
            with contextlib.suppress(ValueError):
                found.setdefault(name, json.loads(value.group(1)))
        at = end.end()
    return found


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
