"""Verifies the webhook signature of a callback to a SIGNATURE trigger.

The trigger's secrets arrive sealed on the flow registry (`schemas.sealing`); each is
opened once with the key derived from the activation key and kept in memory, so a
verification costs one HMAC per current secret. A gateway without the activation key
cannot open them: every signed callback then fails verification, with that reason.
"""

import logging
from collections.abc import Mapping

from schemas.events import TriggerRegistered
from schemas.flows import SignatureScheme
from schemas.sealing import sealing_key, unseal
from schemas.webhooks import DEFAULT_TOLERANCE_SECONDS, SignatureError, verify

logger = logging.getLogger(__name__)

_MAX_OPENED = 10_000


class Signatures:
    """Opens triggers' sealed secrets (once) and verifies requests against them."""

    def __init__(self, activation_key: str | None) -> None:
        self._key = sealing_key(activation_key) if activation_key else None
        self._opened: dict[tuple[str, str], str] = {}  # (trigger id, sealed) -> secret

    def verify(
        self, trigger: TriggerRegistered, headers: Mapping[str, str], body: bytes, now_ms: int
    ) -> str:
        """The request's message id (`schemas.webhooks.verify`); raise SignatureError
        when no current secret of the trigger signed it."""
        secrets = self._current(trigger, now_ms)
        return verify(
            trigger.signatureScheme or SignatureScheme.STANDARD_WEBHOOKS,
            secrets,
            headers,
            body,
            now_ms // 1000,
            trigger.toleranceSeconds or DEFAULT_TOLERANCE_SECONDS,
        )

    def _current(self, trigger: TriggerRegistered, now_ms: int) -> list[str]:
        if self._key is None:
            raise SignatureError("this gateway has no activation key to read signing secrets")
        current = []
        for sealed in trigger.secrets:
            if sealed.validUntil is not None and sealed.validUntil <= now_ms:
                continue
            slot = (trigger.triggerId, sealed.sealed)
            secret = self._opened.get(slot)
            if secret is None:
                try:
                    secret = unseal(self._key, sealed.sealed, trigger.triggerId)
                except ValueError:
                    logger.warning(
                        "a signing secret does not open with this gateway's activation key",
                        extra={"trigger_id": trigger.triggerId},
                    )
                    continue
                if len(self._opened) >= _MAX_OPENED:
                    self._opened.clear()
                self._opened[slot] = secret
            current.append(secret)
        return current
