"""Which partition a keyed event goes to: Kafka's default partitioner, computed cheaply.

Every hookflow producer keys its events (a trigger id, an execution id), and the
partition must be the one Kafka's own clients pick for that key (murmur2 of the key
bytes, positive, modulo the partition count), so that events published by other
services to the same topic with the same key keep their order. aiokafka's default
partitioner computes murmur2 in pure Python, byte by byte: 6 us for a 36-byte id, a
twentieth of a callback's CPU at the gateway. Here the words are read four at a time
and the hash of a recent key is remembered, so a trigger's callbacks hash its id once.
"""

import random
import struct
from collections.abc import Sequence

_M = 0x5BD1E995
_SEED = 0x9747B28C
_MASK = 0xFFFFFFFF
_WORDS = [struct.Struct(f"<{n}I") for n in range(64)]


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 of `data` (org.apache.kafka.common.utils.Utils.murmur2), as an
    unsigned 32-bit number."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    count = length // 4
    words = (
        _WORDS[count].unpack_from(data)
        if count < len(_WORDS)
        else struct.unpack_from(f"<{count}I", data)
    )
    for k in words:
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = length & 3
    if tail:
        end = length & ~3
        if tail == 3:
            h ^= data[end + 2] << 16
        if tail >= 2:
            h ^= data[end + 1] << 8
        h ^= data[end]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


class KeyPartitioner:
    """An aiokafka `partitioner`: the partition Kafka's default partitioner gives a key
    (a random available one for no key), with the hashes of up to `remember` recent keys
    kept (the oldest half is forgotten when it is full)."""

    def __init__(self, remember: int = 4096) -> None:
        self._remember = remember
        self._hashes: dict[bytes, int] = {}

    def __call__(
        self, key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]
    ) -> int:
        if key is None:
            return random.choice(available or all_partitions)
        hashed = self._hashes.get(key)
        if hashed is None:
            if len(self._hashes) >= self._remember:
                for old in list(self._hashes)[: self._remember // 2]:
                    del self._hashes[old]
            hashed = self._hashes[key] = murmur2(key) & 0x7FFFFFFF
        return all_partitions[hashed % len(all_partitions)]
