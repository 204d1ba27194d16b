from collections.abc import AsyncIterator

import pytest

from .test_service import World, new_world


@pytest.fixture
async def world() -> AsyncIterator[World]:
    """An engine over the in-memory store (`test_service.new_world`)."""
    world = new_world()
    yield world
    await world.workers.close()
