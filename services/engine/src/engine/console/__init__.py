"""The web console's static files, served by the engine under /console/ (no build step,
no third-party front-end code: docs/design.md, "The console")."""

from pathlib import Path

from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

FILES = Path(__file__).parent / "static"

# the console loads nothing from anywhere else, and nothing may frame it
_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-cache"),
]


class _Secured:
    """Adds the console's security headers to every response of `app`."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_HEADERS]
            await send(message)

        await self._app(scope, receive, send_secured)


async def _to_console(request: object) -> Response:
    return RedirectResponse("/console/")


def routes() -> list[Route | Mount]:
    """`/console/` (index.html and its files) and `/console` redirecting to it."""
    return [
        Route("/console", _to_console),
        Mount("/console", app=_Secured(StaticFiles(directory=FILES, html=True)), name="console"),
    ]
