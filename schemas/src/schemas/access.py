"""Who may call the management API, written once for the engine and the gateway.

The engine's `/api/automation/...` routes and the gateway's `/execute` take the admin key
(`X-Admin-Key`) or a `user-token` whose user is enabled and has role `FlowAdmin`
(everything) or `FlowViewer` (reading only: GET and HEAD).
"""

import hmac
from enum import StrEnum

from schemas.callbacks import AUTH_MESSAGE, AuthCheck, check_user
from schemas.errors import ErrorCode
from schemas.flows import AuthenticationType, StartAuthentication
from schemas.requests import RequestError
from schemas.users import User, UserStatus

ADMIN_ROLE = "FlowAdmin"
VIEWER_ROLE = "FlowViewer"
ADMIN_KEY_HEADER = "x-admin-key"
# the internal credential the engine and the gateways send to auth's /internal/... routes
INTERNAL_KEY_HEADER = "x-internal-key"
_READING = frozenset({"GET", "HEAD"})


class Access(StrEnum):
    """The result of the check; each refusal has its HTTP status."""

    GRANTED = "granted"
    NO_CREDENTIAL = "no_credential"  # 401: no key or token, a wrong key, an inactive token
    FORBIDDEN = "forbidden"  # 403: a user without the role this method needs

    @property
    def status(self) -> int:
        return {Access.NO_CREDENTIAL: 401, Access.FORBIDDEN: 403}.get(self, 200)

    @property
    def message(self) -> str:
        if self == Access.NO_CREDENTIAL:
            return (
                f"send the admin key as X-Admin-Key, or a user-token of a user with role "
                f"{ADMIN_ROLE} (or {VIEWER_ROLE} to read)"
            )
        return f"this needs role {ADMIN_ROLE} ({VIEWER_ROLE} may only read)"


def same_key(given: str, expected: str | None) -> bool:
    """Whether `given` is the admin key, compared in constant time; no key matches nothing."""
    return bool(expected) and hmac.compare_digest(given.encode(), (expected or "").encode())


def management_access(
    method: str, key: str | None, admin_key: str | None, user: User | None
) -> Access:
    """Whether a management call may proceed.

    Args:
        key: the `X-Admin-Key` sent, if any (a wrong one is refused, token or not).
        admin_key: the configured admin key; None: only user-tokens are accepted.
        user: the user of the `user-token` sent, if it is active.
    """
    if key is not None:
        return Access.GRANTED if same_key(key, admin_key) else Access.NO_CREDENTIAL
    if user is None or user.userStatus != UserStatus.ENABLED:
        return Access.NO_CREDENTIAL
    if ADMIN_ROLE in user.roles:
        return Access.GRANTED
    if VIEWER_ROLE in user.roles and method.upper() in _READING:
        return Access.GRANTED
    return Access.FORBIDDEN


def require_access(method: str, key: str | None, admin_key: str | None, user: User | None) -> None:
    """`management_access`, raising the contract's 401 or 403 (code 1001) when refused."""
    access = management_access(method, key, admin_key, user)
    if access != Access.GRANTED:
        raise RequestError(access.status, ErrorCode.ACCESS_DENIED, access.message)


def auth_unavailable() -> RequestError:
    """A user-token that cannot be checked because the auth service did not answer."""
    return RequestError(
        503, ErrorCode.AUTH_UNAVAILABLE, "the user-token cannot be checked right now; retry later"
    )


def start_refusal(
    authentication: StartAuthentication,
    required_roles: list[str],
    key: str | None,
    admin_key: str | None,
    user: User | None,
) -> tuple[int, str] | None:
    """Why a caller may not start a flow under its start block's rules, as (HTTP status,
    message), or None when it may: `ADMIN` takes the admin key or a FlowAdmin, `USER` an
    enabled user with every required role, `NONE` anyone."""
    if authentication == StartAuthentication.ADMIN:
        access = management_access("POST", key, admin_key, user)
        return None if access == Access.GRANTED else (access.status, access.message)
    check = check_user(AuthenticationType(authentication.value), required_roles, user)
    return None if check == AuthCheck.PASSED else (check.status, AUTH_MESSAGE)
