"""Dead letters keep no credential and never outgrow the broker, whatever the record."""

import hashlib
import json
from typing import Any

import pytest

from engine.dead_letters import DeadLetters, IncompleteDeadLetter, Received
from schemas.events import DeadLetterKind
from schemas.sealing import sealing_key

from ..fakes import InMemoryStore, RecordingPublisher

TOKEN = "a-flow-admins-user-token-0123456789"


class _NoEngine:
    async def give_up(self, *args: Any) -> None:
        raise AssertionError("no execution is named here")


def _letters(key: bytes | None) -> tuple[DeadLetters, InMemoryStore, RecordingPublisher]:
    store, published = InMemoryStore(), RecordingPublisher()
    return DeadLetters(_NoEngine(), store, published, lambda: 1, key), store, published  # type: ignore[arg-type]


def _record(value: bytes, offset: int = 0) -> Received:
    return Received("t.activations", 0, offset, b"k", value)


async def test_a_user_token_is_kept_sealed_and_put_back_for_a_replay() -> None:
    letters, _, published = _letters(sealing_key("unit-activation-key"))
    message = {"activationId": "a-1", "flowId": "f", "userToken": TOKEN, "data": {"n": 1}}
    parked = await letters.park(
        _record(json.dumps(message).encode()), DeadLetterKind.FAILED, "it failed", 5
    )
    assert TOKEN not in parked.model_dump_json()
    assert TOKEN not in published.dead_letters[0].model_dump_json()
    assert parked.sealedUserToken is not None
    await letters.replay(parked.deadLetterId)
    (replayed,) = published.replayed
    assert json.loads(replayed.value) == message


async def test_without_a_key_the_token_is_dropped_and_text_that_is_not_json_is_cleaned() -> None:
    letters, _, _ = _letters(None)
    message = {"activationId": "a-2", "userToken": TOKEN}
    dropped = await letters.park(
        _record(json.dumps(message).encode()), DeadLetterKind.INVALID, "invalid", 1
    )
    assert TOKEN not in dropped.model_dump_json()
    assert dropped.sealedUserToken is None
    broken = b'{"userToken": "' + TOKEN.encode() + b'", "data": [[['
    cleaned = await letters.park(_record(broken, 1), DeadLetterKind.INVALID, "invalid", 1)
    assert TOKEN not in cleaned.model_dump_json()


@pytest.mark.parametrize(
    "value",
    [
        b'{"activationId": "a-3", "data": ["' + b'\\"' * 300_000 + b'"]}',  # escapes double
        b'{"activationId": "a-3", "data": "' + b"\xff" * 400_000 + b'"}',  # 3 bytes each
        b"[" * 900_000,  # not JSON, and over the limit as text
    ],
)
async def test_a_letter_too_large_for_the_broker_keeps_the_head_size_and_sha256(
    value: bytes,
) -> None:
    letters, _, published = _letters(None)
    parked = await letters.park(_record(value), DeadLetterKind.INVALID, "invalid", 1)
    (sent,) = published.dead_letters
    assert len(sent.model_dump_json().encode()) < 512 * 1024
    assert parked.truncated
    assert (parked.size, parked.sha256) == (len(value), hashlib.sha256(value).hexdigest())
    assert value.decode(errors="replace").startswith(parked.value)
    with pytest.raises(IncompleteDeadLetter):
        await letters.replay(parked.deadLetterId)


async def test_the_activation_id_of_a_message_nested_too_deep_to_parse_is_still_read() -> None:
    letters, _, published = _letters(None)
    value = b'{"activationId": "a-deep", "flowId": "f", "data": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    parked = await letters.park(_record(value), DeadLetterKind.INVALID, "too deep", 1)
    assert parked.activationId == "a-deep"
    assert [o.outcome for o in published.decided] == ["INVALID"]
