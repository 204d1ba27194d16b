"""A Kafka record and the command it reads as, with the gateway's rules for JSON."""

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from aiokafka.structs import ConsumerRecord
from pydantic import BaseModel, ValidationError

from schemas.requests import MAX_DEPTH, RequestError, parse_object

Command = TypeVar("Command", bound=BaseModel)


@dataclass(frozen=True)
class Item(Generic[Command]):
    """A record of a batch: its command, or why it is not one."""

    record: ConsumerRecord[Any, Any]
    command: Command | None
    invalid: str | None = None


def read_command(value: bytes | None, model: type[Command]) -> Command:
    """A record's command, read with the gateway's rules for JSON (its `data` may nest
    as deep as a request body, one level below the message); raises ValueError, which
    says why it is not one."""
    try:
        fields = parse_object(value or b"", MAX_DEPTH + 1)
    except RequestError as exc:
        raise ValueError(exc.message) from None
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        raise ValueError(
            "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'message'}: {e['msg']}"
                for e in exc.errors()[:10]
            )
        ) from None
