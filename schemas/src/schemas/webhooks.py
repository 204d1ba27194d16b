"""Signed callbacks: the three signature schemes, verified over the raw bytes.

- `standard-webhooks` (the Standard Webhooks specification): headers `webhook-id`,
  `webhook-timestamp` (unix seconds) and `webhook-signature`, a space-separated list of
  `v1,<base64 HMAC-SHA256(key, id + "." + timestamp + "." + body)>`, where the key is
  the base64-decoded part of the secret after `whsec_`.
- `github`: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`; the
  message id is `X-GitHub-Delivery`. GitHub signs no timestamp.
- `stripe`: `Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." +
  body)>` (more `v1` entries allowed, others ignored). Stripe sends no message id
  header; the gateway takes the event's `id` from the body.

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


def verify(
    scheme: SignatureScheme,
    secrets_: Sequence[str],
    headers: Mapping[str, str],
    body: bytes,
    now: int,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> str | None:
    """Check the request's signature against each current secret; return its message id
    (None when the scheme sends none). Raise SignatureError when none verifies it.

    Args:
        headers: the request's headers, looked up by lower-case name.
        now: unix seconds.
    """
    if not secrets_:
        raise SignatureError("the trigger has no signing secret")
    if scheme == SignatureScheme.GITHUB:
        return _verify_github(secrets_, headers, body)
    if scheme == SignatureScheme.STRIPE:
        _verify_stripe(secrets_, headers, body, now, tolerance)
        return None
    return _verify_standard(secrets_, headers, body, now, tolerance)


def _verify_standard(
    secrets_: Sequence[str], headers: Mapping[str, str], body: bytes, now: int, tolerance: int
) -> str:
    message_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signature = _header(headers, "webhook-signature")
    if not message_id or not timestamp:
        raise SignatureError("webhook-id, webhook-timestamp and webhook-signature are required")
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


def _verify_github(secrets_: Sequence[str], headers: Mapping[str, str], body: bytes) -> str | None:
    signature = _header(headers, "x-hub-signature-256")
    algorithm, _, offered = signature.partition("=")
    if algorithm != "sha256":
        raise SignatureError("X-Hub-Signature-256 must be sha256=<hex>")
    if not _any_equal_secret(secrets_, lambda s: _hex(s.encode(), body), [offered]):
        raise SignatureError("the signature does not match")
    return headers.get("x-github-delivery") or None


def _verify_stripe(
    secrets_: Sequence[str], headers: Mapping[str, str], body: bytes, now: int, tolerance: int
) -> None:
    fields = [part.partition("=") for part in _header(headers, "stripe-signature").split(",")]
    stamps = [value.strip() for name, _, value in fields if name.strip() == "t"]
    offered = [value.strip() for name, _, value in fields if name.strip() == "v1"]
    if len(stamps) != 1 or not offered:
        raise SignatureError("Stripe-Signature must be t=<timestamp>,v1=<hex>")
    sent = _timestamp(stamps[0], now, tolerance)
    signed = f"{sent}.".encode() + body
    if not _any_equal_secret(secrets_, lambda s: _hex(s.encode(), signed), offered):
        raise SignatureError("the signature does not match")


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
