"""Exit 0 when a Kafka broker answers a metadata request and lists itself.

Standard library only, so that it runs before any virtual environment exists.
Usage: python3 kafka_ready.py HOST PORT
"""

import socket
import struct
import sys

METADATA_KEY = 3
METADATA_VERSION = 4  # the oldest version Kafka 4 still serves, non-flexible
CORRELATION_ID = 4242


def _request() -> bytes:
    client_id = b"hookflow-ready"
    header = struct.pack(">hhih", METADATA_KEY, METADATA_VERSION, CORRELATION_ID, len(client_id))
    body = struct.pack(">ib", 0, 0)  # no topics, no auto-creation
    payload = header + client_id + body
    return struct.pack(">i", len(payload)) + payload


def _read_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("connection closed")
        data += chunk
    return data


def broker_count(host: str, port: int, timeout: float = 3.0) -> int:
    """Return how many brokers the metadata response lists."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(_request())
        (size,) = struct.unpack(">i", _read_exact(sock, 4))
        response = _read_exact(sock, size)
    correlation_id, _throttle, brokers = struct.unpack(">iii", response[:12])
    if correlation_id != CORRELATION_ID:
        raise ConnectionError("unexpected correlation id")
    return brokers


def main() -> int:
    host, port = sys.argv[1], int(sys.argv[2])
    try:
        count = broker_count(host, port)
    except (OSError, struct.error) as exc:
        print(f"not ready: {exc}", file=sys.stderr)
        return 1
    return 0 if count >= 1 else 1


if __name__ == "__main__":
    sys.exit(main())
