"""The engine's OpenAPI paths of dead letters: list, read, replay."""

from typing import Any

from engine.openapi.shapes import BAD_PAGE, PAGE, json_body, page, path_param, ref
from schemas.errors import ErrorCode, error_response
from schemas.events import DeadLetter


def letter_paths() -> dict[str, Any]:
    return {
        "/api/automation/dead-letters": {
            "get": {
                "operationId": "listDeadLetters",
                "summary": "Messages the engine gave up on, in the order they were parked",
                "parameters": PAGE,
                "responses": {
                    "200": page("deadLetters", DeadLetter, "A page of dead letters"),
                    "400": BAD_PAGE,
                },
            }
        },
        "/api/automation/dead-letters/{deadLetterId}": {
            "get": {
                "operationId": "getDeadLetter",
                "summary": "One dead letter",
                "parameters": [path_param("deadLetterId", "a dead letter's id")],
                "responses": {
                    "200": json_body(ref(DeadLetter), "The dead letter"),
                    "404": error_response("No such dead letter", ErrorCode.UNKNOWN_DEAD_LETTER),
                },
            }
        },
        "/api/automation/dead-letters/{deadLetterId}/replay": {
            "post": {
                "operationId": "replayDeadLetter",
                "summary": "Publish a dead letter's message again: it is decided as if new",
                "parameters": [path_param("deadLetterId", "a dead letter's id")],
                "responses": {
                    "202": json_body(ref(DeadLetter), "Published again; replayedAt is set"),
                    "404": error_response("No such dead letter", ErrorCode.UNKNOWN_DEAD_LETTER),
                },
            }
        },
    }
