import pytest

from auth.core import RateLimiter, StoredUser, check_registration, check_roles, token_hash
from schemas.requests import RequestError


def test_registration_keeps_every_property_but_the_password() -> None:
    reg = check_registration(
        {
            "email": " bond@mi6.uk ",
            "password": "shaken-not-stirred",
            "firstName": "James",
            "age": 45,
            "phone": None,
        }
    )
    assert reg.email == "bond@mi6.uk"
    assert reg.properties == {"firstName": "James", "age": 45, "phone": None}


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"email": "not-an-email", "password": "long enough"}, "email must be an email address"),
        ({"email": "a@b.co", "password": "short"}, "password must be a string of 8"),
        ({"email": "a@b.co", "password": 12345678}, "password must be a string of 8"),
        (
            {"email": "a@b.co", "password": "long enough", "roles": ["Admin"]},
            "system fields cannot be set at registration: roles",
        ),
        (
            {"email": "a@b.co", "password": "long enough", "objectId": "X", "userStatus": "x"},
            "system fields cannot be set at registration: objectId, userStatus",
        ),
    ],
)
def test_bad_registrations_say_why(body: dict[str, object], problem: str) -> None:
    with pytest.raises(RequestError) as info:
        check_registration(body)
    assert info.value.status == 400
    assert problem in info.value.message


def test_roles_are_checked_and_deduplicated() -> None:
    assert check_roles({"roles": ["A", "B", "A"]}) == ["A", "B"]
    for bad in ({"roles": "A"}, {"roles": [""]}, {"roles": [1]}, {}):
        with pytest.raises(RequestError):
            check_roles(bad)


def test_the_public_user_has_the_contract_fields_and_no_hash() -> None:
    user = StoredUser(
        "ID", "j@b.uk", "$argon2id$secret-hash", 5, {"firstName": "J"}, roles=("R",), last_login=7
    )
    public = user.public().as_context()
    assert public == {
        "firstName": "J",
        "objectId": "ID",
        "ownerId": "ID",
        "email": "j@b.uk",
        "created": 5,
        "updated": None,
        "lastLogin": 7,
        "userStatus": "ENABLED",
        "roles": ["R"],
    }
    assert "secret-hash" not in str(public)


def test_a_token_is_stored_as_a_hash() -> None:
    assert token_hash("abc") == token_hash("abc") != token_hash("abd")
    assert "abc" not in token_hash("abc")


def test_rate_limiter_allows_limit_per_window_then_says_how_long_to_wait() -> None:
    limiter = RateLimiter(limit=2, window_ms=1000)
    assert limiter.hit("k", 0) == 0
    assert limiter.hit("k", 100) == 0
    assert limiter.hit("k", 200) == 800
    assert limiter.hit("other", 200) == 0
    assert limiter.hit("k", 1000) == 0  # the first attempt left the window


def test_rate_limiter_memory_is_bounded() -> None:
    limiter = RateLimiter(limit=1, window_ms=1000, max_keys=2)
    for key in ("a", "b", "c"):
        limiter.hit(key, 0)
    assert limiter.hit("a", 1) == 0  # forgotten: the oldest key was evicted
