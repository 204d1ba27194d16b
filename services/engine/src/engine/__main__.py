"""Run the engine: `python -m engine` (settings from HOOKFLOW_ENGINE_* variables)."""

import uvicorn

from engine.app import create_app
from engine.settings import Settings


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
