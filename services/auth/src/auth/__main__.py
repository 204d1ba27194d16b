"""Run the auth service: `python -m auth` (settings from HOOKFLOW_AUTH_* variables)."""

import uvicorn

from auth.app import create_app
from auth.settings import Settings


def main() -> None:
    settings = Settings()
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
    )


if __name__ == "__main__":
    main()
