"""HTTP endpoints of the auth service: decode, call the accounts, answer."""

import hmac
from collections.abc import Awaitable, Callable

from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from auth.accounts import Accounts, RateLimited
from auth.core import check_roles
from auth.openapi import document
from schemas.access import ADMIN_KEY_HEADER, INTERNAL_KEY_HEADER, require_access
from schemas.errors import ErrorCode
from schemas.forwarding import TrustedProxies
from schemas.requests import RequestError, json_object
from schemas.users import UserStatus

Endpoint = Callable[[Request], Awaitable[Response]]


class Endpoints:
    """The auth service's HTTP endpoints: users, tokens, roles and introspection."""

    def __init__(
        self,
        accounts: Accounts,
        admin_key: SecretStr | None,
        body_limit: int,
        proxies: TrustedProxies,
        ready: Callable[[], Awaitable[bool]],
        open_registration: bool = True,
        internal_key: SecretStr | None = None,
    ) -> None:
        self._open_registration = open_registration
        self._internal_key = internal_key
        self._accounts = accounts
        self._admin_key = admin_key
        self._limit = body_limit
        self._proxies = proxies
        self._ready = ready

    def routes(self) -> list[Route]:
        guard = self._guard
        return [
            Route("/api/users/register", guard(self.register), methods=["POST"]),
            Route("/api/users/login", guard(self.login), methods=["POST"]),
            Route("/api/users/logout", guard(self.logout), methods=["GET", "POST"]),
            Route("/api/users/isvalidusertoken/{token}", guard(self.is_valid)),
            Route("/api/users/{objectId}", guard(self.user), methods=["GET"]),
            Route("/api/data/Users/{objectId}", guard(self.user), methods=["GET"]),
            Route("/api/users/{objectId}/roles", guard(self.set_roles), methods=["PUT"]),
            Route("/api/users/{objectId}/status", guard(self.set_status), methods=["PUT"]),
            Route("/internal/tokens/introspect", guard(self.introspect), methods=["POST"]),
            Route("/openapi.json", self.openapi),
            Route("/healthz", self.healthz),
            Route("/readyz", self.readyz),
        ]

    @staticmethod
    def _guard(handler: Endpoint) -> Endpoint:
        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except RateLimited as exc:
                return JSONResponse(
                    exc.body(),
                    status_code=exc.status,
                    headers={"Retry-After": str(exc.retry_after)},
                )
            except RequestError as exc:
                return JSONResponse(exc.body(), status_code=exc.status)

        return guarded

    async def _body(self, request: Request) -> dict[str, object]:
        return await json_object(request.headers.get("content-type"), request.stream(), self._limit)

    def _address(self, request: Request) -> str:
        peer = request.client.host if request.client else None
        return self._proxies.client(peer, request.headers.get("x-forwarded-for"))

    def _require_admin(self, request: Request) -> None:
        given = request.headers.get("x-admin-key", "")
        expected = self._admin_key.get_secret_value() if self._admin_key else ""
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            raise RequestError(403, ErrorCode.ADMIN_KEY_REQUIRED, "a valid X-Admin-Key is required")

    async def register(self, request: Request) -> Response:
        """Register a user; an operator's registration (with the admin key) is exempt from
        the per-address limit, and the only kind when registration is closed."""
        operator = ADMIN_KEY_HEADER in request.headers
        if operator or not self._open_registration:
            self._require_admin(request)
        address = None if operator else self._address(request)
        user = await self._accounts.register(await self._body(request), address)
        return JSONResponse(user.as_context(), status_code=201)

    async def user(self, request: Request) -> Response:
        """A user object: for the user itself (its user-token), the admin key, or a
        FlowAdmin's or FlowViewer's user-token."""
        object_id = request.path_params["objectId"]
        key = request.headers.get(ADMIN_KEY_HEADER)
        token = request.headers.get("user-token")
        caller = (await self._accounts.introspect(token)).user if token and key is None else None
        if caller is None or caller.objectId != object_id:
            admin_key = self._admin_key.get_secret_value() if self._admin_key else None
            require_access("GET", key, admin_key, caller)
        found = await self._accounts.user(object_id)
        return JSONResponse(found.as_context())

    async def login(self, request: Request) -> Response:
        answer = await self._accounts.login(await self._body(request), self._address(request))
        return JSONResponse(answer)

    async def logout(self, request: Request) -> Response:
        await self._accounts.logout(request.headers.get("user-token"))
        return Response(status_code=200)

    async def is_valid(self, request: Request) -> Response:
        answer = await self._accounts.introspect(request.path_params["token"])
        return JSONResponse(answer.active)

    def _require_internal(self, request: Request) -> None:
        """Only the engine and the gateways, which hold the internal credential."""
        given = request.headers.get(INTERNAL_KEY_HEADER, "")
        expected = self._internal_key.get_secret_value() if self._internal_key else ""
        if not given:
            raise RequestError(
                401, ErrorCode.ACCESS_DENIED, "this route is for the product's own services"
            )
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            raise RequestError(
                403, ErrorCode.ACCESS_DENIED, "this route is for the product's own services"
            )

    async def introspect(self, request: Request) -> Response:
        self._require_internal(request)
        token = (await self._body(request)).get("token")
        if not isinstance(token, str):
            raise RequestError(400, ErrorCode.INVALID_REQUEST, "token must be a string")
        answer = await self._accounts.introspect(token)
        return JSONResponse(answer.model_dump(mode="json", exclude_none=True))

    async def set_roles(self, request: Request) -> Response:
        self._require_admin(request)
        roles = check_roles(await self._body(request))
        user = await self._accounts.set_roles(request.path_params["objectId"], roles)
        return JSONResponse(user.as_context())

    async def set_status(self, request: Request) -> Response:
        self._require_admin(request)
        status = (await self._body(request)).get("userStatus")
        if status not in (UserStatus.ENABLED, UserStatus.DISABLED):
            raise RequestError(
                400, ErrorCode.INVALID_REQUEST, "userStatus must be ENABLED or DISABLED"
            )
        user = await self._accounts.set_status(
            request.path_params["objectId"], UserStatus(str(status))
        )
        return JSONResponse(user.as_context())

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(document())

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        if await self._ready():
            return JSONResponse({"status": "ready"})
        error = RequestError(503, ErrorCode.NOT_READY, "not ready")
        return JSONResponse(error.body(), status_code=503)
