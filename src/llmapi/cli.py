"""The `llmapi` command: `serve [--host H] [--port P] [--config FILE]`, `migrate`, `keys create`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llmapi.config import ConfigError, load_settings
from llmapi.observability.logging import configure_logging

logger = logging.getLogger("llmapi")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmapi", description="An OpenAI-compatible API for language models."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--host", help="interface to listen on (env LLMAPI_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (env LLMAPI_PORT, default 8000)")
    serve.add_argument("--config", type=Path, help="models file, YAML or TOML (env LLMAPI_MODELS_FILE)")
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    commands.add_parser("migrate", help="bring the database (LLMAPI_DATABASE_URL) to the current schema")
    keys = commands.add_parser("keys", help="manage API keys").add_subparsers(
        dest="keys_command", required=True
    )
    create = keys.add_parser("create", help="create an API key and print it once")
    create.add_argument("--name", default="created by llmapi keys create")
    create.add_argument("--role", choices=["admin", "developer", "service"], default="developer")
    create.add_argument("--scopes", help="comma-separated scopes narrowing the role's")
    return parser


def migrate(_: argparse.Namespace) -> int:
    from llmapi.db.migrate import upgrade

    settings = load_settings()
    asyncio.run(upgrade(settings.database_url))
    print("database is at the current schema")
    return 0


def create_key(args: argparse.Namespace) -> int:
    from llmapi.services.admin import create_key_offline

    settings = load_settings()
    scopes = [s.strip() for s in args.scopes.split(",") if s.strip()] if args.scopes else None
    created = asyncio.run(create_key_offline(settings, name=args.name, role=args.role, scopes=scopes))
    print(created.key)
    print(
        f"id {created.id}, role {created.role}, scopes {' '.join(created.scopes)} (shown once)",
        file=sys.stderr,
    )
    return 0


def serve(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {}
    if args.host is not None:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    if args.config is not None:
        overrides["models_file"] = args.config
    if args.log_level is not None:
        overrides["log_level"] = args.log_level
    try:
        settings = load_settings(**overrides)
    except ConfigError as exc:
        print(f"llmapi: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    # Idle OpenMP workers must sleep, not spin: the engine thread and the embedding thread each run torch,
    # and spinning teams on few cores slow both several-fold. SmolLM2 decode steps on 2 cores
    # (bench/engine_levers/omp_wait_policy.md): ACTIVE is 10-27% faster on a quiet machine, 1.5-4.5x slower
    # when other processes want the cores. An operator with dedicated cores may set OMP_WAIT_POLICY=ACTIVE.
    # OpenMP reads it once, when torch loads: set it first.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    import uvicorn

    from llmapi.app import create_app
    from llmapi.server.http_protocol import http_protocol

    logger.info(
        "serving %s on http://%s:%d", ", ".join(m.id for m in settings.models), settings.host, settings.port
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        http=http_protocol(settings.server),
        ws="none",  # no route speaks WebSocket: no upgrade is taken
        limit_concurrency=settings.server.max_connections,
        timeout_keep_alive=settings.server.keep_alive_timeout_seconds,
        server_header=False,
        log_level=settings.log_level,
        log_config=None,
        timeout_graceful_shutdown=10,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            return serve(args)
        if args.command == "migrate":
            return migrate(args)
        return create_key(args)
    except ConfigError as exc:
        print(f"llmapi: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
