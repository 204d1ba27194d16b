"""Store arbitrary user JSON opaquely, so that it survives any MongoDB-wire server.

Documents in MongoDB cannot hold every JSON value: integers beyond 64 bits do not
fit BSON, and FerretDB also rejects nested arrays and keys with dots or a leading
dollar. User payloads are therefore stored as their JSON text and decoded on read.
Nothing in a payload is ever queried, so nothing is lost by this.
"""

import json
from typing import Any


def encode(value: Any) -> str:
    """Return the compact JSON text of `value` (raises ValueError for NaN or infinity)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def decode(text: str) -> Any:
    """Return the JSON value that `encode` stored as `text`."""
    return json.loads(text)
