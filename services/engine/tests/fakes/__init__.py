"""In-memory stand-ins for the engine's ports, with the same semantics as the real ones;
the store in the same parts as MongoStore (`engine/store/`)."""

from .adapters import Clock, RecordingPublisher, ScriptedHttp, StaticTokens
from .buffer import BufferedActivations
from .dead_letters import DeadLetters
from .executions import Executions
from .flows import Flows
from .outcomes import Outcomes
from .secrets import Secrets


class InMemoryStore(Flows, Executions, Outcomes, BufferedActivations, Secrets, DeadLetters):
    """The Store port in dicts; passes the same contract tests as MongoStore."""


__all__ = [
    "Clock",
    "InMemoryStore",
    "RecordingPublisher",
    "ScriptedHttp",
    "StaticTokens",
]
