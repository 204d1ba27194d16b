import pytest

from ..fakes import InMemoryUserStore
from ..store_contract import *  # noqa: F403  # the contract's tests run here


@pytest.fixture
def store() -> InMemoryUserStore:
    return InMemoryUserStore()
