"""Events land on the partition Kafka's own clients choose for their key."""

import random

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as reference_murmur2

from schemas.partitions import KeyPartitioner, murmur2

# org.apache.kafka.common.utils.UtilsTest#testMurmur2 (signed Java ints)
KAFKA_VECTORS = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize(("key", "expected"), KAFKA_VECTORS.items())
def test_murmur2_is_the_java_clients(key: bytes, expected: int) -> None:
    assert murmur2(key) == expected & 0xFFFFFFFF


def test_every_key_gets_the_partition_of_kafkas_default_partitioner() -> None:
    chosen = random.Random(7)
    ours, theirs = KeyPartitioner(remember=64), DefaultPartitioner()
    partitions = list(range(12))
    for length in [*range(0, 40), 255, 256, 257, 300, 1000]:
        for _ in range(20):
            key = chosen.randbytes(length)
            assert murmur2(key) == reference_murmur2(key) & 0xFFFFFFFF
            # twice: the remembered hash gives the same partition as the first
            for _ in range(2):
                assert ours(key, partitions, partitions) == theirs(key, partitions, partitions)
    assert len(ours._hashes) <= 64


def test_no_key_goes_to_an_available_partition() -> None:
    ours = KeyPartitioner()
    assert {ours(None, [0, 1, 2], [2]) for _ in range(50)} == {2}
    assert {ours(None, [0, 1, 2], []) for _ in range(200)} == {0, 1, 2}
