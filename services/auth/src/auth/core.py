"""The auth rules, pure: registration checks, the user object, tokens and rate limits.

No I/O, no clock, no randomness of its own: `now`, ids and random bytes are arguments.
"""

import hashlib
import re
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any

from schemas.errors import ErrorCode
from schemas.requests import RequestError
from schemas.users import User, UserStatus

SYSTEM_FIELDS = frozenset(
    {
        "objectId",
        "ownerId",
        "email",
        "created",
        "updated",
        "lastLogin",
        "userStatus",
        "roles",
        "password",
        "user-token",
    }
)
_SYSTEM_FOLDED = frozenset(f.casefold() for f in SYSTEM_FIELDS)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
MAX_ROLES = 100


@dataclass(frozen=True)
class Registration:
    """A checked registration request; `properties` are every field besides the system ones."""

    email: str
    password: str
    properties: dict[str, Any]


def check_registration(body: dict[str, Any]) -> Registration:
    """Check a registration body; raise RequestError (400) naming every problem."""
    problems: list[tuple[ErrorCode, str]] = []
    email = body.get("email")
    email = email.strip() if isinstance(email, str) else email
    password = body.get("password")
    if email is None or email == "":
        problems.append((ErrorCode.IDENTITY_REQUIRED, "email is required"))
    elif not isinstance(email, str) or not _EMAIL.match(email) or len(email) > 320:
        problems.append((ErrorCode.EMAIL_INVALID, "email must be an email address"))
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        problems.append(
            (
                ErrorCode.PASSWORD_REQUIRED,
                f"password must be a string of {MIN_PASSWORD} to {MAX_PASSWORD} characters",
            )
        )
    # a system field in another case or with spaces around it is refused too: clients
    # reading `Roles` or `email ` next to the real ones would be misled
    reserved = sorted(
        k for k in body if k.strip().casefold() in _SYSTEM_FOLDED and k not in ("email", "password")
    )
    if reserved:
        problems.append(
            (
                ErrorCode.INVALID_REQUEST,
                f"system fields cannot be set at registration: {', '.join(reserved)}",
            )
        )
    if problems:
        # the first problem's code (Backendless's, which its SDKs know); every problem named
        raise RequestError(400, problems[0][0], "; ".join(text for _, text in problems))
    assert isinstance(email, str)
    assert isinstance(password, str)
    properties = {k: v for k, v in body.items() if k not in SYSTEM_FIELDS}
    return Registration(email, password, properties)


def check_roles(body: dict[str, Any]) -> list[str]:
    """Check a `{"roles": [...]}` body; return the roles, de-duplicated in order."""
    roles = body.get("roles")
    if (
        not isinstance(roles, list)
        or len(roles) > MAX_ROLES
        or not all(isinstance(r, str) and 0 < len(r) <= 100 for r in roles)
    ):
        raise RequestError(
            400,
            ErrorCode.INVALID_REQUEST,
            f"roles must be a list of at most {MAX_ROLES} non-empty names",
        )
    return list(dict.fromkeys(roles))


def normal_email(email: str) -> str:
    """The form emails are unique in: case-insensitive."""
    return email.strip().lower()


@dataclass(frozen=True)
class StoredUser:
    """A user as stored: the public object's fields plus the password hash."""

    object_id: str
    email: str
    password_hash: str
    created: int
    properties: dict[str, Any]
    roles: tuple[str, ...] = ()
    status: UserStatus = UserStatus.ENABLED
    updated: int | None = None
    last_login: int | None = None

    def public(self) -> User:
        """The user object of the contract; never carries the password hash."""
        return User.model_validate(
            {
                **self.properties,
                "objectId": self.object_id,
                "ownerId": self.object_id,
                "email": self.email,
                "created": self.created,
                "updated": self.updated,
                "lastLogin": self.last_login,
                "userStatus": self.status,
                "roles": list(self.roles),
            }
        )


def token_hash(token: str) -> str:
    """What is stored of a user-token: its SHA-256, hex. Lookups compare hashes only."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class StoredToken:
    token_hash: str
    user_id: str
    created: int
    expires: int

    def active_at(self, now: int) -> bool:
        return now < self.expires


class RateLimiter:
    """At most `limit` attempts per key in any `window_ms`; bounded memory (LRU of keys)."""

    def __init__(self, limit: int, window_ms: int, max_keys: int = 100_000) -> None:
        self._limit = limit
        self._window = window_ms
        self._max_keys = max_keys
        self._attempts: OrderedDict[str, deque[int]] = OrderedDict()

    def hit(self, key: str, now: int) -> int:
        """Record an attempt; return 0 when allowed, else milliseconds until one is."""
        times = self._attempts.pop(key, None) or deque()
        while times and times[0] <= now - self._window:
            times.popleft()
        self._attempts[key] = times
        if len(self._attempts) > self._max_keys:
            self._attempts.popitem(last=False)
        if len(times) >= self._limit:
            return times[0] + self._window - now
        times.append(now)
        return 0


class Backoff:
    """Failed logins per (account, address): after `free` failures, each further attempt
    waits a delay that doubles with every failure (from `base_ms` up to `max_ms`); a
    success clears the pair. Another address is another pair, so the real user is never
    locked out by someone guessing elsewhere. Bounded memory (LRU of pairs)."""

    def __init__(self, free: int, base_ms: int, max_ms: int, max_keys: int = 100_000) -> None:
        self._free = free
        self._base = base_ms
        self._max = max_ms
        self._max_keys = max_keys
        self._failures: OrderedDict[tuple[str, str], tuple[int, int]] = OrderedDict()

    def wait(self, key: tuple[str, str], now: int) -> int:
        """Milliseconds before this pair may try again (0: now)."""
        count, last = self._failures.get(key, (0, 0))
        if count < self._free:
            return 0
        delay: int = min(self._max, self._base * 2 ** (count - self._free))
        return max(0, last + delay - now)

    def failed(self, key: tuple[str, str], now: int) -> None:
        count, _ = self._failures.pop(key, (0, 0))
        self._failures[key] = (count + 1, now)
        if len(self._failures) > self._max_keys:
            self._failures.popitem(last=False)

    def succeeded(self, key: tuple[str, str]) -> None:
        self._failures.pop(key, None)
