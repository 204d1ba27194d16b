"""Run the auth service: `python -m auth` (settings from HOOKFLOW_AUTH_* variables)."""

from auth.app import create_app
from auth.settings import Settings
from schemas import server


def main() -> None:
    settings = Settings()
    server.run(
        create_app(settings),
        settings,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
    )


if __name__ == "__main__":
    main()
