"""Flow versions and the live version of each name."""

from collections.abc import AsyncIterator
from dataclasses import replace

from engine.ports import (
    FlowRecord,
)

from .data import Data, keyset_page


class Flows(Data):
    """Flow versions and the live version of each name."""

    async def next_version(self, name: str) -> int:
        self.versions[name] = self.versions.get(name, 0) + 1
        return self.versions[name]

    async def save_flow(self, record: FlowRecord) -> None:
        if any(
            r.name == record.name and r.version == record.version
            for r in self.flow_records.values()
        ):
            raise ValueError("duplicate version")
        self.flow_records[record.flow_id] = record
        if record.name not in self.live or self.live[record.name][0] < record.version:
            self.live[record.name] = (record.version, record.flow_id)

    async def get_flow(self, flow_id: str) -> FlowRecord | None:
        record = self.flow_records.get(flow_id.lower())
        if record is None:
            return None
        return replace(record, live=self.live[record.name][1] == record.flow_id)

    async def versions_of(self, name: str) -> list[FlowRecord]:
        found = sorted(
            (r for r in self.flow_records.values() if r.name == name), key=lambda r: -r.version
        )
        return [replace(r, live=i == 0) for i, r in enumerate(found)]

    async def flows(self) -> AsyncIterator[FlowRecord]:
        for record in sorted(self.flow_records.values(), key=lambda r: (r.created, r.flow_id)):
            yield replace(record, live=self.live[record.name][1] == record.flow_id)

    async def list_flows(
        self, cursor: str | None, limit: int
    ) -> tuple[list[FlowRecord], str | None]:
        page, next_cursor = keyset_page(
            list(self.flow_records.values()), lambda r: (r.created, r.flow_id), cursor, limit
        )
        return [replace(r, live=self.live[r.name][1] == r.flow_id) for r in page], next_cursor
