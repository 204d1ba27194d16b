"""The librdkafka producer's own messages, as an operator reads them."""

import asyncio
import logging

import pytest

from schemas.producer import Producer


async def test_the_clients_complaints_land_in_the_services_log(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """A broker that cannot be reached is said in the service's log (its format, its
    level), not in lines of librdkafka's own written straight to stderr."""
    producer = Producer("127.0.0.1:9", 1.0, 16384, "test", timeout_seconds=0.5)
    with caplog.at_level(logging.INFO, logger="schemas.producer"):
        await producer.start(connect_seconds=0.1)
        await asyncio.sleep(0.5)
        await producer.stop(flush_seconds=0.1)
    said = [r for r in caplog.records if r.name.startswith("schemas.producer.")]
    assert any("127.0.0.1:9" in r.getMessage() for r in said), caplog.text
    assert all(r.levelno >= logging.WARNING for r in said if "refused" in r.getMessage())
    assert "%3|" not in capfd.readouterr().err
