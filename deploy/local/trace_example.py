"""`make traces`' last step: one traced callback of the example order flow, read back from
Jaeger's query API and shown as a waterfall (text, and a PNG).

Runs against the product `make up` started (with the OTEL_* variables `traces.sh` sets):
starts an order, pays it as a PaymentGateway user with a caller's `traceparent`, waits
for the trace to reach Jaeger, prints it and writes `<out>/example-trace.png` and
`<out>/example-trace.json`.

    python deploy/local/trace_example.py --gateway URL --jaeger URL --flow FILE --out DIR
(the admin key in HOOKFLOW_ADMIN_KEY)
"""

import argparse
import json
import os
import secrets
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

Span = dict[str, Any]


def spans_of(trace: dict[str, Any]) -> list[tuple[Span, str, int]]:
    """A Jaeger trace's spans in tree order, each with its service and depth."""
    processes = {key: p["serviceName"] for key, p in trace["processes"].items()}
    spans = {s["spanID"]: s for s in trace["spans"]}
    children: dict[str | None, list[Span]] = {}
    for span in trace["spans"]:
        parents = [r["spanID"] for r in span.get("references", []) if r["spanID"] in spans]
        children.setdefault(parents[0] if parents else None, []).append(span)
    ordered: list[tuple[Span, str, int]] = []

    def walk(parent: str | None, depth: int) -> None:
        for span in sorted(children.get(parent, []), key=lambda s: s["startTime"]):
            ordered.append((span, processes[span["processID"]], depth))
            walk(span["spanID"], depth + 1)

    walk(None, 0)
    return ordered


def waterfall(trace: dict[str, Any], width: int = 40) -> list[str]:
    """The trace as text: one line per span, indented under its parent, with a bar placed
    on the trace's time line."""
    ordered = spans_of(trace)
    start = min(s["startTime"] for s, _, _ in ordered)
    end = max(s["startTime"] + s["duration"] for s, _, _ in ordered)
    scale = width / max(1, end - start)
    lines = [f"trace {trace['traceID']}: {len(ordered)} spans, {(end - start) / 1000:.1f} ms"]
    for span, service, depth in ordered:
        left = int((span["startTime"] - start) * scale)
        bar = " " * left + "█" * max(1, int(span["duration"] * scale))
        name = f"{'  ' * depth}{span['operationName']}"
        lines.append(
            f"{service:<16} {name:<28} {span['duration'] / 1000:>8.2f} ms |{bar:<{width}}|"
        )
    return lines


def plot(trace: dict[str, Any], path: Path) -> None:
    """The waterfall as a PNG: one bar per span on the trace's time line, by service."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ordered = spans_of(trace)
    start = min(s["startTime"] for s, _, _ in ordered)
    colors = {"hookflow-gateway": "#1f5fbf", "hookflow-engine": "#1e7a3a"}
    figure, axes = plt.subplots(figsize=(9, 0.32 * len(ordered) + 1.2))
    for row, (span, service, depth) in enumerate(ordered):
        axes.barh(
            row,
            span["duration"] / 1000,
            left=(span["startTime"] - start) / 1000,
            color=colors.get(service, "#8a94a6"),
        )
        axes.text(
            (span["startTime"] - start) / 1000,
            row,
            f" {'  ' * depth}{span['operationName']}",
            va="center",
            fontsize=8,
        )
    axes.set_yticks(range(len(ordered)), [service for _, service, _ in ordered], fontsize=8)
    axes.invert_yaxis()
    axes.set_xlabel("milliseconds since the callback arrived")
    axes.set_title("One callback of the example: gateway, Kafka, engine")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def fetch_trace(jaeger: str, trace_id: str, wanted: set[str], seconds: float) -> dict[str, Any]:
    """The trace once Jaeger has every span named in `wanted` (exports are batched)."""
    deadline = time.monotonic() + seconds
    last: Any = None
    while time.monotonic() < deadline:
        response = httpx.get(f"{jaeger}/api/traces/{trace_id}", timeout=5)
        if response.status_code == 200:
            (last,) = response.json()["data"]
            if wanted <= {s["operationName"] for s in last["spans"]}:
                return dict(last)
        time.sleep(0.3)
    raise SystemExit(f"the trace {trace_id} did not reach Jaeger in time: {last}")


def pay_an_order(gateway: str, flow: dict[str, Any], admin_key: str, trace_id: str) -> str:
    """Start an order of the example flow and pay it with the caller's `traceparent`."""
    admin = {"X-Admin-Key": admin_key}
    with httpx.Client(base_url=gateway, timeout=30) as http:
        order = {
            "order": {"id": f"o-{uuid.uuid4().hex[:6]}", "total": 25, "customer": "ann@example.com"}
        }
        started = http.post(
            f"/api/automation/flow/{flow['flowId']}/execute?wait=10", json=order, headers=admin
        )
        started.raise_for_status()
        execution = started.json()["executionId"]
        email = f"pay-{uuid.uuid4().hex[:8]}@example.com"
        password = secrets.token_urlsafe(16)
        user = http.post("/api/users/register", json={"email": email, "password": password})
        user.raise_for_status()
        http.put(
            f"/api/users/{user.json()['objectId']}/roles",
            json={"roles": ["PaymentGateway"]},
            headers=admin,
        ).raise_for_status()
        token = http.post("/api/users/login", json={"login": email, "password": password})
        token.raise_for_status()
        for _ in range(100):  # paid once it waits at the callback
            state = http.get(f"/api/automation/executions/{execution}", headers=admin).json()
            if state["status"] == "waiting":
                break
            time.sleep(0.1)
        paid = http.post(
            f"{flow['triggers'][0]['callbackUrl']}?execution={execution}",
            json={"orderId": order["order"]["id"], "amount": 25},
            headers={
                "user-token": token.json()["user-token"],
                "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01",
            },
        )
        paid.raise_for_status()
        return str(paid.headers["x-activation-id"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--jaeger", required=True, help="Jaeger's query address")
    parser.add_argument("--flow", required=True, type=Path, help="the deployed example flow")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    flow = json.loads(args.flow.read_text())
    trace_id = secrets.token_hex(16)
    activation = pay_an_order(args.gateway, flow, os.environ["HOOKFLOW_ADMIN_KEY"], trace_id)
    wanted = {"accept", "publish", "decide", "http_request"}
    trace = fetch_trace(args.jaeger, trace_id, wanted, 30)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "example-trace.json").write_text(json.dumps(trace, indent=2))
    plot(trace, args.out / "example-trace.png")
    print(f"activation {activation}")
    print("\n".join(waterfall(trace)))
    print(f"\nJaeger: {args.jaeger}/api/traces/{trace_id}")
    print(f"drawn: {args.out / 'example-trace.png'}")


if __name__ == "__main__":
    sys.exit(main())
