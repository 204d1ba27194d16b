"""Signing secrets at rest and on the flow registry: sealed with AES-256-GCM.

A trigger's signing secret must verify signatures at every gateway, so it is kept
encrypted, never hashed: in the engine's store and on the (compacted) flow-registry
topic. The key is derived from the activation key the engine and the gateways share
(HMAC-SHA256 with a fixed label), and each sealed secret is bound to its trigger id (as
associated data), so a sealed value copied onto another trigger does not open.
Changing the activation key makes earlier secrets unreadable: rotate them after it.
"""

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, ConfigDict


class SealedSecret(BaseModel):
    """A trigger's signing secret, sealed; valid until `validUntil` (epoch ms), or for
    good when it is the current one. Travels in `TriggerRegistered`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sealed: str
    validUntil: int | None = None


_LABEL = b"hookflow signing secrets v1"
_NONCE = 12


def sealing_key(activation_key: str) -> bytes:
    """The 32-byte sealing key derived from the shared activation key."""
    return hmac.new(activation_key.encode(), _LABEL, hashlib.sha256).digest()


def seal(key: bytes, secret: str, trigger_id: str) -> str:
    """`secret` encrypted for `trigger_id`, as base64url text."""
    nonce = os.urandom(_NONCE)
    sealed = AESGCM(key).encrypt(nonce, secret.encode(), trigger_id.lower().encode())
    return base64.urlsafe_b64encode(nonce + sealed).decode()


def unseal(key: bytes, sealed: str, trigger_id: str) -> str:
    """The secret sealed for `trigger_id`; ValueError when it does not open with `key`."""
    try:
        raw = base64.urlsafe_b64decode(sealed.encode())
        opened = AESGCM(key).decrypt(raw[:_NONCE], raw[_NONCE:], trigger_id.lower().encode())
    except (InvalidTag, ValueError) as exc:
        raise ValueError("the sealed secret does not open with this key") from exc
    return opened.decode()
