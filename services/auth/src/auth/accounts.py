"""The auth use cases: register, log in and out, introspect tokens, manage roles and status."""

import logging
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from auth.core import (
    Backoff,
    RateLimiter,
    StoredToken,
    StoredUser,
    check_registration,
    normal_email,
    token_hash,
)
from auth.passwords import Passwords
from auth.store import EmailTaken, UserStore
from schemas.errors import ErrorCode
from schemas.events import AuthEvent, RolesChanged, TokenRevoked, UserDisabled
from schemas.requests import RequestError
from schemas.users import TokenIntrospection, User, UserStatus, plausible_token

logger = logging.getLogger(__name__)

TOKEN_BYTES = 32  # 256 bits


class AuthEvents(Protocol):
    async def publish(self, event: AuthEvent) -> None: ...


@dataclass(frozen=True)
class Limits:
    token_ttl_ms: int
    per_pair: Backoff  # failed logins of one account from one address
    per_address: RateLimiter  # login attempts from one address, whatever the account
    registrations: RateLimiter  # registrations from one address


class Accounts:
    def __init__(
        self,
        store: UserStore,
        passwords: Passwords,
        events: AuthEvents,
        limits: Limits,
        clock: Callable[[], int],
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()).upper(),
        new_token: Callable[[], str] = lambda: secrets.token_urlsafe(TOKEN_BYTES),
    ) -> None:
        self._store = store
        self._passwords = passwords
        self._events = events
        self._limits = limits
        self._now = clock
        self._new_id = new_id
        self._new_token = new_token

    async def register(self, body: dict[str, Any], address: str | None = None) -> User:
        """Register a user; `address` is the caller's (None: an operator command)."""
        if address is not None:
            wait_ms = self._limits.registrations.hit(address, self._now())
            if wait_ms:
                raise RateLimited(wait_ms, "too many registrations from this address")
        registration = check_registration(body)
        user = StoredUser(
            object_id=self._new_id(),
            email=registration.email,
            password_hash=await self._passwords.hash(registration.password),
            created=self._now(),
            properties=registration.properties,
        )
        try:
            await self._store.add_user(user)
        except EmailTaken as exc:
            raise RequestError(
                409, ErrorCode.USER_EXISTS, "a user with this email exists already"
            ) from exc
        logger.info("user registered", extra={"user_id": user.object_id})
        return user.public()

    async def login(self, body: dict[str, Any], address: str) -> dict[str, Any]:
        login, password = body.get("login"), body.get("password")
        if not isinstance(login, str) or not isinstance(password, str) or not login or not password:
            raise RequestError(
                400, ErrorCode.LOGIN_MISSING, "login and password are required, non-empty strings"
            )
        now = self._now()
        pair = (normal_email(login), address)
        wait_ms = max(
            self._limits.per_pair.wait(pair, now), self._limits.per_address.hit(address, now)
        )
        if wait_ms:
            raise RateLimited(wait_ms)
        user = await self._store.user_by_email(login)
        if not await self._passwords.verify(user.password_hash if user else None, password):
            self._limits.per_pair.failed(pair, self._now())
            raise RequestError(401, ErrorCode.INVALID_LOGIN, "invalid login or password")
        assert user is not None
        self._limits.per_pair.succeeded(pair)
        if user.status != UserStatus.ENABLED:
            raise RequestError(403, ErrorCode.USER_DISABLED, "this user is disabled")
        if self._passwords.needs_rehash(user.password_hash):
            await self._store.set_password(
                user.object_id, await self._passwords.hash(password), now
            )
        token = self._new_token()
        await self._store.add_token(
            StoredToken(token_hash(token), user.object_id, now, now + self._limits.token_ttl_ms)
        )
        logged_in = await self._store.logged_in(user.object_id, now) or user
        logger.info("user logged in", extra={"user_id": user.object_id})
        return {**logged_in.public().as_context(), "user-token": token}

    async def logout(self, token: str | None) -> None:
        dropped = await self._store.drop_token(token_hash(token)) if token else None
        if dropped is None:
            raise RequestError(401, ErrorCode.INVALID_TOKEN, "not a valid user-token")
        await self._events.publish(
            TokenRevoked(tokenHash=dropped.token_hash, userId=dropped.user_id, at=self._now())
        )

    async def introspect(self, token: str) -> TokenIntrospection:
        """Whether a token is active (known, unexpired, its user enabled) and whose it is."""
        if not plausible_token(token):
            return TokenIntrospection(active=False)
        stored = await self._store.token(token_hash(token))
        now = self._now()
        if stored is None or not stored.active_at(now):
            return TokenIntrospection(active=False)
        user = await self._store.user_by_id(stored.user_id)
        if user is None or user.status != UserStatus.ENABLED:
            return TokenIntrospection(active=False)
        return TokenIntrospection(active=True, user=user.public(), exp=stored.expires)

    async def user(self, object_id: str) -> User:
        found = await self._store.user_by_id(object_id)
        if found is None:
            raise RequestError(404, ErrorCode.UNKNOWN_USER, "no such user")
        return found.public()

    async def set_roles(self, object_id: str, roles: list[str]) -> User:
        user = await self._store.set_roles(object_id, roles, self._now())
        if user is None:
            raise RequestError(404, ErrorCode.UNKNOWN_USER, "no such user")
        await self._events.publish(RolesChanged(userId=object_id, roles=roles, at=self._now()))
        return user.public()

    async def set_status(self, object_id: str, status: UserStatus) -> User:
        user = await self._store.set_status(object_id, status, self._now())
        if user is None:
            raise RequestError(404, ErrorCode.UNKNOWN_USER, "no such user")
        if status == UserStatus.DISABLED:
            # its tokens die with it: enabling the user again does not bring them back
            revoked = await self._store.drop_tokens_of(object_id)
            await self._events.publish(UserDisabled(userId=object_id, at=self._now()))
            for hashed in revoked:
                await self._events.publish(
                    TokenRevoked(tokenHash=hashed, userId=object_id, at=self._now())
                )
        return user.public()

    async def ensure_user(
        self, email: str, password: str, roles: list[str], properties: dict[str, Any]
    ) -> User:
        """Create a user with roles, or give an existing one these roles (operator command)."""
        existing = await self._store.user_by_email(email)
        if existing is None:
            created = await self.register({**properties, "email": email, "password": password})
            existing = await self._store.user_by_id(created.objectId)
            assert existing is not None
        return await self.set_roles(existing.object_id, roles)

    async def purge(self) -> int:
        return await self._store.purge_tokens(self._now())


class RateLimited(RequestError):
    """Too many attempts: 429 with the seconds to wait."""

    def __init__(self, wait_ms: int, what: str = "too many login attempts") -> None:
        super().__init__(429, ErrorCode.RATE_LIMITED, f"{what}; retry later")
        self.retry_after = max(1, -(-wait_ms // 1000))
