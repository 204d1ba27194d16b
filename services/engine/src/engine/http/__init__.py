"""The engine's management API: `Endpoints` and its groups of routes."""

from engine.http.endpoints import Endpoints
from engine.http.params import MAX_PAGE, MAX_WAIT_SECONDS

__all__ = ["MAX_PAGE", "MAX_WAIT_SECONDS", "Endpoints"]
