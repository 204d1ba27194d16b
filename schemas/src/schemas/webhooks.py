"""Signed callbacks: the three signature schemes, verified over the raw bytes.

- `standard-webhooks` (the Standard Webhooks specification): headers `webhook-id`,
  `webhook-timestamp` (unix seconds) and `webhook-signature`, a space-separated list of
  `v1,<base64 HMAC-SHA256(key, id + "." + timestamp + "." + body)>`, where the key is
  the base64-decoded part of the secret after `whsec_`. Senders built on Svix send the
  same as `svix-id`, `svix-timestamp` and `svix-signature`: accepted alike.
- `github`: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`. GitHub signs
  neither a time nor its `X-GitHub-Delivery` id, so a captured request could be sent
  again under any delivery id: the message id is the SHA-256 of the signed bytes, and
  the same bytes are the same message.
- `stripe`: `Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." +
  body)>` (more `v1` entries allowed, others ignored). Stripe sends no message id
  header: the gateway takes the event's `id` from the body, and a body without one is
  known by the SHA-256 of the signed bytes.

A message id over 256 characters (the longest idempotency key) is hashed, never cut:
two ids that differ only after their 256th character stay two messages.

Every candidate is compared in constant time. For a GET the signed bytes are the raw
query string, so that the data a GET carries is signed as a body would be.
"""

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping, Sequence

from schemas.flows import SignatureScheme

SECRET_PREFIX = "whsec_"  # noqa: S105  # the format's prefix, not a secret
DEFAULT_TOLERANCE_SECONDS = 300
MAX_SIGNATURE_HEADER = 4096
MAX_MESSAGE_ID = 256  # the longest idempotency key


class SignatureError(Exception):
    """The request is not signed by a current secret of the trigger; says why."""


def new_secret() -> str:
    """A new signing secret: `whsec_` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(
    scheme: SignatureScheme, secret: str, body: bytes, message_id: str, timestamp: int
) -> dict[str, str]:
    """The headers a sender adds to sign `body` (for the CLI and the examples)."""
    if scheme == SignatureScheme.GITHUB:
        return {
            "X-Hub-Signature-256": "sha256=" + _hex(secret.encode(), body),
            "X-GitHub-Delivery": message_id,
        }
    if scheme == SignatureScheme.STRIPE:
        signed = _hex(secret.encode(), f"{timestamp}.".encode() + body)
        return {"Stripe-Signature": f"t={timestamp},v1={signed}"}
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + _standard(_standard_key(secret), message_id, timestamp, body),
    }


def message_key(message_id: str) -> str:
    """A message id as an idempotency key: itself, or its SHA-256 when it is too long."""
    if len(message_id) <= MAX_MESSAGE_ID:
        return message_id
    return "sha256:" + hashlib.sha256(message_id.encode(errors="replace")).hexdigest()


def _digest(signed: bytes) -> str:
    return "sha256:" + hashlib.sha256(signed).hexdigest()


def verify(
    scheme: SignatureScheme,
    secrets_: Sequence[str],
    headers: Mapping[str, str],
    body: bytes,
    now: int,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> str:
    """Check the request's signature against each current secret; return its message id
    (for stripe, the SHA-256 of the signed bytes: the gateway prefers the body's `id`).
    Raise SignatureError when none verifies it.

    Args:
        headers: the request's headers, looked up by lower-case name.
        now: unix seconds.
    """
    if not secrets_:
        raise SignatureError("the trigger has no signing secret")
    if scheme == SignatureScheme.GITHUB:
        return _verify_github(secrets_, headers, body)
    if scheme == SignatureScheme.STRIPE:
        return _verify_stripe(secrets_, headers, body, now, tolerance)
    return message_key(_verify_standard(secrets_, headers, body, now, tolerance))


def _verify_standard(
    secrets_: Sequence[str], headers: Mapping[str, str], body: bytes, now: int, tolerance: int
) -> str:
    svix = "svix-signature" in headers and "webhook-signature" not in headers
    prefix = "svix" if svix else "webhook"
    message_id = headers.get(f"{prefix}-id")
    timestamp = headers.get(f"{prefix}-timestamp")
    signature = _header(headers, f"{prefix}-signature")
    if not message_id or not timestamp:
        raise SignatureError(
            "webhook-id, webhook-timestamp and webhook-signature are required "
            "(or svix-id, svix-timestamp and svix-signature)"
        )
    sent = _timestamp(timestamp, now, tolerance)
    offered = [
        value
        for version, _, value in (part.partition(",") for part in signature.split())
        if version == "v1"
    ]
    for secret in secrets_:
        key = _standard_key(secret)
        expected = _standard(key, message_id, sent, body)
        if _any_equal(expected, offered):
            return message_id
    raise SignatureError("the signature does not match")


def _verify_github(secrets_: Sequence[str], headers: Mapping[str, str], body: bytes) -> str:
    signature = _header(headers, "x-hub-signature-256")
    algorithm, _, offered = signature.partition("=")
    if algorithm != "sha256":
        raise SignatureError("X-Hub-Signature-256 must be sha256=<hex>")
    if not _any_equal_secret(secrets_, lambda s: _hex(s.encode(), body), [offered]):
        raise SignatureError("the signature does not match")
    return _digest(body)  # X-GitHub-Delivery is not signed


def _verify_stripe(
    secrets_: Sequence[str], headers: Mapping[str, str], body: bytes, now: int, tolerance: int
) -> str:
    fields = [part.partition("=") for part in _header(headers, "stripe-signature").split(",")]
    stamps = [value.strip() for name, _, value in fields if name.strip() == "t"]
    offered = [value.strip() for name, _, value in fields if name.strip() == "v1"]
    if len(stamps) != 1 or not offered:
        raise SignatureError("Stripe-Signature must be t=<timestamp>,v1=<hex>")
    sent = _timestamp(stamps[0], now, tolerance)
    signed = f"{sent}.".encode() + body
    if not _any_equal_secret(secrets_, lambda s: _hex(s.encode(), signed), offered):
        raise SignatureError("the signature does not match")
    return _digest(signed)


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if not value:
        raise SignatureError(f"the {name} header is missing")
    if len(value) > MAX_SIGNATURE_HEADER:
        raise SignatureError(f"the {name} header is too long")
    return value


def _timestamp(text: str, now: int, tolerance: int) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 12:
        raise SignatureError("the signed timestamp is not unix seconds")
    sent = int(text)
    if abs(now - sent) > tolerance:
        raise SignatureError(f"the signed timestamp is more than {tolerance} s from now")
    return sent


def _standard_key(secret: str) -> bytes:
    try:
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError("the secret is not whsec_<base64>") from exc


def _standard(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def _hex(key: bytes, signed: bytes) -> str:
    return hmac.new(key, signed, hashlib.sha256).hexdigest()


def _any_equal(expected: str, offered: Sequence[str]) -> bool:
    """Whether any offered value equals `expected`, each compared in constant time."""
    found = False
    for value in offered:
        found |= hmac.compare_digest(expected.encode(), value.encode(errors="replace"))
    return found


def _any_equal_secret(
    secrets_: Sequence[str], expected: Callable[[str], str], offered: Sequence[str]
) -> bool:
    return any(_any_equal(expected(secret), offered) for secret in secrets_)
