"""`easel`: one binary, several roles and operations (DESIGN.md, "Process roles")."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from bot.settings import Settings, SettingsError, load_settings
from bot.user_ids import UserIdError

Command = Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int]]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="easel",
        description="Easel: AI images in Discord and Slack threads, self-hosted.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    chat = sub.add_parser("chat", help="a terminal thread: try Easel with no accounts at all")
    chat.add_argument("--prompt", action="append", default=[], help="a turn (repeatable)")
    chat.add_argument("--model", help="model for this session (see `easel models`)")

    sub.add_parser("run", help="every configured role in one process")
    sub.add_parser("gateway", help="Discord / Slack inbound only")
    worker = sub.add_parser("worker", help="claim and run generations")
    worker.add_argument("--concurrency", type=int, help="generations at once in this process")
    sub.add_parser("web", help="webhooks, Slack HTTP mode, health and metrics")
    sub.add_parser("health", help="ask this machine's Easel process if it is ready (exit 0/1)")
    sub.add_parser("migrate", help="apply pending database migrations")
    models = sub.add_parser("models", help="the model catalog and which models are available")
    models.add_argument("--check", action="store_true",
                        help="ask each configured provider whether every catalog id still exists")
    sub.add_parser("status", help="queue depth, failures and live workers")

    credits = sub.add_parser("credits", help="grant, show and audit credits")
    credits_sub = credits.add_subparsers(dest="credits_command", required=True)
    grant = credits_sub.add_parser("grant", help="grant (or with a negative amount, deduct)")
    grant.add_argument(
        "user", help="PLATFORM:ID (e.g. slack:U0USER, discord:1234, console:ada) or PLATFORM:WORKSPACE:ID"
    )
    grant.add_argument("amount", type=int)
    grant.add_argument("--reason", default="admin grant")
    show = credits_sub.add_parser("show", help="a user's balance")
    show.add_argument(
        "user", nargs="?", help="PLATFORM:ID or PLATFORM:WORKSPACE:ID (default: you, on the console)"
    )
    credits_sub.add_parser("audit", help="check every credit invariant; non-zero on violation")

    bench = sub.add_parser("bench", help="drive synthetic users through the real pipeline")
    bench.add_argument("--users", type=int, default=50)
    bench.add_argument("--generations", type=int, default=1000)
    bench.add_argument("--latency-ms", type=float, default=0.0)
    bench.add_argument("--concurrency", type=int, default=64)
    bench.add_argument("--workers", type=int, default=1, help="worker processes")
    bench.add_argument(
        "--separate-gateway", action="store_true",
        help="this process only submits (as a gateway would); all --workers are processes",
    )
    bench.add_argument("--pool-size", type=int, default=20)
    bench.add_argument(
        "--async-commit", action="store_true",
        help="run the scratch database with synchronous_commit=off (shows the fsync cost)",
    )

    bench.add_argument(
        "--fill", type=int, default=0, metavar="N",
        help="instead: write N generations of history, then time /metrics, status and LIMITS",
    )

    db = sub.add_parser("db", help="the embedded PostgreSQL (used when DATABASE_URL is unset)")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("status", help="whether it runs, its process and where its data is")
    db_sub.add_parser("stop", help="stop it (the next command starts it again)")

    admin = sub.add_parser("admin", help="the operator's view")
    admin_sub = admin.add_subparsers(dest="admin_command", required=True)
    link = admin_sub.add_parser("link", help="print a signed link to the admin page "
                                "(queue, failures of the last day with retry, spend)")
    link.add_argument("--hours", type=float, default=1.0, help="how long the link is valid")

    discord = sub.add_parser("discord", help="Discord helpers")
    discord_sub = discord.add_subparsers(dest="discord_command", required=True)
    discord_sub.add_parser("invite", help="print the OAuth2 URL that adds Easel to a server")
    return parser


def _command(args: argparse.Namespace) -> Command:
    from bot import commands

    name = args.command
    if name == "credits":
        name = f"credits_{args.credits_command}"
    if name in ("discord", "db", "admin"):
        name = f"{name}_{getattr(args, name + '_command')}"
    fn: Command = getattr(commands, f"cmd_{name}")
    return fn


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"easel: {exc}", file=sys.stderr)
        return 2
    from bot.logs import configure_logging

    if args.command in ("chat", "bench") and "log_level" not in settings.model_fields_set:
        # The terminal is the chat: only warnings interrupt it unless asked otherwise. The
        # bench measures Easel, not a log line per generation (EASEL_LOG_LEVEL=INFO for them).
        settings = settings.model_copy(update={"log_level": "WARNING"})
    configure_logging(settings)
    try:
        return asyncio.run(_command(args)(settings, args))
    except KeyboardInterrupt:
        return 130
    except (SettingsError, UserIdError) as exc:
        print(f"easel: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        from core.catalog import CatalogError

        if isinstance(exc, CatalogError | OSError | ConnectionError):
            print(f"easel: {exc}", file=sys.stderr)
            logging.getLogger("easel").debug("details", exc_info=True)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
