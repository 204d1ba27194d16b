"""Operator command: create a user with roles (or give an existing one these roles).

python -m auth.cli create-user --email ops@example.com --password ... --role Admin
"""

import argparse
import asyncio
import json
import sys
from typing import Any

from faststream.kafka import KafkaBroker
from pymongo import AsyncMongoClient

from auth.app import build_accounts
from auth.settings import Settings
from auth.store import MongoUserStore
from schemas.requests import RequestError
from schemas.topics import bootstrap_servers


async def create_user(args: argparse.Namespace) -> int:
    settings = Settings()
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        settings.mongodb_url.get_secret_value(), serverSelectionTimeoutMS=10_000
    )
    broker = KafkaBroker(
        bootstrap_servers(settings.kafka_bootstrap_servers), acks="all", enable_idempotence=True
    )
    store = MongoUserStore(mongo[settings.database])
    try:
        await store.setup()
        await broker.connect()
        accounts = build_accounts(settings, store, broker)
        properties = dict(item.split("=", 1) for item in args.property)
        user = await accounts.ensure_user(args.email, args.password, args.role, properties)
    except RequestError as exc:
        print(f"error {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    finally:
        await broker.stop()
        await mongo.close()
    print(json.dumps(user.as_context(), indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m auth.cli")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create-user", help="create a user with roles")
    create.add_argument("--email", required=True)
    create.add_argument("--password", required=True)
    create.add_argument("--role", action="append", default=[], help="repeat for several roles")
    create.add_argument(
        "--property",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a registration property; repeat for several",
    )
    args = parser.parse_args(argv)
    return asyncio.run(create_user(args))


if __name__ == "__main__":
    sys.exit(main())
