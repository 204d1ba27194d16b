"""The deployment files, checked offline: Dockerfiles, both Kubernetes overlays, compose.

`deploy/tools.sh` provides kustomize (built from the Go module proxy), KEDA's CRDs and
the Compose specification's JSON Schema (both from their Go modules); Kubernetes
objects are validated strictly with kubernetes-validate.
"""

import base64
import copy
import functools
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from schemas.frontdoor import Service, ingress_paths, ingress_yaml, service_of

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = "1.33.0"
OVERLAYS = ("dev", "prod")
OURS = frozenset({"gateway", "engine", "auth"})
DOCKERFILES = [
    ROOT / "services/gateway/Dockerfile",
    ROOT / "services/engine/Dockerfile",
    ROOT / "services/auth/Dockerfile",
    ROOT / "examples/Dockerfile",
]


def _tool(name: str) -> str:
    done = subprocess.run(  # noqa: S603  # the project's own script
        [str(ROOT / "deploy/tools.sh"), name], capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        pytest.fail(f"deploy/tools.sh {name} failed (needs go):\n{done.stderr}")
    return done.stdout.strip().splitlines()[-1]


@functools.cache
def rendered(overlay: str) -> list[dict[str, Any]]:
    done = subprocess.run(  # noqa: S603  # kustomize, built by deploy/tools.sh
        [_tool("kustomize"), "build", str(ROOT / "deploy/k8s/overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def _of(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def _pod_specs(docs: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [
        (d, d["spec"]["template"]["spec"])
        for d in docs
        if d["kind"] in ("Deployment", "StatefulSet", "Job")
    ]


def _strict(schema: Any) -> Any:
    """A CRD schema made strict: no field it does not name (unless it says so)."""
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        if (
            schema.get("type") == "object"
            and "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
    elif isinstance(schema, list):
        schema = [_strict(v) for v in schema]
    return schema


@functools.cache
def _crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    for path in Path(_tool("keda-crds")).glob("*.yaml"):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = _strict(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
            found[(f"{group}/{version['name']}", kind)] = schema
    return found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_valid_for_kubernetes_or_its_crd(overlay: str) -> None:
    checked = set()
    for doc in rendered(overlay):
        crd = _crd_schemas().get((doc["apiVersion"], doc["kind"]))
        if crd is not None:
            jsonschema.validate(doc, crd)
        else:
            kubernetes_validate.validate(doc, KUBERNETES, strict=True)
        checked.add(doc["kind"])
    assert {
        "Deployment",
        "Service",
        "Ingress",
        "HorizontalPodAutoscaler",
        "ScaledObject",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "Job",
        "ConfigMap",
    } <= checked


def test_an_unknown_field_fails_the_check() -> None:
    """The checks above can fail: a misspelt field in a ScaledObject or a Deployment."""
    scaled = copy.deepcopy(_of(rendered("prod"), "ScaledObject")[0])
    scaled["spec"]["maxReplicas"] = 3
    schema = _crd_schemas()[("keda.sh/v1alpha1", "ScaledObject")]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(scaled, schema)
    deployment = copy.deepcopy(_of(rendered("prod"), "Deployment")[0])
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_probes_limits_and_a_locked_down_security_context(
    overlay: str,
) -> None:
    problems = []
    for owner, spec in _pod_specs(rendered(overlay)):
        name = f"{owner['kind']}/{owner['metadata']['name']}"
        pod_context = spec.get("securityContext", {})
        if not pod_context.get("runAsNonRoot"):
            problems.append(f"{name}: runAsNonRoot")
        if spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{name}: automountServiceAccountToken")
        for container in spec["containers"]:
            where = f"{name}/{container['name']}"
            if owner["kind"] != "Job":
                problems += [
                    f"{where}: {probe}"
                    for probe in ("livenessProbe", "readinessProbe")
                    if probe not in container
                ]
            resources = container.get("resources", {})
            for kind in ("requests", "limits"):
                for what in ("cpu", "memory"):
                    if what not in resources.get(kind, {}):
                        problems.append(f"{where}: {kind}.{what}")
            context = container.get("securityContext", {})
            if context.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation")
            if context.get("capabilities", {}).get("drop") != ["ALL"]:
                problems.append(f"{where}: capabilities.drop")
            ours = container["image"].split("/")[-1].split(":")[0].removeprefix("hookflow-")
            if ours in OURS and context.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: readOnlyRootFilesystem")
    assert problems == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_use_health_and_readiness_and_pods_spread_over_nodes(overlay: str) -> None:
    for deployment in _of(rendered(overlay), "Deployment"):
        spec = deployment["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        (spread,) = spec["topologySpreadConstraints"]
        assert spread["topologyKey"] == "kubernetes.io/hostname"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_scaling_disruption_and_exposure(overlay: str) -> None:
    docs = rendered(overlay)
    deployments = {d["metadata"]["name"] for d in _of(docs, "Deployment")}
    assert deployments == OURS
    budgets = {
        b["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        for b in _of(docs, "PodDisruptionBudget")
    }
    assert budgets >= OURS
    (hpa,) = _of(docs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "gateway"
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    (scaled,) = _of(docs, "ScaledObject")
    (config,) = [c for c in _of(docs, "ConfigMap") if c["metadata"]["name"] == "hookflow"]
    partitions = int(config["data"]["HOOKFLOW_ENGINE_TOPIC_PARTITIONS"])
    assert scaled["spec"]["scaleTargetRef"]["name"] == "engine"
    assert scaled["spec"]["maxReplicaCount"] == partitions  # more would sit idle
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "kafka"
    assert trigger["metadata"]["bootstrapServers"] == config["data"]["KAFKA_BOOTSTRAP_SERVERS"]
    (ingress,) = _of(docs, "Ingress")
    routed = {
        (path["path"], path["pathType"], path["backend"]["service"]["name"])
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    # the routing table drives it: every public path reaches the service that answers it
    assert routed == {
        (p.path, "Exact" if p.exact else "Prefix", p.service.value) for p in ingress_paths()
    }
    for path, _, _ in routed:
        assert not "/internal/tokens/introspect".startswith(path.rstrip("/") + "/")
        assert path not in ("/", "/metrics", "/healthz", "/readyz")


def test_the_ingress_is_the_one_the_routing_table_makes() -> None:
    committed = (ROOT / "deploy" / "k8s" / "base" / "ingress.yaml").read_text()
    assert committed == ingress_yaml(), "run `make schemas` and commit deploy/k8s/base/ingress.yaml"


def test_every_table_route_reaches_its_service_and_nothing_else_is_public() -> None:
    assert service_of("/api/automation/flow/f/trigger/t/activate") == Service.GATEWAY
    assert service_of("/api/automation/flow/f/execution/e/block/result") == Service.ENGINE
    assert service_of("/api/automation/flow/execution-context/e") == Service.ENGINE
    assert service_of("/api/users/login") == Service.AUTH
    assert service_of("/api/data/Users/u") == Service.AUTH
    for private in ("/internal/tokens/introspect", "/metrics", "/readyz", "/openapi.json"):
        assert service_of(private) is None


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_deny_by_default_and_open_only_what_is_needed(overlay: str) -> None:
    policies = {p["metadata"]["name"]: p["spec"] for p in _of(rendered(overlay), "NetworkPolicy")}
    assert policies["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    auth_from = {
        peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
        if "podSelector" in peer
        else peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for peer in policies["auth"]["ingress"][0]["from"]
    }
    # introspection from the two services; the users API from the ingress controller
    assert auth_from == {"gateway", "engine", "ingress-nginx"}
    engine_from = [peer for peer in policies["engine"]["ingress"][0]["from"]]
    pods = [p["podSelector"]["matchLabels"] for p in engine_from if "podSelector" in p]
    assert pods == [{"app.kubernetes.io/name": "gateway"}]  # the front door passes paths on
    assert len(engine_from) == 3  # and the ingress controller and monitoring namespaces
    data = policies["data"]
    assert {v for e in data["podSelector"]["matchExpressions"] for v in e["values"]} == {
        "kafka",
        "mongodb",
    }


def test_no_real_secret_is_committed() -> None:
    assert _of(rendered("prod"), "Secret") == []  # prod's are created outside git
    dev = [
        base64.b64decode(value).decode()
        for secret in _of(rendered("dev"), "Secret")
        for value in (secret.get("data") or {}).values()
    ]
    assert dev
    assert all("not-secret" in value or value.startswith("mongodb://") for value in dev)


# -- Dockerfiles ------------------------------------------------------------------------


def _instructions(path: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", path.read_text())
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in (raw.strip() for raw in text.splitlines())
        if line and not line.startswith("#")
    ]


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_each_dockerfile_follows_the_rules(path: Path) -> None:
    steps = _instructions(path)
    args = dict(arg.split("=", 1) for kind, arg in steps if kind == "ARG" and "=" in arg)
    froms = [arg for kind, arg in steps if kind == "FROM"]
    assert len(froms) >= 2, "multi-stage"
    for base in froms:
        image = base.split()[0]
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        assert re.search(r"@sha256:[0-9a-f]{64}$", image), f"{image} is not pinned by digest"
    final = steps[max(i for i, (kind, _) in enumerate(steps) if kind == "FROM") :]
    users = [arg for kind, arg in final if kind == "USER"]
    assert users, "runs as a user of its own"
    assert users[-1].split(":")[0] not in ("root", "0"), "not root"
    assert any(kind == "HEALTHCHECK" for kind, _ in final)
    assert all(kind != "ADD" for kind, _ in steps), "COPY, never ADD"
    copies = [arg for kind, arg in steps if kind == "COPY"]
    assert all(not re.match(r"(--\S+\s+)*\.\s", c) for c in copies), "no COPY of the whole tree"
    assert any("lock.txt" in c for c in copies), "dependencies from the lock file"
    entry = [arg for kind, arg in final if kind == "ENTRYPOINT"]
    assert entry, "an ENTRYPOINT"
    assert entry[-1].startswith("["), "ENTRYPOINT in exec form"


def test_a_dockerfile_that_breaks_a_rule_is_caught(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:3.11-slim\nCOPY . .\nCMD python -m gateway\n")
    with pytest.raises(AssertionError):
        test_each_dockerfile_follows_the_rules(bad)


# -- compose ----------------------------------------------------------------------------


def test_compose_file_is_valid_and_runs_the_walkthrough() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    schema = yaml.safe_load(Path(_tool("compose-schema")).read_text())
    jsonschema.validate(compose, schema)
    services = compose["services"]
    assert {"kafka", "mongodb", "engine", "auth", "gateway", "stub", "example"} <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["mongodb"]["image"] == "mongo:7"
    for name in ("engine", "auth", "gateway", "stub"):
        service = services[name]
        dockerfile = ROOT / service["build"]["dockerfile"]
        assert dockerfile.exists(), dockerfile
        assert service["read_only"] is True
        assert service["user"] != "root"
    for name, service in services.items():
        for needed in service.get("depends_on", {}):
            assert needed in services, (name, needed)
            assert "healthcheck" in services[needed] or needed in (
                "engine",
                "auth",
                "gateway",
                "stub",
            ), needed  # our images carry a HEALTHCHECK
    assert services["engine"]["environment"]["HOOKFLOW_ENGINE_EGRESS_ALLOW"] == "stub:8089"


def test_a_broken_compose_file_fails_the_schema() -> None:
    schema = yaml.safe_load(Path(_tool("compose-schema")).read_text())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"services": {"a": {"image": "x", "ports": "8080"}}}, schema)
