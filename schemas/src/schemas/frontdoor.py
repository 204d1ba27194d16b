"""The one origin's routing table, written once: which service answers each public path.

The gateway is the front door: it answers its own routes and passes the others on to
the service the table names (`gateway.frontdoor`). The Kubernetes Ingress is generated
from the same table (`python -m schemas.frontdoor ingress`; a test keeps the committed
one equal): each path prefix goes straight to its service, and a prefix shared by
several services goes to the gateway, which routes it by the full path.

What the table does not name is not public: `/internal/...`, the services' `/metrics`,
`/healthz` and `/readyz` (the gateway's own excepted), the engine's and auth's OpenAPI
documents.
"""

import re
import sys
from dataclasses import dataclass, field
from enum import StrEnum


class Service(StrEnum):
    GATEWAY = "gateway"
    ENGINE = "engine"
    AUTH = "auth"


@dataclass(frozen=True)
class Route:
    """A path template (Starlette's `{name}`; `{rest:path}` matches anything below) and
    the service that answers it."""

    path: str
    service: Service
    pattern: re.Pattern[str] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        regex = re.sub(r"\{[^}:]+:path\}", ".*", self.path)
        regex = re.sub(r"\{[^}]+\}", "[^/]+", regex)
        object.__setattr__(self, "pattern", re.compile(f"^{regex}$"))

    @property
    def prefix(self) -> str:
        """The path up to its first parameter."""
        return self.path.split("{", 1)[0]


_FLOW = "/api/automation/flow"
G, E, A = Service.GATEWAY, Service.ENGINE, Service.AUTH

ROUTES: tuple[Route, ...] = (
    Route("/api/info", G),
    # callbacks and starts: the gateway's own
    Route(_FLOW + "/{flowId}/trigger/{triggerId}/activate", G),
    Route(_FLOW + "/trigger/activate-by-name", G),
    Route(_FLOW + "/activate-by-name", G),
    Route(_FLOW + "/{flowId}/activate", G),
    Route(_FLOW + "/{flowId}/execute", G),
    # FlowRunner's execution API and the management API: the engine's
    Route(_FLOW + "/execution-context/{executionId}", E),
    Route(_FLOW + "/{flowIdOrName}/activate-blocking", E),
    Route(_FLOW + "/{flowId}/executions", E),
    Route(_FLOW + "/{flowId}/execution/{executionId}", E),
    Route(_FLOW + "/{flowId}/execution/{executionId}/block/result", E),
    Route(_FLOW + "/{flowId}/execution/{executionId}/stop", E),
    Route("/api/automation/flows", E),
    Route("/api/automation/flows/{rest:path}", E),
    Route("/api/automation/executions/{rest:path}", E),
    Route("/api/automation/activations", E),
    Route("/api/automation/activations/{rest:path}", E),
    Route("/api/automation/system", E),
    Route("/api/automation/dead-letters", E),
    Route("/api/automation/dead-letters/{rest:path}", E),
    Route("/api/automation/expressions/evaluate", E),
    Route("/console", E),
    Route("/console/{rest:path}", E),
    # users, as Backendless serves them (the SDK reads a user through the data API)
    Route("/api/users/register", A),
    Route("/api/users/login", A),
    Route("/api/users/logout", A),
    Route("/api/users/isvalidusertoken/{token}", A),
    Route("/api/users/{objectId}", A),
    Route("/api/users/{objectId}/roles", A),
    Route("/api/users/{objectId}/status", A),
    Route("/api/data/Users/{objectId}", A),
)


def service_of(path: str, routes: tuple[Route, ...] = ROUTES) -> Service | None:
    """The service that answers `path`, or None: not public."""
    for route in routes:
        if route.pattern.match(path):
            return route.service
    return None


@dataclass(frozen=True)
class IngressPath:
    path: str
    exact: bool
    service: Service


def ingress_paths(routes: tuple[Route, ...] = ROUTES) -> list[IngressPath]:
    """The Ingress's paths: a route without parameters exactly, else its prefix (up to
    the last `/` before its first parameter); a prefix that several services share goes
    to the gateway, which routes by the full path."""
    owners: dict[tuple[str, bool], set[Service]] = {}
    for route in routes:
        if "{" not in route.path:
            key = (route.path, True)
        else:
            key = (route.prefix.rstrip("/") or "/", False)
        owners.setdefault(key, set()).add(route.service)
    chosen = {
        key: services.pop() if len(services) == 1 else Service.GATEWAY
        for key, services in owners.items()
    }
    paths = []
    for (path, exact), service in chosen.items():
        covering = [
            p
            for (p, e), _ in chosen.items()
            if not e and (p, e) != (path, exact) and (path + "/").startswith(p.rstrip("/") + "/")
        ]
        if covering and chosen[(max(covering, key=len), False)] == service:
            continue  # the nearest prefix that covers it goes to the same service
        paths.append(IngressPath(path, exact, service))
    return sorted(paths, key=lambda p: (p.path, not p.exact))


def ingress_yaml(host: str = "hooks.example.com") -> str:
    """The Kubernetes Ingress of the one origin, in YAML."""
    lines = [
        "# Generated from the routing table (schemas/src/schemas/frontdoor.py) by",
        "# `python -m schemas.frontdoor ingress`; a test keeps it equal. Paths the table",
        "# does not name (/internal/..., the services' metrics and health) are not routed.",
        "apiVersion: networking.k8s.io/v1",
        "kind: Ingress",
        "metadata:",
        "  name: hookflow",
        "spec:",
        "  ingressClassName: nginx",
        "  rules:",
        f"    - host: {host}",
        "      http:",
        "        paths:",
    ]
    for entry in ingress_paths():
        lines += [
            f"          - path: {entry.path}",
            f"            pathType: {'Exact' if entry.exact else 'Prefix'}",
            "            backend:",
            "              service:",
            f"                name: {entry.service.value}",
            "                port: {name: http}",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if sys.argv[1:] != ["ingress"]:
        sys.exit("usage: python -m schemas.frontdoor ingress")
    sys.stdout.write(ingress_yaml())
