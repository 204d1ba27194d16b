"""Run the gateway: `python -m gateway` (settings from HOOKFLOW_GATEWAY_* variables)."""

from gateway.settings import Settings
from schemas import server


def main() -> None:
    settings = Settings()
    server.run(
        "gateway.app:app_from_env",
        settings,
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop",
        log_level=settings.log_level.lower(),
        access_log=False,
    )


if __name__ == "__main__":
    main()
