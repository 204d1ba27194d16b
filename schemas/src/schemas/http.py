"""The contract's error body for what Starlette itself answers: routing errors and crashes.

Every service installs `exception_handlers(logger)` so that an unknown path, a wrong
method or an unexpected failure is answered like every other error. Needs Starlette,
which every HTTP service has (extra `hookflow-schemas[http]`).
"""

import logging
from collections.abc import Awaitable, Callable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from schemas.requests import internal_error_body, routing_error

Handler = Callable[[Request, Exception], Awaitable[Response]]


def exception_handlers(logger: logging.Logger) -> dict[type[Exception], Handler]:
    """Handlers for Starlette's `exception_handlers`, logging crashes to `logger`."""

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return JSONResponse(
            routing_error(exc.status_code, exc.detail),
            status_code=exc.status_code,
            headers=exc.headers,
        )

    async def internal_error(request: Request, exc: Exception) -> Response:
        logger.error("request failed", exc_info=exc, extra={"path": request.url.path})
        return JSONResponse(internal_error_body(), status_code=500)

    return {HTTPException: http_error, Exception: internal_error}
