"""The monitoring files (deploy/monitoring): the alert rules load as Prometheus loads
them (`deploy/tools.sh rulecheck`, Prometheus's own rule and PromQL parsers built from
the Go module proxy), and every metric the rules and the dashboard name is one the
services export."""

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from engine.metrics import Metrics as EngineMetrics
from gateway.metrics import Metrics as GatewayMetrics

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy/monitoring/alerts.yaml"
DASHBOARD = ROOT / "deploy/monitoring/grafana-dashboard.json"
_NAME = re.compile(r"\bhookflow_[a-z_]+")
_SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def _rulecheck() -> str:
    done = subprocess.run(  # noqa: S603  # the project's own script
        [str(ROOT / "deploy/tools.sh"), "rulecheck"], capture_output=True, text=True, timeout=900
    )
    if done.returncode != 0:
        pytest.fail(f"deploy/tools.sh rulecheck failed (needs go):\n{done.stderr}")
    return done.stdout.strip()


def _exported() -> set[str]:
    """Every metric family the engine and the gateway export (the lag guard's on)."""
    gateway = GatewayMetrics()
    gateway.engine_lag = lambda: 0.0
    text = EngineMetrics().render().decode() + gateway.render().decode()
    return {family.name for family in text_string_to_metric_families(text)}


def _family(name: str) -> str:
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _expressions() -> list[str]:
    rules = yaml.safe_load(RULES.read_text())
    dashboard = json.loads(DASHBOARD.read_text())
    return [r["expr"] for g in rules["groups"] for r in g["rules"]] + [
        t["expr"] for p in dashboard["panels"] for t in p["targets"]
    ]


def test_the_alert_rules_load_as_prometheus_loads_them() -> None:
    done = subprocess.run(  # noqa: S603  # built by deploy/tools.sh
        [_rulecheck(), str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("1 groups, 10 rules")


def test_a_broken_rule_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "groups:\n- name: x\n  rules:\n  - alert: Broken\n    expr: rate(hookflow_x[5m]\n"
    )
    done = subprocess.run(  # noqa: S603  # built by deploy/tools.sh
        [_rulecheck(), str(broken)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert "unclosed left parenthesis" in done.stderr


def test_every_metric_named_is_one_the_services_export() -> None:
    named = {_family(name) for expr in _expressions() for name in _NAME.findall(expr)}
    assert len(named) >= 10
    assert named <= _exported(), sorted(named - _exported())


def test_the_dashboard_panels_each_have_a_place_and_a_query() -> None:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    places = {(p["gridPos"]["x"], p["gridPos"]["y"]) for p in panels}
    assert len(places) == len(panels)  # none on top of another
    assert all(p["targets"] and p["datasource"]["uid"] == "${datasource}" for p in panels)
