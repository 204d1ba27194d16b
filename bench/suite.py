"""The state every suite of a run shares: the services, the flows it deploys, the
figures; each suite is a module of functions taking it."""

import asyncio
import time
import uuid
from typing import Any

from harness import Services, http
from measures import Figure
from seeding import create_executions


class Suite:
    """The state a run's suites share: the services, the deployed flows, the figures."""

    def __init__(self, services: Services, runs: int, seconds: float, smoke: bool) -> None:
        self.s = services
        self.runs = runs
        self.seconds = seconds
        self.smoke = smoke
        self.figures: dict[str, Figure] = {}
        self.notes: list[str] = []
        self.profiles: dict[str, Any] = {}
        self.resume_p50: dict[str, list[float]] = {}
        self.lag_series: list[tuple[float, float]] = []
        self.keyed_waiting = 0
        self.p3_background = 100 if smoke else 1000

    def fig(
        self,
        name: str,
        unit: str,
        goal: str = "",
        better: str = "higher",
        id: str | None = None,  # the figure's id in latest.json
    ) -> Figure:
        return self.figures.setdefault(name, Figure(name, unit, goal=goal, better=better, id=id))

    def deploy(self) -> None:
        engine = self.s.url("engine")
        self.open_flow = http(
            "POST",
            f"{engine}/api/automation/flows",
            {
                "name": "bench-open",
                "blocks": [
                    {"name": "Go", "type": "start", "next": "Wait"},
                    {"name": "Wait", "type": "external_callback", "next": "Done"},
                    {"name": "Done", "type": "assign", "assign": {"paid": "data.amount"}},
                ],
            },
        )
        self.pay_flow = http(
            "POST",
            f"{engine}/api/automation/flows",
            {
                "name": "bench-pay",
                "blocks": [
                    {
                        "name": "Wait",
                        "type": "external_callback",
                        "authenticationType": "USER",
                        "requiredRoles": ["PaymentGateway"],
                        "next": "Done",
                    },
                    {"name": "Done", "type": "end"},
                ],
            },
        )
        self.keyed_flow = http(
            "POST",
            f"{engine}/api/automation/flows",
            {
                "name": "bench-keyed",
                "blocks": [
                    {"name": "Go", "type": "start", "next": "Wait"},
                    {
                        "name": "Wait",
                        "type": "external_callback",
                        "condition": "data.ref == input.ref && data.amount > 0",
                        "next": "Done",
                    },
                    {"name": "Done", "type": "assign", "assign": {"paid": "data.amount"}},
                ],
            },
        )
        self.nowaiter_flow = http(
            "POST",
            f"{engine}/api/automation/flows",
            {
                "name": "bench-nowaiter",
                "blocks": [
                    {"name": "Go", "type": "start", "next": "Wait"},
                    {"name": "Wait", "type": "external_callback"},
                ],
            },
        )
        auth = self.s.url("auth")
        email = f"psp-{uuid.uuid4().hex[:6]}@bench.example"
        user = http(
            "POST", f"{auth}/api/users/register", {"email": email, "password": "bench password"}
        )
        http(
            "PUT",
            f"{auth}/api/users/{user['objectId']}/roles",
            {"roles": ["PaymentGateway"]},
            {"x-admin-key": self.s.admin_key},
        )
        self.token = http(
            "POST", f"{auth}/api/users/login", {"login": email, "password": "bench password"}
        )["user-token"]
        gateway = self.s.url("gateway")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the gateway learns the flows from the registry
            try:
                http("POST", f"{gateway}/api/automation/flow/{self.pay_flow['flowId']}/execute", {})
                break
            except OSError:
                time.sleep(0.2)

    def callback(self, flow: dict[str, Any], query: str = "") -> str:
        return str(
            flow["triggers"][0]["callbackUrl"].replace(
                flow["triggers"][0]["callbackUrl"].split("/api/")[0], self.s.url("gateway")
            )
            + query
        )

    def waiting(self, count: int, flow: dict[str, Any] | None = None) -> list[str]:
        """Create `count` executions waiting at a flow's trigger, in bulk (input.ref = id)."""
        flow = flow or self.open_flow
        return asyncio.run(
            create_executions(
                self.s.mongodb, f"{self.s.prefix}_engine", flow["flowId"], count, waiting=True
            )
        )

    def stored(self, count: int) -> None:
        """Add `count` completed executions: documents a resume must not be slowed by."""
        asyncio.run(
            create_executions(
                self.s.mongodb,
                f"{self.s.prefix}_engine",
                self.open_flow["flowId"],
                count,
                waiting=False,
            )
        )
