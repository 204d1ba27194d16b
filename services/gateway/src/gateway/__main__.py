"""Run the gateway: `python -m gateway` (settings from HOOKFLOW_GATEWAY_* variables)."""

import uvicorn

from gateway.settings import Settings


def main() -> None:
    settings = Settings()
    uvicorn.run(
        "gateway.app:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop",
        http="httptools",
        log_level=settings.log_level.lower(),
        access_log=False,
        # X-Forwarded-For is the app's to trust or not (trust_forwarded_for), not uvicorn's
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
