"""User-token resolution: the auth service's introspection behind a bounded TTL cache.

Entries are keyed by the token's SHA-256 (the raw token is never kept), so the auth
service's TokenRevoked events, which carry that hash, drop them at once; RolesChanged
and UserDisabled drop every entry of the user. Concurrent misses for one token share
one round trip.
"""

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import ValidationError

from schemas.access import INTERNAL_KEY_HEADER, auth_unavailable
from schemas.signing import user_text
from schemas.users import TokenIntrospection, User, plausible_token

logger = logging.getLogger(__name__)


class AuthUnavailable(Exception):
    """The auth service did not answer; nothing can be said about the token."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Caller:
    """A token's user with what an activation carries of it: its context (what
    expressions see as `user`) and that context's canonical text, which the gateway
    signs for each activation (`schemas.signing`). Made once per cached token, so a
    callback with a known token pays only its signature's HMAC."""

    user: User
    context: dict[str, Any]
    text: str

    @classmethod
    def of(cls, user: User) -> "Caller":
        context = user.as_context()
        return cls(user, context, user_text(context))


@dataclass(frozen=True)
class _Entry:
    caller: Caller | None
    expires: float


class TokenCache:
    def __init__(
        self,
        introspect: Callable[[str], Awaitable[TokenIntrospection]],
        size: int,
        ttl: float,
        negative_ttl: float,
        clock: Callable[[], float] = time.monotonic,
        wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self._wall_ms = wall_ms
        self._introspect = introspect
        self._size = size
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._by_user: dict[str, set[str]] = {}
        self._pending: dict[str, asyncio.Future[Caller | None]] = {}
        self.hits = 0  # answered without an introspection of their own
        self.misses = 0

    async def user(self, token: str) -> User | None:
        """The active token's user, or None when the token is not active."""
        caller = await self.caller(token)
        return caller.user if caller is not None else None

    async def caller(self, token: str) -> Caller | None:
        """The active token's user with its context, or None when it is not active."""
        if not plausible_token(token):
            return None
        key = token_hash(token)
        entry = self._entries.get(key)
        if entry is not None and entry.expires > self._clock():
            self._entries.move_to_end(key)
            self.hits += 1
            return entry.caller
        pending = self._pending.get(key)
        if pending is not None:
            self.hits += 1
            return await asyncio.shield(pending)
        future: asyncio.Future[Caller | None] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            self.misses += 1
            answer = await self._introspect(token)
            caller = Caller.of(answer.user) if answer.active and answer.user else None
            self._store(key, caller, answer.exp if caller is not None else None)
            future.set_result(caller)
            return caller
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here, so an unawaited future logs nothing
            raise
        finally:
            del self._pending[key]

    def _store(self, key: str, caller: Caller | None, token_expires_ms: int | None = None) -> None:
        ttl = self._ttl if caller is not None else self._negative_ttl
        if token_expires_ms is not None:  # never served past the token's own expiry
            ttl = min(ttl, (token_expires_ms - self._wall_ms()) / 1000)
        self._entries[key] = _Entry(caller, self._clock() + ttl)
        self._entries.move_to_end(key)
        if caller is not None:
            self._by_user.setdefault(caller.user.objectId, set()).add(key)
        while len(self._entries) > self._size:
            old_key, old = self._entries.popitem(last=False)
            self._unindex(old_key, old)

    def _unindex(self, key: str, entry: _Entry) -> None:
        if entry.caller is not None:
            keys = self._by_user.get(entry.caller.user.objectId)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_user[entry.caller.user.objectId]

    def drop_token(self, hashed: str) -> None:
        entry = self._entries.pop(hashed, None)
        if entry is not None:
            self._unindex(hashed, entry)

    def drop_user(self, user_id: str) -> None:
        for key in self._by_user.pop(user_id, set()):
            self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)


async def caller_of(tokens: TokenCache, token: str) -> Caller | None:
    """The user of a user-token (None: not a valid one); 503 when auth does not answer."""
    try:
        return await tokens.caller(token)
    except AuthUnavailable as exc:
        logger.warning("auth service unavailable", extra={"error": str(exc)})
        raise auth_unavailable() from exc


class AuthClient:
    """Calls the auth service's introspection endpoint."""

    PATH = "/internal/tokens/introspect"

    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        timeout: float,
        internal_key: str | None = None,
    ) -> None:
        self._client = client
        self._url = base_url.rstrip("/") + self.PATH
        self._timeout = timeout
        self._headers = {INTERNAL_KEY_HEADER: internal_key} if internal_key else {}

    async def __call__(self, token: str) -> TokenIntrospection:
        try:
            response = await self._client.post(
                self._url, json={"token": token}, timeout=self._timeout, headers=self._headers
            )
            response.raise_for_status()
            return TokenIntrospection.model_validate_json(response.content)
        except (httpx.HTTPError, ValidationError) as exc:
            raise AuthUnavailable(str(exc)) from exc
