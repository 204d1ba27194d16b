"""In-memory stand-ins for the auth service's ports."""

from dataclasses import replace

from auth.core import StoredToken, StoredUser, normal_email
from auth.store import EmailTaken
from schemas.events import AuthEvent
from schemas.users import UserStatus


class InMemoryUserStore:
    """The UserStore port in dicts; passes the same contract tests as MongoUserStore."""

    def __init__(self) -> None:
        self.users: dict[str, StoredUser] = {}
        self.tokens: dict[str, StoredToken] = {}

    async def setup(self) -> None:
        return None

    async def add_user(self, user: StoredUser) -> None:
        if any(normal_email(u.email) == normal_email(user.email) for u in self.users.values()):
            raise EmailTaken(user.email)
        self.users[user.object_id] = user

    async def user_by_email(self, email: str) -> StoredUser | None:
        key = normal_email(email)
        return next((u for u in self.users.values() if normal_email(u.email) == key), None)

    async def user_by_id(self, object_id: str) -> StoredUser | None:
        return self.users.get(object_id)

    async def _update(self, object_id: str, **changes: object) -> StoredUser | None:
        user = self.users.get(object_id)
        if user is None:
            return None
        self.users[object_id] = replace(user, **changes)  # type: ignore[arg-type]
        return self.users[object_id]

    async def set_roles(self, object_id: str, roles: list[str], now: int) -> StoredUser | None:
        return await self._update(object_id, roles=tuple(roles), updated=now)

    async def set_status(self, object_id: str, status: UserStatus, now: int) -> StoredUser | None:
        return await self._update(object_id, status=status, updated=now)

    async def set_password(self, object_id: str, password_hash: str, now: int) -> None:
        await self._update(object_id, password_hash=password_hash)

    async def logged_in(self, object_id: str, now: int) -> StoredUser | None:
        return await self._update(object_id, last_login=now)

    async def add_token(self, token: StoredToken) -> None:
        self.tokens[token.token_hash] = token

    async def token(self, token_hash: str) -> StoredToken | None:
        return self.tokens.get(token_hash)

    async def drop_token(self, token_hash: str) -> StoredToken | None:
        return self.tokens.pop(token_hash, None)

    async def purge_tokens(self, now: int) -> int:
        expired = [h for h, t in self.tokens.items() if t.expires <= now]
        for token_hash in expired:
            del self.tokens[token_hash]
        return len(expired)

    async def drop_tokens_of(self, user_id: str) -> list[str]:
        hashes = [h for h, t in self.tokens.items() if t.user_id == user_id]
        for token_hash in hashes:
            del self.tokens[token_hash]
        return hashes


class RecordingAuthEvents:
    def __init__(self) -> None:
        self.events: list[AuthEvent] = []

    async def publish(self, event: AuthEvent) -> None:
        self.events.append(event)
