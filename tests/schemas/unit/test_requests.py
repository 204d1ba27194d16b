import json
from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), _JSON_VALUES, max_size=5), st.booleans())
@settings(max_examples=400, deadline=None)
def test_a_body_means_what_the_standard_library_reads(data: dict[str, object], ascii: bool) -> None:
    # orjson reads most bodies; each must mean what the standard library reads
    body = json.dumps(data, ensure_ascii=ascii).encode()
    parsed = parse_object(body)
    assert parsed == json.loads(body)
    assert json.dumps(parsed) == json.dumps(json.loads(body))  # an int stays an int


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": 1, "a": 2}',  # the last of duplicate keys
        b'{"n": 12345678901234567890123}',  # beyond 64 bits: exact
        b'{"n": -9223372036854775809}',
        b'{"n": 18446744073709551615, "m": 9223372036854775807}',
        b'{"f": 1E5, "g": -0.0, "h": 1e-400, "i": 0.1}',
        b'\xef\xbb\xbf{"bom": true}',
        '{"utf16": "é"}'.encode("utf-16"),
        b'{"s": "\\u00e9\\ud83d\\ude00\\u0000"}',
    ],
)
def test_edge_bodies_mean_what_the_standard_library_reads(body: bytes) -> None:
    expected = json.loads(body)
    parsed = parse_object(body)
    assert parsed == expected
    assert json.dumps(parsed) == json.dumps(expected)
