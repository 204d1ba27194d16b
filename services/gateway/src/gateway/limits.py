"""Rate limits: a token bucket per client address (this process alone), and a trigger's
`rateLimit` counted across every gateway.

A trigger's bucket is shared through the `quota-usage` topic: each gateway process takes
from its own copy of the bucket at once, reports what it took every `report_seconds`,
and takes from its copy what the other processes report. The gateways together admit
`perSecond` on average; between two reports each other process may have admitted at
most what its copy held, so a burst split across N gateways can overshoot `burst` by
what N - 1 of them admitted within one report interval (plus Kafka's delivery time),
and the overshoot is repaid before more is admitted.
"""

import math
from collections import OrderedDict
from collections.abc import Callable

from schemas.errors import ErrorCode
from schemas.flows import RateLimit
from schemas.requests import RequestError


class RateLimited(RequestError):
    """429: a limit is spent; the caller may retry after `retry_after` seconds."""

    def __init__(self, wait_seconds: float, code: ErrorCode, message: str) -> None:
        super().__init__(429, code, message)
        self.retry_after = max(1, math.ceil(wait_seconds))


class TokenBuckets:
    def __init__(self, rate: float, burst: int, max_keys: int = 100_000) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str, now: float) -> float:
        """Take one token; return 0 when allowed, else the seconds until one is available."""
        tokens, last = self._buckets.pop(key, (self._burst, now))
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self._rate
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        return wait


class _Bucket:
    __slots__ = ("last", "limit", "tokens")

    def __init__(self, limit: RateLimit, now: float) -> None:
        self.limit = limit
        self.tokens = float(limit.capacity)
        self.last = now

    def refill(self, now: float) -> None:
        if now > self.last:
            self.tokens = min(
                float(self.limit.capacity), self.tokens + (now - self.last) * self.limit.perSecond
            )
            self.last = now


class TriggerQuotas:
    """Every rate-limited trigger's shared bucket, as this process knows it."""

    def __init__(
        self, instance: str, limit_of: Callable[[str], RateLimit | None], max_keys: int = 100_000
    ) -> None:
        self.instance = instance  # this process's name in the reports
        self._limit_of = limit_of  # a trigger's current limit, by `flowId/triggerId`
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._taken: dict[str, int] = {}  # admitted here since the last report

    def take(self, key: str, limit: RateLimit, now: float) -> float:
        """Admit one callback of the trigger `key` (`flowId/triggerId`): 0, or the
        seconds until the shared bucket holds a token again."""
        bucket = self._bucket(key, limit, now)
        bucket.refill(now)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            self._taken[key] = self._taken.get(key, 0) + 1
            return 0.0
        return (1 - bucket.tokens) / limit.perSecond

    def spent_elsewhere(self, spent: dict[str, int], now: float) -> None:
        """Take what another process reports it admitted; a trigger this process has not
        seen a call of yet starts from a full bucket, as the other process's did."""
        for key, count in spent.items():
            limit = self._limit_of(key)
            if limit is None:  # unknown here, or no longer limited
                continue
            bucket = self._bucket(key, limit, now)
            bucket.refill(now)
            # a debt is repaid before more is admitted, but never more than a burst of
            # it: one report cannot lock a trigger out for long
            bucket.tokens = max(bucket.tokens - count, -float(limit.capacity))

    def report(self) -> dict[str, int]:
        """What this process admitted since the last report (then forgotten)."""
        taken, self._taken = self._taken, {}
        return taken

    def _bucket(self, key: str, limit: RateLimit, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None or bucket.limit != limit:
            bucket = _Bucket(limit, now)
            self._buckets[key] = bucket
            if len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        return bucket
