"""Triggers groups on the real broker and store: two engines, members activated at the
same moment on different partitions, redeliveries; each group goes on exactly once."""

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from engine.settings import Settings
from schemas.events import StartExecution
from schemas.topics import Topics

from ..flows import group_flow
from .test_engine_kafka import activation, execution_in, outcome_of, running_engine


@pytest.mark.usefixtures("drop_database")
@pytest.mark.parametrize("mode", ["any", "all"])
async def test_members_activated_together_on_two_engines_go_on_once(
    mode: str,
    settings: Settings,
    publisher: Callable[[str, Any, str], Awaitable[None]],
) -> None:
    topics = Topics(settings.topic_prefix)
    async with running_engine(settings) as first, running_engine(settings) as second:
        deployed = (await first.post("/api/automation/flows", json=group_flow(mode, 3600))).json()
        flow_id = deployed["flowId"]
        members = {t["name"]: t["triggerId"] for t in deployed["triggers"]}
        executions = [str(uuid.uuid4()) for _ in range(10)]
        for n, execution_id in enumerate(executions):
            start = StartExecution(
                executionId=execution_id, flowId=flow_id, input={"orderId": f"o-{n}"}, requestedAt=1
            )
            await publisher(topics.execution_starts, start, execution_id)
        for execution_id in executions:
            assert await execution_in(second, execution_id, "waiting")

        sent: list[tuple[str, dict[str, str]]] = []
        for n, execution_id in enumerate(executions):
            ids = {}
            for name, trigger_id in members.items():
                # keyed by trigger: the members travel on different partitions, to
                # different engines; each activation is delivered twice (a producer retry)
                command = activation(flow_id, trigger_id, f"o-{n}")
                await publisher(topics.activations, command, trigger_id)
                await publisher(topics.activations, command, trigger_id)
                ids[name] = command.activationId
            sent.append((execution_id, ids))

        for execution_id, ids in sent:
            done = await execution_in(first, execution_id, "completed")
            assert [h["event"] for h in done["history"]].count("resumed") == 1
            outcomes = {name: (await outcome_of(first, a))["outcome"] for name, a in ids.items()}
            activated = done["results"]["Payment"]["activated"]
            if mode == "any":
                # the loser finds its execution gone from the group: NO_WAITER, or
                # FILTERED while other orders' executions wait there
                won, lost = sorted(outcomes.values())
                assert won == "ACTIVATED"
                assert lost in ("NO_WAITER", "FILTERED")
                assert activated == [n for n, o in outcomes.items() if o == "ACTIVATED"]
            else:
                assert set(outcomes.values()) == {"ACTIVATED"}
                assert sorted(activated) == sorted(members)
