"""Bursts and sustained load: decisions per acceptance, the consumer's lag."""

from typing import TYPE_CHECKING

from harness import loadgen
from watchers import LagSampler, OutcomeCounter

if TYPE_CHECKING:
    from suite import Suite


def burst(suite: "Suite") -> None:
    """P8: callbacks nobody waits for, as fast as they come: decided/s over accepted/s."""
    url = suite.callback(suite.nowaiter_flow)
    seconds = 1.0 if suite.smoke else 5.0
    for _ in range(suite.runs):
        counter = OutcomeCounter(
            suite.s.kafka,
            f"{suite.s.prefix}.activation-outcomes",
            suite.nowaiter_flow["flowId"],
        )
        with counter:
            result = loadgen(
                [url], "--mode", "closed", "--concurrency", "64", "--seconds", str(seconds)
            )
            last = counter.wait_for(result["ok"], timeout=900)
        span = last / 1000 - result["started_at"] if last else float("nan")
        if counter.count < result["ok"]:
            suite.notes.append(
                f"burst: {result['ok'] - counter.count} of {result['ok']} accepted "
                "callbacks had no outcome within 900 s"
            )
        figure = suite.fig(
            "burst decisions (peer: the gateway's acceptances)",
            "callbacks/s",
            "at least 50% of the acceptance rate",
            id="P8",
        )
        figure.values.append(counter.count / span if span > 0 else float("nan"))
        figure.peer.append(result["throughput"])


def sustained(suite: "Suite", rate: float) -> None:
    """60 s of callbacks nobody waits for at `rate`: the engine's lag over time."""
    seconds = 3.0 if suite.smoke else 60.0
    url = suite.callback(suite.nowaiter_flow)
    sampler = LagSampler(suite.s.url("engine"), f"{suite.s.prefix}.activations")
    with sampler:
        result = loadgen([url], "--mode", "open", "--rate", str(rate), "--seconds", str(seconds))
        drained_at = sampler.wait_drained(timeout=120)
    ended = result["started_at"] + result["seconds"]
    suite.lag_series = [(t - result["started_at"], lag) for t, lag in sampler.samples]
    peak = max((lag for _, lag in sampler.samples), default=0)
    drain = max(0.0, drained_at - ended) if drained_at else float("nan")
    figure = suite.fig(
        f"consumer lag, peak during {seconds:.0f} s at 50% of the gateway's max "
        "(peer: 2 s of arrivals)",
        "records",
        "bounded: below 2 s of arrivals",
        better="lower",
        id="K1",
    )
    figure.values.append(peak)
    figure.peer.append(2 * rate)
    suite.fig(
        "consumer lag, time to drain after the load",
        "s",
        "below 10 s",
        id="K2",
        better="lower",
    ).values.append(drain)
