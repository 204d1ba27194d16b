"""The gateway's signature on what it checked, so that the engine can trust it.

An `ActivateTrigger` on Kafka may come from anyone who can publish there; a `user`
object in it is trusted only when it carries the signature of a process that holds the
activation key (the gateway), over this activation's id and that exact user. Anything
else gets its `user` ignored, and only its `userToken` is resolved. Likewise an
activation of a SIGNATURE trigger counts only with the gateway's proof that it verified
the caller's webhook signature.
"""

import base64
import hmac
import json
from typing import Any


def user_text(user: dict[str, Any]) -> str:
    """The canonical text of a user object that its signatures are made over: a caller
    that signs one user for many activations computes it once (`sign_user_text`)."""
    return json.dumps(user, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sign_user_text(key: str, activation_id: str, text: str) -> str:
    """The signature of a user, given as its `user_text`, for this activation."""
    digest = hmac.digest(key.encode(), f"{activation_id}\n{text}".encode(), "sha256")
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def sign_user(key: str, activation_id: str, user: dict[str, Any]) -> str:
    """The signature of `user` for this activation (HMAC-SHA256, base64url)."""
    return sign_user_text(key, activation_id, user_text(user))


def start_nonce(execution_id: str) -> str:
    """What a start's user is signed for: its execution id, apart from any activation id."""
    return f"start:{execution_id}"


def user_is_signed(
    key: str | None, activation_id: str, user: dict[str, Any], signature: str | None
) -> bool:
    """Whether `signature` is the key's signature of `user`, compared in constant time."""
    if not key or not signature:
        return False
    return hmac.compare_digest(sign_user(key, activation_id, user), signature)


def _verified(activation_id: str) -> bytes:
    return f"{activation_id}\nwebhook signature verified".encode()


def sign_verification(key: str, activation_id: str) -> str:
    """The proof that the gateway verified this activation's webhook signature."""
    digest = hmac.digest(key.encode(), _verified(activation_id), "sha256")
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def verification_is_signed(key: str | None, activation_id: str, proof: str | None) -> bool:
    """Whether `proof` is the key's proof for this activation, compared in constant time."""
    if not key or not proof:
        return False
    return hmac.compare_digest(sign_verification(key, activation_id), proof)
