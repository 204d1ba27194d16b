"""A dead letter's message: its fields read whatever its bytes (a linear scan of the top
level where it does not parse), and its user-token taken out, sealed, and put back for a
replay."""

import contextlib
import json
import logging
import re
from typing import Any

from schemas.events import DeadLetter
from schemas.requests import MAX_DEPTH, RequestError, parse_object
from schemas.sealing import seal, unseal

logger = logging.getLogger(__name__)

_TOKEN = "userToken"  # noqa: S105  # the field's name, not a token
# a userToken in text that is not a JSON object (so cannot be taken out field by field)
_TOKEN_TEXT = re.compile(r'"userToken"\s*:\s*"(?:[^"\\]|\\.)*"?')

_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def without_token(
    raw: bytes, fields: dict[str, Any], letter_id: str, key: bytes | None
) -> tuple[str, str | None]:
    """The message as text without its userToken, and the token sealed (if any)."""
    token = fields.get(_TOKEN)
    if isinstance(token, str):
        rest = {name: value for name, value in fields.items() if name != _TOKEN}
        sealed = seal(key, token, letter_id) if key else None
        return _JSON.encode(rest), sealed
    text = raw.decode("utf-8", errors="replace")
    if _TOKEN in text:
        text = _TOKEN_TEXT.sub(f'"{_TOKEN}":"(removed)"', text)
    return text, None


def with_token(letter: DeadLetter, key: bytes | None) -> str:
    """The letter's message as it was sent: its sealed userToken put back."""
    if letter.sealedUserToken is None or key is None:
        return letter.value
    fields = fields_of(letter.value.encode())
    try:
        fields[_TOKEN] = unseal(key, letter.sealedUserToken, letter.deadLetterId)
    except ValueError:
        logger.warning(
            "a dead letter's user-token does not open with this engine's key",
            extra={"dead_letter_id": letter.deadLetterId},
        )
        return letter.value
    return _JSON.encode(fields)


def fields_of(raw: bytes) -> dict[str, Any]:
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
