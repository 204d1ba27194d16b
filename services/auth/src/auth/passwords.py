"""Argon2id password hashing, off the event loop (a hash costs tens of milliseconds)."""

import asyncio
from collections.abc import Callable
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

T = TypeVar("T")


class Passwords:
    """Each hash takes the hasher's memory (64 MiB by default): at most `at_once` run at a
    time, the others wait their turn instead of exhausting the machine's memory."""

    def __init__(self, hasher: PasswordHasher | None = None, at_once: int = 4) -> None:
        self._hasher = hasher or PasswordHasher()
        self._slots = asyncio.Semaphore(at_once)
        self.running = 0
        self.most_at_once = 0
        # Verified against when the login names no user, so that both cases cost the same.
        self._decoy = self._hasher.hash("decoy password never used by anybody")

    async def _run(self, work: Callable[[], T]) -> T:
        async with self._slots:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            try:
                return await asyncio.to_thread(work)
            finally:
                self.running -= 1

    async def hash(self, password: str) -> str:
        return await self._run(lambda: self._hasher.hash(password))

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Check a password; with no hash (unknown user) spend the same time and say no."""
        try:
            await self._run(lambda: self._hasher.verify(password_hash or self._decoy, password))
        except (VerificationError, InvalidHashError):
            return False
        return password_hash is not None

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)
