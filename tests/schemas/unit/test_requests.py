from collections.abc import AsyncIterator

import pytest

from schemas.errors import ErrorCode
from schemas.requests import RequestError, json_object, parse_object, read_limited, require_json


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


@pytest.mark.parametrize("body", [b"", b"  \n", b"{}"])
def test_an_empty_body_is_an_empty_object(body: bytes) -> None:
    assert parse_object(body) == {}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{", ErrorCode.MALFORMED_JSON),
        (b"\xff\xfe", ErrorCode.MALFORMED_JSON),
        (b"[1, 2]", ErrorCode.NOT_AN_OBJECT),
        (b'"text"', ErrorCode.NOT_AN_OBJECT),
        (b"null", ErrorCode.NOT_AN_OBJECT),
    ],
)
def test_bad_bodies_are_400_with_a_stable_code(body: bytes, code: ErrorCode) -> None:
    with pytest.raises(RequestError) as info:
        parse_object(body)
    assert (info.value.status, info.value.code) == (400, code)
    assert info.value.body() == {"code": code, "message": info.value.message}


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_other_content_types_are_415(content_type: str) -> None:
    with pytest.raises(RequestError) as info:
        require_json(content_type)
    assert info.value.status == 415


@pytest.mark.parametrize(
    "content_type",
    [None, "application/json", "application/json; charset=utf-8", "application/vnd.api+json"],
)
def test_json_content_types_are_accepted(content_type: str | None) -> None:
    require_json(content_type)


async def test_reading_stops_as_soon_as_the_limit_is_passed() -> None:
    consumed: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        for i in range(1000):
            consumed.append(i)
            yield b"x" * 100

    with pytest.raises(RequestError) as info:
        await read_limited(endless(), limit=250)
    assert info.value.status == 413
    assert len(consumed) == 3


async def test_a_body_at_the_limit_is_read() -> None:
    assert await json_object("application/json", chunks(b'{"a":', b" 1}"), limit=8) == {"a": 1}
