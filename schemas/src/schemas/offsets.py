"""Positions on Kafka topics, read through clients kept open: where a topic ends, and
where a consumer group has committed."""

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


class EndOffsets:
    """The end offset of every partition of a topic (empty while it does not exist), read
    through one client kept open: a registry refresh costs one request to the broker."""

    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self._consumer: AIOKafkaConsumer | None = None
        self._partitions: dict[str, list[TopicPartition]] = {}
        self._admin: AIOKafkaAdminClient | None = None

    async def __call__(self, topic: str) -> dict[int, int]:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, enable_auto_commit=False)
            await consumer.start()
            self._consumer = consumer
        partitions = await self._partitions_of(topic)
        if not partitions:
            return {}
        ends = await self._consumer.end_offsets(partitions)
        return {tp.partition: offset for tp, offset in ends.items()}

    async def _partitions_of(self, topic: str) -> list[TopicPartition]:
        """The topic's partitions, asked once (none while it does not exist)."""
        partitions = self._partitions.get(topic)
        if not partitions:
            partitions = await self._describe(topic)
            if partitions:
                self._partitions[topic] = partitions
        return partitions

    async def _describe(self, topic: str) -> list[TopicPartition]:
        admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap)
        await admin.start()
        try:
            (described,) = await admin.describe_topics([topic])
        finally:
            await admin.close()
        if described["error_code"] != 0:
            return []
        return [TopicPartition(topic, p["partition"]) for p in described["partitions"]]

    async def committed(self, group: str, topic: str) -> dict[int, int]:
        """The offsets `group` committed on `topic`'s partitions (those it never committed
        are missing)."""
        partitions = await self._partitions_of(topic)
        if not partitions:
            return {}
        if self._admin is None:
            admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap)
            await admin.start()
            self._admin = admin
        found = await self._admin.list_consumer_group_offsets(group, partitions=partitions)
        return {tp.partition: meta.offset for tp, meta in found.items() if meta.offset >= 0}

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
        if self._admin is not None:
            await self._admin.close()
            self._admin = None
