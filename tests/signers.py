"""Webhook signers written from each provider's documentation, independently of
`schemas.webhooks`: the tests sign with these and the product verifies."""

import base64
import hashlib
import hmac


def standard_webhooks(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Standard Webhooks: the secret's base64 part after `whsec_` is the key; the signed
    content is `msg_id.timestamp.body`; the header lists `v1,<base64>`."""
    key = base64.b64decode(secret.split("_", 1)[1])
    content = b".".join([msg_id.encode(), str(timestamp).encode(), body])
    mac = hmac.digest(key, content, "sha256")
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }


def github(secret: str, delivery: str, body: bytes) -> dict[str, str]:
    """GitHub: the hex HMAC-SHA256 of the body with the secret, prefixed `sha256=`."""
    mac = hmac.new(secret.encode("utf-8"), msg=body, digestmod=hashlib.sha256)
    return {"X-Hub-Signature-256": f"sha256={mac.hexdigest()}", "X-GitHub-Delivery": delivery}


def stripe(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Stripe: the signed payload is `timestamp.body`, the key the whole secret string."""
    payload = str(timestamp).encode() + b"." + body
    mac = hmac.new(secret.encode("utf-8"), msg=payload, digestmod=hashlib.sha256)
    return {"Stripe-Signature": f"t={timestamp},v1={mac.hexdigest()}"}
