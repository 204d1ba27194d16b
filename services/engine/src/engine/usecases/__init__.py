"""The engine's use cases, one module each; `Engine` is the door they are called through."""

from engine.usecases.activation import ExecutionFault
from engine.usecases.decide import EngineConfig
from engine.usecases.engine import Engine

__all__ = ["Engine", "EngineConfig", "ExecutionFault"]
