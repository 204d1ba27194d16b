"""Dead letters."""

from schemas.events import (
    DeadLetter,
)

from .data import Data, keyset_page


class DeadLetters(Data):
    """Dead letters."""

    async def save_dead_letter(self, letter: DeadLetter) -> None:
        self.letters.setdefault(letter.deadLetterId, letter)

    async def get_dead_letter(self, letter_id: str) -> DeadLetter | None:
        return self.letters.get(letter_id)

    async def dead_letter_of(self, activation_id: str) -> DeadLetter | None:
        found = [d for d in self.letters.values() if d.activationId == activation_id]
        return max(found, key=lambda d: d.at) if found else None

    async def list_dead_letters(
        self, cursor: str | None, limit: int
    ) -> tuple[list[DeadLetter], str | None]:
        return keyset_page(
            list(self.letters.values()), lambda d: (d.at, d.deadLetterId), cursor, limit
        )

    async def mark_replayed(self, letter_id: str, at: int) -> DeadLetter | None:
        letter = self.letters.get(letter_id)
        if letter is None:
            return None
        self.letters[letter_id] = letter.model_copy(update={"replayedAt": at})
        return self.letters[letter_id]
