"""Flow definitions the engine tests share."""

import uuid
from typing import Any

from engine.core.definition import Flow, compile_flow
from schemas.flows import FlowDefinition

ORDER_FLOW: dict[str, Any] = {
    "name": "Order fulfilment",
    "blocks": [
        {"name": "Order Received", "type": "start", "next": "Process Order Details"},
        {
            "name": "Process Order Details",
            "type": "assign",
            "assign": {"order": "input.order", "total": "input.order.total"},
            "next": "Payment Confirmed",
        },
        {
            "name": "Payment Confirmed",
            "type": "external_callback",
            "authenticationType": "USER",
            "requiredRoles": ["PaymentGateway"],
            "onFailPolicy": "ERROR",
            "condition": "data.orderId == vars.order.id",
            "next": "Complete Order",
        },
        {
            "name": "Complete Order",
            "type": "assign",
            "assign": {
                "status": "'paid'",
                "paidBy": "user.email",
                "amount": "results['Payment Confirmed'].data.amount",
            },
        },
    ],
}

ENTRY_TRIGGER_FLOW: dict[str, Any] = {
    "name": "Inbound webhook",
    "blocks": [
        {"name": "Webhook", "type": "external_callback", "next": "Copy"},
        {"name": "Copy", "type": "assign", "assign": {"seen": "data.event"}},
    ],
}


# an order that waits 60 s for its payment, then goes to a reminder
TIMED_FLOW: dict[str, Any] = {
    "name": "Timed order",
    "blocks": [
        {"name": "s", "type": "start", "next": "pay"},
        {
            "name": "pay",
            "type": "external_callback",
            "timeoutSeconds": 60,
            "onTimeout": "remind",
            "next": "paid",
        },
        {"name": "paid", "type": "assign", "assign": {"state": "'paid'"}},
        {"name": "remind", "type": "assign", "assign": {"state": "'reminded'"}},
    ],
}


def trigger_id_for(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


def compiled(definition: dict[str, Any], flow_id: str = "flow-1") -> Flow:
    return compile_flow(FlowDefinition.model_validate(definition), flow_id, trigger_id_for)


# a payment may arrive before its order waits: kept 60 s for it
BUFFERED_FLOW: dict[str, Any] = {
    "name": "Order with early payments",
    "blocks": [
        {"name": "s", "type": "start", "next": "pay"},
        {
            "name": "pay",
            "type": "external_callback",
            "condition": "data.orderId == input.orderId && data.amount >= input.total",
            "bufferSeconds": 60,
            "next": "paid",
        },
        {"name": "paid", "type": "assign", "assign": {"amount": "data.amount"}},
    ],
}


# a deployment approval, signed by GitHub
SIGNED_FLOW: dict[str, Any] = {
    "name": "Deployment approval",
    "blocks": [
        {"name": "s", "type": "start", "next": "approved"},
        {
            "name": "approved",
            "type": "external_callback",
            "authenticationType": "SIGNATURE",
            "signatureScheme": "github",
            "condition": "data.action == 'approved'",
            "next": "deploy",
        },
        {"name": "deploy", "type": "assign", "assign": {"by": "data.sender.login"}},
    ],
}


def group_flow(mode: str, window: int | None = None, **group: Any) -> dict[str, Any]:
    """An order that waits at a triggers group: "Payment Confirmed" and "Payment Failed"
    (`any`), or "Payment Captured" and "Stock Reserved" (`all`), each correlated by order
    id; `group` adds settings (onTimeout, bufferSeconds of the members via `buffer`)."""
    names = (
        ("Payment Confirmed", "Payment Failed")
        if mode == "any"
        else ("Payment Captured", "Stock Reserved")
    )
    buffer = group.pop("buffer", 0)
    members = [
        {
            "name": name,
            "type": "external_callback",
            "condition": "data.orderId == input.orderId",
            "bufferSeconds": buffer,
        }
        for name in names
    ]
    blocks: list[dict[str, Any]] = [
        {"name": "s", "type": "start", "next": "Payment"},
        {
            "name": "Payment",
            "type": "triggers_group",
            "mode": mode,
            "triggers": members,
            "next": "Done",
            **({"windowSeconds": window} if window else {}),
            **group,
        },
        {"name": "Done", "type": "assign", "assign": {"outcome": "results['Payment'].activated"}},
    ]
    if "onTimeout" in group:
        blocks.append(
            {"name": group["onTimeout"], "type": "assign", "assign": {"outcome": "'late'"}}
        )
    return {"name": f"Grouped order ({mode})", "blocks": blocks}
