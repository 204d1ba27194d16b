"""The callback rules the gateway and the engine share."""

import pytest

from schemas.callbacks import AuthCheck, Selector, SelectorKind, check_user
from schemas.flows import AuthenticationType
from schemas.users import User, UserStatus


def user(roles: list[str], status: UserStatus = UserStatus.ENABLED) -> User:
    return User(objectId="u", ownerId="u", email="u@x", created=1, roles=roles, userStatus=status)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, Selector(SelectorKind.ALL)),
        ("", Selector(SelectorKind.ALL)),
        ("all", Selector(SelectorKind.ALL)),
        ("ANY", Selector(SelectorKind.ANY)),
        (
            "5E0C4B1A-0C3D-4E2F-9A8B-7C6D5E4F3A2B",
            Selector(SelectorKind.ID, "5e0c4b1a-0c3d-4e2f-9a8b-7c6d5e4f3a2b"),
        ),
    ],
)
def test_the_execution_parameter_names_all_any_or_one_execution(
    raw: str | None, expected: Selector
) -> None:
    assert Selector.parse(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["a b", "../x", "x" * 65, "é", "a;b", "bogus", "5e0c-ab", "5e0c4b1a0c3d4e2f9a8b7c6d5e4f3a2b"],
)
def test_anything_else_is_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="all, any or an execution id"):
        Selector.parse(raw)


def test_a_selector_prints_as_the_parameter_it_came_from() -> None:
    some = "5E0C4B1A-0C3D-4E2F-9A8B-7C6D5E4F3A2B"
    assert [str(Selector.parse(v)) for v in (None, "Any", some)] == ["all", "any", some.lower()]


def test_a_user_trigger_needs_an_enabled_user_with_every_role() -> None:
    user_trigger = AuthenticationType.USER
    assert check_user(user_trigger, ["A"], user(["A", "B"])) == AuthCheck.PASSED
    assert check_user(user_trigger, ["A", "B"], user(["A"])) == AuthCheck.MISSING_ROLES
    assert check_user(user_trigger, [], None) == AuthCheck.NO_USER
    assert check_user(user_trigger, [], user([], UserStatus.DISABLED)) == AuthCheck.NO_USER
    assert check_user(AuthenticationType.NONE, [], None) == AuthCheck.PASSED
    assert [c.status for c in AuthCheck] == [200, 401, 403]
