"""Fuzz the running product: no request may get a 5xx.

Requests come from schemathesis, generated from the gateway's and the engine's own
OpenAPI documents (inputs that fit them and inputs that do not, against known and
unknown flows), and from hypothesis, as JSON edge cases (deep nesting, non-finite and
huge numbers, lone surrogates, odd Unicode, large strings) posted to every endpoint that
takes a body. `make test` sends HOOKFLOW_FUZZ_REQUESTS (default 600); `make fuzz` sends
10,000 and writes its tally to HOOKFLOW_FUZZ_REPORT.
"""

import contextlib
import json
import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Verbosity, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from ..conftest import Product

_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
REQUESTS = int(os.environ.get("HOOKFLOW_FUZZ_REQUESTS", "600"))
JSON_SHARE = 0.2  # of the requests: the JSON edge cases

TARGET = {
    "name": "Fuzz target",
    "blocks": [
        {"name": "begin", "type": "start", "next": "paid"},
        {"name": "paid", "type": "external_callback", "condition": "data.id == input.id"},
    ],
}


@dataclass
class Tally:
    statuses: Counter[str] = field(default_factory=Counter)
    server_errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    def add(self, label: str, status: int, request: str, body: str) -> None:
        self.statuses[f"{label} {status}"] += 1
        if status >= 500 and len(self.server_errors) < 20:
            self.server_errors.append({"request": request, "status": status, "body": body[:300]})


def _run(strategy: st.SearchStrategy[Any], count: int, send: Callable[[Any], None]) -> None:
    @settings(
        max_examples=count,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
    )
    @given(strategy)
    def run(example: Any) -> None:
        send(example)

    # Unsatisfiable: nothing invalid can be made of an operation once its path is fixed
    with contextlib.suppress(Unsatisfiable):
        run()


_leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
_values = st.recursive(
    _leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def _nested(depth: int, inner: bytes) -> bytes:
    return b'{"a":' + b"[" * depth + inner + b"]" * depth + b"}"


edge_bodies = st.one_of(
    _values.map(lambda v: json.dumps({"v": v}).encode()),
    st.integers(min_value=1, max_value=400).map(lambda d: _nested(d, b"1")),
    st.integers(min_value=1, max_value=200).map(
        lambda d: b'{"a":' + b'{"b":' * d + b"1" + b"}" * d + b"}"
    ),
    st.sampled_from(
        [
            b'{"n": NaN}',
            b'{"n": -Infinity}',
            b'{"n": 1e400}',
            b'{"n": -1e-400}',
            b'{"n": 123456789012345678901234567890123}',
            b'{"n": 1' + b"0" * 5000 + b"}",
            b'{"s": "\\ud800"}',
            b'{"s": "\\udc00\\ud800"}',
            b'{"\\ud83d": 1}',
            b'{"s": "\\u0000"}',
            b'{"a": 1, "a": 2}',
            b"\xef\xbb\xbf{}",
            b"\xff\xfe{\x00}\x00",
            b'{"s": "' + "é".encode() * 300_000 + b'"}',
            b"[" * 100_000,
            b'{"a": "' + b"x" * (1024 * 1024 - 20) + b'"}',
        ]
    ),
    st.binary(max_size=64),
)
edge_headers = st.fixed_dictionaries(
    {},
    optional={
        "user-token": st.sampled_from(["t" * 70_000, "\u00e9", "x y", ""]) | st.text(max_size=20),
        "Idempotency-Key": st.text(max_size=300),
        "content-type": st.sampled_from(
            ["application/json", "application/json; charset=utf-16", "text/plain", ""]
        ),
    },
)


def _on_the_wire(headers: dict[str, str]) -> dict[str, bytes]:
    """What a client can send: header values as UTF-8 bytes, without control characters."""
    return {k: _CONTROL.sub(b"", v.encode("utf-8")).strip() for k, v in headers.items()}


def test_no_request_gets_a_server_error(product: Product) -> None:
    tally = Tally()
    admin = {"X-Admin-Key": product.admin_key}
    with httpx.Client(timeout=60, headers=admin) as http:
        deployed = http.post(f"{product.engine}/api/automation/flows", json=TARGET).json()
        flow_id, trigger_id = deployed["flowId"], deployed["triggers"][0]["triggerId"]
        execution = http.post(f"{product.gateway}/api/automation/flow/{flow_id}/execute", json={})
        execution_id = execution.json()["executionId"]
        known = {"flowId": flow_id, "triggerId": trigger_id, "executionId": execution_id}

        documents = {
            "gateway": (product.gateway, http.get(f"{product.gateway}/openapi.json").json()),
            "engine": (product.engine, http.get(f"{product.engine}/openapi.json").json()),
        }
        strategies: list[tuple[str, str, st.SearchStrategy[Any]]] = []
        for service, (base, document) in documents.items():
            schema = schemathesis.openapi.from_dict(document)
            for result in schema.get_all_operations():
                operation = result.ok()  # type: ignore[union-attr]
                names = {p.name for p in operation.path_parameters}
                fixed = {name: known[name] for name in names if name in known}
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    label = f"{service} {operation.label} {mode.value}"
                    strategies.append((label, base, operation.as_strategy(generation_mode=mode)))
                    if fixed:  # the same, against the flow, trigger and execution that exist
                        strategies.append(
                            (
                                label + " known",
                                base,
                                operation.as_strategy(generation_mode=mode, path_parameters=fixed),
                            )
                        )

        each = max(1, int(REQUESTS * (1 - JSON_SHARE)) // len(strategies))
        for label, base, strategy in strategies:

            def call(case: Any, label: str = label, base: str = base) -> None:
                response = case.call(base_url=base, timeout=60, headers=admin)
                request = f"{case.method} {case.formatted_path} {case.query}"
                tally.add(label, response.status_code, request, response.text)

            _run(strategy, each, call)

        json_targets = [
            f"{product.gateway}/api/automation/flow/{flow_id}/trigger/{trigger_id}/activate",
            f"{product.gateway}/api/automation/flow/{flow_id}/trigger/{trigger_id}/activate"
            f"?execution={execution_id}",
            f"{product.gateway}/api/automation/flow/{flow_id}/execute",
            f"{product.engine}/api/automation/flows",
            f"{product.engine}/api/automation/flow/{flow_id}/execute",
        ]
        remaining = max(len(json_targets), REQUESTS - tally.total)

        def post(example: tuple[int, bytes, dict[str, str]]) -> None:
            target, body, headers = example
            url = json_targets[target]
            wire = _on_the_wire(headers)  # raw bytes, as a client may send them
            response = http.post(url, content=body, headers=wire)  # type: ignore[arg-type]
            tally.add(
                f"json {url.split('/api/')[1][:40]}", response.status_code, url, response.text
            )

        _run(
            st.tuples(st.integers(0, len(json_targets) - 1), edge_bodies, edge_headers),
            remaining,
            post,
        )

    report = {
        "requests": tally.total,
        "server_errors": len(tally.server_errors),
        "examples": tally.server_errors,
        "statuses": dict(sorted(tally.statuses.items())),
    }
    if path := os.environ.get("HOOKFLOW_FUZZ_REPORT"):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("requests", "server_errors")}))
    assert tally.server_errors == [], json.dumps(tally.server_errors, indent=2)
    assert tally.total >= REQUESTS * 0.9  # the run sent what it was asked to
