"""The gateway's ASGI app: Starlette, with callbacks answered before its router."""

import contextlib
import logging
import re
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from gateway.call import Call
from gateway.frontdoor import FrontDoor
from schemas.frontdoor import Service, service_of
from schemas.requests import internal_error_body

if TYPE_CHECKING:
    from gateway.http import Endpoints

logger = logging.getLogger(__name__)

ACTIVATE_PATH = "/api/automation/flow/{flowId}/trigger/{triggerId}/activate"
_ACTIVATE = re.compile(
    r"^/api/automation/flow/(?P<flowId>[^/]+)/trigger/(?P<triggerId>[^/]+)/activate$"
)


class GatewayApp(Starlette):
    """The gateway's ASGI app: Starlette, with callbacks (POST or GET on ACTIVATE_PATH)
    answered before it, and the paths other services answer passed on to them (the
    front door of the one origin, `frontdoor.py`).

    A callback is the hot path: Starlette's middleware, router, request and response
    objects cost more CPU than the rest of a callback's work, so a callback is read
    straight from the ASGI scope (`Call`) and answered with two ASGI messages. Only that
    one route is taken here, with the same path parameters (matched as Starlette's
    `{name}` does); an unexpected error is logged and answered 500 with the contract's
    body, as the app's server-error handler answers the other routes.
    """

    def __init__(
        self, endpoints: "Endpoints", front_door: FrontDoor | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._endpoints = endpoints
        self._front_door = front_door

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("POST", "GET"):
            match = _ACTIVATE.match(scope["path"])
            if match is not None:
                try:
                    await self._endpoints.callback(Call(scope, receive, *match.groups()), send)
                except ClientDisconnect:
                    pass  # the caller left before its body arrived: nobody to answer
                except Exception:
                    logger.error("request failed", exc_info=True, extra={"path": scope["path"]})
                    with contextlib.suppress(Exception):  # unless the answer had begun
                        await JSONResponse(internal_error_body(), status_code=500)(
                            scope, receive, send
                        )
                return
        if scope["type"] == "http" and self._front_door is not None:
            service = service_of(scope["path"])
            if service is not None and service != Service.GATEWAY:
                await self._front_door(service, scope, receive, send)
                return
        await super().__call__(scope, receive, send)


async def head_of_callback(request: Request) -> Response:
    """HEAD on ACTIVATE_PATH (Starlette allows it wherever GET is): a HEAD is a safe
    request and must not activate anything, so 405 like any other method."""
    raise HTTPException(405, headers={"Allow": "GET, POST"})
