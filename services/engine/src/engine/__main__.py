"""Run the engine: `python -m engine` (settings from HOOKFLOW_ENGINE_* variables).

`python -m engine topics` creates the product's topics (partitions and replication from
the same settings) and exits: what a deployment's topic job runs.
"""

import asyncio
import sys

from engine.app import create_app, ensure_topics
from engine.settings import Settings
from schemas import server
from schemas.topics import Topics


def main() -> None:
    settings = Settings()
    if sys.argv[1:] == ["topics"]:
        asyncio.run(
            ensure_topics(
                settings.kafka_bootstrap_servers,
                Topics(settings.topic_prefix),
                settings.topic_partitions,
                settings.topic_replication_factor,
            )
        )
        print(f"topics of {settings.topic_prefix!r} are in place")
        return
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
