"""Load shedding: a trigger's rate limit shared by gateway processes through their
reports, and the lag guard's reading of the engine's position."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.guard import LagGuard
from gateway.limits import RateLimited, TriggerQuotas
from schemas.errors import ErrorCode
from schemas.flows import RateLimit

KEY = "flow/trigger"
LIMIT = RateLimit(perSecond=10, burst=5)


def quotas(name: str, limit: RateLimit | None = LIMIT) -> TriggerQuotas:
    return TriggerQuotas(name, lambda key: limit if key == KEY else None)


def test_a_burst_then_the_rate_and_the_wait_until_the_next_token() -> None:
    gateway = quotas("a")
    assert [gateway.take(KEY, LIMIT, 0.0) for _ in range(5)] == [0.0] * 5
    assert gateway.take(KEY, LIMIT, 0.0) == pytest.approx(0.1)
    assert gateway.take(KEY, LIMIT, 0.05) == pytest.approx(0.05)
    assert gateway.take(KEY, LIMIT, 0.1) == 0.0  # one token a tenth of a second
    assert gateway.take(KEY, LIMIT, 0.1) > 0
    assert gateway.report() == {KEY: 6}
    assert gateway.report() == {}  # reported once


def test_the_burst_defaults_to_the_rate_rounded_up() -> None:
    assert RateLimit(perSecond=2.5).capacity == 3
    assert RateLimit(perSecond=0.2).capacity == 1


def test_what_another_gateway_admitted_is_taken_from_this_ones_bucket() -> None:
    a, b = quotas("a"), quotas("b")
    assert [a.take(KEY, LIMIT, 0.0) for _ in range(3)] == [0.0] * 3
    b.spent_elsewhere(a.report(), 0.0)
    admitted = [b.take(KEY, LIMIT, 0.0) == 0 for _ in range(5)]
    assert admitted == [True, True, False, False, False]  # 3 + 2 = the burst of 5


def test_a_debt_is_repaid_but_never_more_than_a_burst() -> None:
    gateway = quotas("b")
    gateway.spent_elsewhere({KEY: 1000}, 0.0)
    # a burst in debt: one token needs (5 + 1) / 10 s
    assert gateway.take(KEY, LIMIT, 0.0) == pytest.approx(0.6)
    assert gateway.take(KEY, LIMIT, 0.6) == 0.0


def test_reports_of_unknown_or_unlimited_triggers_are_ignored() -> None:
    gateway = quotas("b", limit=None)
    gateway.spent_elsewhere({KEY: 50, "other/trigger": 3}, 0.0)
    assert gateway.take(KEY, LIMIT, 0.0) == 0.0  # a full bucket still


def test_a_changed_limit_starts_a_new_bucket() -> None:
    gateway = quotas("a")
    for _ in range(5):
        gateway.take(KEY, LIMIT, 0.0)
    assert gateway.take(KEY, LIMIT, 0.0) > 0
    assert gateway.take(KEY, RateLimit(perSecond=1, burst=2), 0.0) == 0.0


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=2, max_value=4),
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=3), st.floats(min_value=0, max_value=0.05)),
        min_size=1,
        max_size=300,
    ),
)
def test_gateways_reporting_every_interval_admit_the_limit_plus_one_interval_each(
    count: int, calls: list[tuple[int, float]]
) -> None:
    """Any number of gateways, calls spread over them at random, reports exchanged every
    interval: over any run, the admitted calls stay within burst + rate x time, plus
    what the others may admit within one interval before hearing of it."""
    interval, limit = 0.05, RateLimit(perSecond=20, burst=4)
    gateways = [TriggerQuotas(str(n), lambda key: limit) for n in range(count)]
    now, next_report, admitted = 0.0, interval, 0
    for target, gap in calls:
        now += gap
        while now >= next_report:
            reports = [(g.instance, g.report()) for g in gateways]
            for g in gateways:
                for sender, spent in reports:
                    if sender != g.instance:
                        g.spent_elsewhere(spent, next_report)
            next_report += interval
        admitted += gateways[target % count].take(KEY, limit, now) == 0
    per_interval = limit.capacity + limit.perSecond * interval
    assert admitted <= limit.capacity + limit.perSecond * now + (count - 1) * per_interval


def test_the_lag_is_the_age_of_the_oldest_record_the_engine_has_not_committed() -> None:
    guard = LagGuard(max_seconds=5)
    guard.observe(0.0, {0: 10, 1: 4}, {0: 10, 1: 4})
    guard.observe(1.0, {0: 20, 1: 4}, {0: 10, 1: 4})  # records 10..19 seen at 1 s
    guard.observe(2.0, {0: 30, 1: 9}, {0: 12, 1: 4})  # 20..29 at 2 s, 4..8 at 2 s
    assert guard.lag_seconds == pytest.approx(1.0)  # record 12 arrived by 1 s
    guard.observe(7.5, {0: 30, 1: 9}, {0: 25, 1: 9})
    assert guard.lag_seconds == pytest.approx(5.5)
    with pytest.raises(RateLimited) as shed:
        guard.check()
    assert (shed.value.status, shed.value.code, shed.value.retry_after) == (
        429,
        ErrorCode.OVERLOADED,
        1,
    )
    guard.observe(8.0, {0: 31, 1: 9}, {0: 30, 1: 9})  # caught up but one
    assert guard.lag_seconds == 0.0
    guard.check()


def test_the_retry_after_is_the_lag_beyond_the_limit() -> None:
    guard = LagGuard(max_seconds=10)
    guard.observe(0.0, {0: 5}, {0: 0})
    guard.observe(40.0, {0: 5}, {0: 0})
    with pytest.raises(RateLimited) as shed:
        guard.check()
    assert shed.value.retry_after == 30


def test_an_engine_that_never_committed_is_not_judged() -> None:
    guard = LagGuard(max_seconds=1)
    guard.observe(0.0, {0: 5}, {})
    guard.observe(100.0, {0: 50}, {})
    assert (guard.known, guard.lag_seconds) == (False, 0.0)
    guard.check()
