"""The store contract against the in-memory fake."""

import pytest

from ..fakes import InMemoryStore
from ..log_contract import *  # noqa: F403  # the activation log's part of it
from ..store_contract import *  # noqa: F403  # the contract's tests run here


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()
