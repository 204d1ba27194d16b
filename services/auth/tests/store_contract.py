"""The UserStore contract, run against the fake and the real MongoDB-wire server."""

import pytest

from auth.core import StoredToken, StoredUser
from auth.store import EmailTaken, UserStore
from schemas.users import UserStatus

ODD = {"a.b": [[1, 2]], "$x": 2**70, "name": "Zoë"}


def user(object_id: str = "U1", email: str = "Jane@Example.com") -> StoredUser:
    return StoredUser(object_id, email, "$argon2id$hash", 10, ODD)


async def test_users_round_trip_with_any_properties(store: UserStore) -> None:
    await store.add_user(user())
    assert await store.user_by_id("U1") == user()
    assert await store.user_by_email("jane@EXAMPLE.com") == user()
    assert await store.user_by_email("john@example.com") is None


async def test_emails_are_unique_in_any_letter_case(store: UserStore) -> None:
    await store.add_user(user())
    with pytest.raises(EmailTaken):
        await store.add_user(user("U2", "JANE@example.COM"))


async def test_roles_status_and_login_time_change(store: UserStore) -> None:
    await store.add_user(user())
    changed = await store.set_roles("U1", ["A", "B"], 20)
    assert changed is not None
    assert (changed.roles, changed.updated) == (("A", "B"), 20)
    disabled = await store.set_status("U1", UserStatus.DISABLED, 30)
    assert disabled is not None
    assert disabled.status == UserStatus.DISABLED
    logged = await store.logged_in("U1", 40)
    assert logged is not None
    assert logged.last_login == 40
    assert await store.set_roles("nobody", [], 1) is None


async def test_tokens_are_found_dropped_and_purged(store: UserStore) -> None:
    await store.add_token(StoredToken("h1", "U1", 1, 100))
    await store.add_token(StoredToken("h2", "U1", 1, 200))
    assert await store.token("h1") == StoredToken("h1", "U1", 1, 100)
    assert await store.drop_token("h1") == StoredToken("h1", "U1", 1, 100)
    assert await store.drop_token("h1") is None
    assert await store.purge_tokens(now=150) == 0
    assert await store.purge_tokens(now=200) == 1
    assert await store.token("h2") is None


async def test_a_users_tokens_are_dropped_together(store: UserStore) -> None:
    for n, user in enumerate(("U1", "U1", "U2")):
        await store.add_token(StoredToken(f"h{n}", user, 1, 10_000))
    assert sorted(await store.drop_tokens_of("U1")) == ["h0", "h1"]
    assert await store.token("h0") is None
    assert await store.token("h2") is not None
    assert await store.drop_tokens_of("U1") == []
