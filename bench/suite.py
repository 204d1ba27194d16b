"""The state every suite of a run shares: the services, the flows it deploys, the
figures; each suite is a module of functions taking it."""

import asyncio
import time
import urllib.error
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
        self.keyed_waiting: dict[str, int] = {}  # flow id -> executions made waiting there
        self.p3_background = 100 if smoke else 1000

    def fig(
        self,
        name: str,
        unit: str,
        goal: str = "",
        better: str = "higher",
        *,
        id: str,  # the figure's id: stable across runs and modes, what the report compares
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
        # the same waits in a triggers group (`any`): either member resumes
        self.group_flow = self._group_flow(engine, "bench-group", None)
        self.keyed_group_flow = self._group_flow(
            engine, "bench-keyed-group", "data.ref == input.ref && data.amount > 0"
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
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the gateway learns the flows from the registry
            # the flow deployed last: once the gateway knows it, it knows every one before
            # it; an invalid selector is refused (400) once the trigger is known, else 404
            try:
                http("POST", self.callback(self.nowaiter_flow, "?execution=not%20one"))
            except urllib.error.HTTPError as error:
                if error.code == 400:
                    break
            except OSError:
                pass
            time.sleep(0.2)

    @staticmethod
    def _group_flow(engine: str, name: str, condition: str | None) -> dict[str, Any]:
        member = {"type": "external_callback", **({"condition": condition} if condition else {})}
        return dict(
            http(
                "POST",
                f"{engine}/api/automation/flows",
                {
                    "name": name,
                    "blocks": [
                        {"name": "Go", "type": "start", "next": "Wait"},
                        {
                            "name": "Wait",
                            "type": "triggers_group",
                            "mode": "any",
                            "triggers": [
                                {"name": "Confirmed", **member},
                                {"name": "Failed", **member},
                            ],
                            "next": "Done",
                        },
                        {"name": "Done", "type": "assign", "assign": {"paid": "data.amount"}},
                    ],
                },
            )
        )

    def callback(self, flow: dict[str, Any], query: str = "", trigger: int = 0) -> str:
        url = flow["triggers"][trigger]["callbackUrl"]
        return str(url.replace(url.split("/api/")[0], self.s.url("gateway")) + query)

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
