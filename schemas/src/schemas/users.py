"""The user object as the auth service answers it and as it travels on activations."""

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# A longer user-token is invalid without a lookup: no token the auth service issues is
# near this long, and a lookup of one would only cost the services.
MAX_TOKEN_LENGTH = 4096


def plausible_token(token: str | None) -> bool:
    """Whether a user-token is worth looking up (present and at most MAX_TOKEN_LENGTH)."""
    return bool(token) and len(token or "") <= MAX_TOKEN_LENGTH


class UserStatus(StrEnum):
    ENABLED = "ENABLED"
    DISABLED = "DISABLED"


class User(BaseModel):
    """A user: system fields, every property given at registration, and roles.

    Timestamps are epoch milliseconds. Registration properties are kept as extra fields.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    objectId: str
    ownerId: str
    email: str
    created: int
    updated: int | None = None
    lastLogin: int | None = None
    userStatus: UserStatus = UserStatus.ENABLED
    roles: list[str] = Field(default_factory=list)

    def has_roles(self, required: list[str]) -> bool:
        """Return whether the user holds every role in `required`."""
        return set(required).issubset(self.roles)

    def as_context(self) -> dict[str, Any]:
        """Return the plain JSON object that expressions see as `user`."""
        return self.model_dump(mode="json")


class TokenIntrospection(BaseModel):
    """The auth service's answer about a user-token (after RFC 7662)."""

    model_config = ConfigDict(frozen=True)

    active: bool
    user: User | None = None
    exp: int | None = None  # epoch milliseconds at which the token expires
