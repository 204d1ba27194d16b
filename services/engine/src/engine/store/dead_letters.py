"""Dead letters (`dead_letters`)."""

import contextlib

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from engine.store.documents import keyset_page, letter_from_doc
from engine.store.schema import Collections
from schemas.events import DeadLetter


class DeadLetters(Collections):
    """Dead letters (`dead_letters`)."""

    async def save_dead_letter(self, letter: DeadLetter) -> None:
        body = letter.model_dump(mode="json", exclude={"deadLetterId"})
        with contextlib.suppress(DuplicateKeyError):
            await self._letters.insert_one({"_id": letter.deadLetterId, **body})

    async def get_dead_letter(self, letter_id: str) -> DeadLetter | None:
        doc = await self._letters.find_one({"_id": letter_id})
        return None if doc is None else letter_from_doc(doc)

    async def dead_letter_of(self, activation_id: str) -> DeadLetter | None:
        found = self._letters.find({"activationId": activation_id}).sort("at", -1).limit(1)
        async for doc in found:
            return letter_from_doc(doc)
        return None

    async def list_dead_letters(
        self, cursor: str | None, limit: int
    ) -> tuple[list[DeadLetter], str | None]:
        docs, cursor = await keyset_page(self._letters, {}, "at", cursor, limit)
        return [letter_from_doc(doc) for doc in docs], cursor

    async def mark_replayed(self, letter_id: str, at: int) -> DeadLetter | None:
        doc = await self._letters.find_one_and_update(
            {"_id": letter_id},
            {"$set": {"replayedAt": at}},
            return_document=ReturnDocument.AFTER,
        )
        return None if doc is None else letter_from_doc(doc)
