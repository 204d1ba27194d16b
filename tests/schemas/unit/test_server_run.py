from typing import Any

import pytest
import uvicorn

from schemas import server


def test_no_service_lets_uvicorn_believe_x_forwarded_for(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client's address is the apps' to take from X-Forwarded-For, from their trusted
    proxies only: uvicorn, left to its default, would take it from any local caller."""
    given: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: given.update(options))
    server.run(object(), server.ServerSettings(), port=0)
    assert given["proxy_headers"] is False
    assert given["http"] is server.GuardedProtocol
