"""Dead letters: list, read, replay."""

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from engine.dead_letters import IncompleteDeadLetter, UnknownDeadLetter
from engine.http.params import page_limit
from engine.http.routes import Routes
from schemas.errors import ErrorCode
from schemas.requests import RequestError

logger = logging.getLogger(__name__)


class LetterRoutes(Routes):
    """Dead letters: list, read, replay."""

    async def dead_letters(self, request: Request) -> Response:
        limit = page_limit(request)
        try:
            letters, cursor = await self._letters.list(request.query_params.get("cursor"), limit)
        except ValueError as exc:
            raise RequestError(400, ErrorCode.INVALID_PARAMETER, "invalid cursor") from exc
        return JSONResponse(
            {"deadLetters": [d.model_dump(mode="json") for d in letters], "next": cursor}
        )

    async def dead_letter(self, request: Request) -> Response:
        letter = await self._letters.get(request.path_params["deadLetterId"].lower())
        if letter is None:
            raise RequestError(404, ErrorCode.UNKNOWN_DEAD_LETTER, "no such dead letter")
        return JSONResponse(letter.model_dump(mode="json"))

    async def replay(self, request: Request) -> Response:
        try:
            letter = await self._letters.replay(request.path_params["deadLetterId"].lower())
        except UnknownDeadLetter as exc:
            raise RequestError(404, ErrorCode.UNKNOWN_DEAD_LETTER, "no such dead letter") from exc
        except IncompleteDeadLetter as exc:
            raise RequestError(409, ErrorCode.CONFLICT, str(exc)) from exc
        return JSONResponse(letter.model_dump(mode="json"), status_code=202)
