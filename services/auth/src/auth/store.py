"""The auth service's storage port and its MongoDB adapter.

Emails are unique through a unique index on their lower-case form; registration
properties are stored as JSON text (`schemas.opaque`); a token is stored only as its hash.
"""

from typing import Any, Protocol

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from auth.core import StoredToken, StoredUser, normal_email
from schemas import opaque
from schemas.users import UserStatus


class EmailTaken(Exception):
    """A user with this email (in any letter case) exists already."""


class UserStore(Protocol):
    async def setup(self) -> None: ...

    async def add_user(self, user: StoredUser) -> None:
        """Insert a user; raise EmailTaken when the email is in use."""

    async def user_by_email(self, email: str) -> StoredUser | None: ...

    async def user_by_id(self, object_id: str) -> StoredUser | None: ...

    async def set_roles(self, object_id: str, roles: list[str], now: int) -> StoredUser | None: ...

    async def set_status(
        self, object_id: str, status: UserStatus, now: int
    ) -> StoredUser | None: ...

    async def set_password(self, object_id: str, password_hash: str, now: int) -> None: ...

    async def logged_in(self, object_id: str, now: int) -> StoredUser | None: ...

    async def add_token(self, token: StoredToken) -> None: ...

    async def token(self, token_hash: str) -> StoredToken | None: ...

    async def drop_token(self, token_hash: str) -> StoredToken | None:
        """Delete a token; return it when it existed."""

    async def purge_tokens(self, now: int) -> int:
        """Delete expired tokens; return how many."""

    async def drop_tokens_of(self, user_id: str) -> list[str]:
        """Delete every token of a user; return their hashes."""


def _user_doc(user: StoredUser) -> dict[str, Any]:
    return {
        "_id": user.object_id,
        "email": user.email,
        "emailKey": normal_email(user.email),
        "passwordHash": user.password_hash,
        "created": user.created,
        "updated": user.updated,
        "lastLogin": user.last_login,
        "userStatus": user.status.value,
        "roles": list(user.roles),
        "properties": opaque.encode(user.properties),
    }


def _user(doc: dict[str, Any]) -> StoredUser:
    return StoredUser(
        object_id=doc["_id"],
        email=doc["email"],
        password_hash=doc["passwordHash"],
        created=doc["created"],
        properties=opaque.decode(doc["properties"]),
        roles=tuple(doc["roles"]),
        status=UserStatus(doc["userStatus"]),
        updated=doc["updated"],
        last_login=doc["lastLogin"],
    )


def _token(doc: dict[str, Any]) -> StoredToken:
    return StoredToken(doc["_id"], doc["userId"], doc["created"], doc["expires"])


class MongoUserStore:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._users = db["users"]
        self._tokens = db["tokens"]

    async def setup(self) -> None:
        await self._users.create_index([("emailKey", ASCENDING)], unique=True)
        await self._tokens.create_index([("userId", ASCENDING)])
        await self._tokens.create_index([("expires", ASCENDING)])

    async def add_user(self, user: StoredUser) -> None:
        try:
            await self._users.insert_one(_user_doc(user))
        except DuplicateKeyError as exc:
            raise EmailTaken(user.email) from exc

    async def user_by_email(self, email: str) -> StoredUser | None:
        doc = await self._users.find_one({"emailKey": normal_email(email)})
        return _user(doc) if doc else None

    async def user_by_id(self, object_id: str) -> StoredUser | None:
        doc = await self._users.find_one({"_id": object_id})
        return _user(doc) if doc else None

    async def _update(self, object_id: str, changes: dict[str, Any]) -> StoredUser | None:
        doc = await self._users.find_one_and_update(
            {"_id": object_id}, {"$set": changes}, return_document=ReturnDocument.AFTER
        )
        return _user(doc) if doc else None

    async def set_roles(self, object_id: str, roles: list[str], now: int) -> StoredUser | None:
        return await self._update(object_id, {"roles": roles, "updated": now})

    async def set_status(self, object_id: str, status: UserStatus, now: int) -> StoredUser | None:
        return await self._update(object_id, {"userStatus": status.value, "updated": now})

    async def set_password(self, object_id: str, password_hash: str, now: int) -> None:
        await self._update(object_id, {"passwordHash": password_hash})

    async def logged_in(self, object_id: str, now: int) -> StoredUser | None:
        return await self._update(object_id, {"lastLogin": now})

    async def add_token(self, token: StoredToken) -> None:
        await self._tokens.insert_one(
            {
                "_id": token.token_hash,
                "userId": token.user_id,
                "created": token.created,
                "expires": token.expires,
            }
        )

    async def token(self, token_hash: str) -> StoredToken | None:
        doc = await self._tokens.find_one({"_id": token_hash})
        return _token(doc) if doc else None

    async def drop_token(self, token_hash: str) -> StoredToken | None:
        doc = await self._tokens.find_one_and_delete({"_id": token_hash})
        return _token(doc) if doc else None

    async def purge_tokens(self, now: int) -> int:
        result = await self._tokens.delete_many({"expires": {"$lte": now}})
        return result.deleted_count

    async def drop_tokens_of(self, user_id: str) -> list[str]:
        hashes = [doc["_id"] async for doc in self._tokens.find({"userId": user_id}, {"_id": 1})]
        if hashes:
            await self._tokens.delete_many({"_id": {"$in": hashes}})
        return hashes
