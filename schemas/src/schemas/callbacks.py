"""The rules of a callback that the gateway and the engine both apply, written once.

Who may activate a trigger (its authentication type and required roles), and which
waiting executions an activation names (the `execution` parameter).
"""

import re
from dataclasses import dataclass
from enum import StrEnum

from schemas.flows import AuthenticationType
from schemas.users import User, UserStatus

AUTH_MESSAGE = "Unable to execute the callback. User is missing required security role(s)"

# an execution id is a UUID in its usual text form (any case; kept in lower case)
EXECUTION_ID_PATTERN = "^[0-9a-fA-F]{8}-" + "[0-9a-fA-F]{4}-" * 3 + "[0-9a-fA-F]{12}$"
_EXECUTION_ID = re.compile(EXECUTION_ID_PATTERN)


class AuthCheck(StrEnum):
    """The result of a trigger's user check; each failure has its HTTP status."""

    PASSED = "passed"
    NO_USER = "no_user"  # 401: no token, an unknown or expired one, or a disabled user
    MISSING_ROLES = "missing_roles"  # 403

    @property
    def status(self) -> int:
        return {AuthCheck.NO_USER: 401, AuthCheck.MISSING_ROLES: 403}.get(self, 200)


def check_user(
    authentication: AuthenticationType, required_roles: list[str], user: User | None
) -> AuthCheck:
    """Whether `user` may activate a trigger with this authentication type and these roles."""
    if authentication != AuthenticationType.USER:
        return AuthCheck.PASSED  # NONE, or SIGNATURE: the signature is checked, not a user
    if user is None or user.userStatus != UserStatus.ENABLED:
        return AuthCheck.NO_USER
    if not user.has_roles(required_roles):
        return AuthCheck.MISSING_ROLES
    return AuthCheck.PASSED


def auth_refusal(kind: AuthenticationType, roles: list[str], user: User | None) -> str:
    """Which rule of the trigger a caller's user failed, for the activation log."""
    wanted = f" with the roles {', '.join(roles)}" if roles else ""
    if user is None:
        return (
            f"the trigger requires a {kind.value} caller{wanted}; the activation has no "
            "valid user (none, an inactive token, or one the gateway did not sign)"
        )
    missing = sorted(set(roles) - set(user.roles))
    if not missing:
        return f"user {user.objectId} does not pass the trigger's {kind.value} rule"
    return f"user {user.objectId} lacks the role(s) {', '.join(missing)} the trigger requires"


class SelectorKind(StrEnum):
    ALL = "all"
    ANY = "any"
    ID = "id"


@dataclass(frozen=True)
class Selector:
    """Which waiting executions an activation may resume."""

    kind: SelectorKind
    execution_id: str | None = None

    @classmethod
    def parse(cls, value: str | None) -> "Selector":
        """Parse `execution`: all (default), any, or an execution id (a UUID); or ValueError."""
        text = (value or "all").strip().lower()
        if text in ("all", ""):
            return cls(SelectorKind.ALL)
        if text == "any":
            return cls(SelectorKind.ANY)
        if not _EXECUTION_ID.match(text):
            raise ValueError("execution must be all, any or an execution id (a UUID)")
        return cls(SelectorKind.ID, text)

    def __str__(self) -> str:
        return self.execution_id or self.kind.value
