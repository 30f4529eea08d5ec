"""The `easel` commands: each takes settings and parsed arguments, returns an exit code."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from datetime import date
from pathlib import Path

from bot.app import (
    bootstrap,
    build_providers,
    close_providers,
    load_catalog,
    offline_parts,
    open_database,
)
from bot.settings import Settings
from bot.user_ids import resolve_user
from core import credits as credit_ops
from core.audit import violations
from core.models import UserRef
from core.sessions import upsert_user


def _warn_offline(settings: Settings) -> None:
    parts = offline_parts(settings)
    if parts:
        print(f"easel: running on offline defaults: {'; '.join(parts)}", file=sys.stderr)


async def cmd_chat(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.console.chat import ConsoleChat, lines_from, lines_from_stdin
    from adapters.console.platform import ConsolePlatform

    _warn_offline(settings)
    interactive = not args.prompt and sys.stdin.isatty() and sys.stdout.isatty()
    platform = ConsolePlatform(sys.stdout, interactive=interactive,
                               images_dir=None if settings.s3_bucket else settings.local_images_dir)
    async with bootstrap(settings, platforms={"console": platform}) as app:
        from bot.flow_page import write_flow_file

        async def write_flow(session_id: int, folder: Path) -> Path:
            return await write_flow_file(app.runtime, session_id, folder)

        chat = ConsoleChat(app.runtime, platform, data_dir=settings.data_dir,
                           write_flow=write_flow)
        if interactive:
            platform.say("Easel chat — " + "type what to draw; /help for commands.")
        turns = lines_from(args.prompt) if args.prompt else lines_from_stdin(interactive)
        return await chat.run(turns, model=args.model)


async def cmd_health(settings: Settings, args: argparse.Namespace) -> int:
    from bot.health import probe

    ready, line = await asyncio.to_thread(probe, settings)
    print(line)
    return 0 if ready else 1


async def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from bot.app import migrate_database
    from bot.db import resolve_database_url

    url = await resolve_database_url(
        settings.database_url.get_secret_value() if settings.database_url else None,
        settings.data_dir,
    )
    applied = await migrate_database(url, configured=settings.database_url is not None)
    print(f"applied: {', '.join(applied)}" if applied else "nothing to migrate: up to date")
    return 0


async def cmd_models(settings: Settings, args: argparse.Namespace) -> int:
    catalog = load_catalog(settings.models_file)
    configured = set(build_providers(settings))
    today = date.today()
    print(f"{'name':11} {'provider':10} {'available':18} {'credits':24} display name — best for")
    for m in catalog.models:
        costs = " ".join(f"{r}:{c}" for r, c in m.credits.items())
        if m.is_retired(today):
            ok = f"retired {m.retires}"
        else:
            ok = "yes" if m.provider in configured else "no (key unset)"
        print(f"{m.name:11} {m.provider:10} {ok:18} {costs:24} {m.display_name} — {m.best_for}")
    if not getattr(args, "check", False):
        return 0
    from core.model_check import check_models

    providers = build_providers(settings)
    try:
        problems = await check_models(catalog, providers, today)
    finally:
        await close_providers(providers)
    asked = ", ".join(sorted(set(providers) - {"sketch"})) or "none configured"
    print(f"\ncheck (asked: {asked}): "
          + (f"{len(problems)} problem(s)" if problems else "every id is served"))
    for problem in problems:
        print(f"  {problem.problem:9} {problem.as_text()}")
    return 1 if any(p.problem == "missing" for p in problems) else 0


def _label(user: UserRef) -> str:
    return ":".join(part for part in (user.platform, user.workspace, user.external_id) if part)


async def cmd_credits_grant(settings: Settings, args: argparse.Namespace) -> int:
    _, pool = await open_database(settings, pool_size=2)
    try:
        async with pool.acquire() as conn:
            target = await resolve_user(conn, args.user, create=True)
            assert target is not None
            user_id = await upsert_user(conn, target, settings.starter_credits)
            ok = await credit_ops.adjust(
                conn, user_id, args.amount, reason=args.reason, key=f"cli:{uuid.uuid4()}"
            )
            balance = await credit_ops.balance(conn, user_id)
    finally:
        await pool.close()
    assert balance is not None
    if not ok:
        print(f"easel: cannot deduct {-args.amount}: only {balance.available} available",
              file=sys.stderr)
        return 1
    print(f"{_label(target)}: {balance.available} available, {balance.reserved} reserved, "
          f"{balance.spent} spent")
    return 0


async def cmd_credits_show(settings: Settings, args: argparse.Namespace) -> int:
    _, pool = await open_database(settings, pool_size=2)
    try:
        async with pool.acquire() as conn:
            target = await resolve_user(conn, args.user, create=False)
            assert target is not None
            row = await conn.fetchrow(
                """SELECT a.* FROM accounts a JOIN users u ON u.id = a.user_id
                   WHERE u.platform = $1 AND u.workspace = $2 AND u.external_id = $3""",
                target.platform, target.workspace, target.external_id,
            )
    finally:
        await pool.close()
    if row is None:
        print(f"{_label(target)}: no account yet ({settings.starter_credits} credits on first use)")
        return 0
    print(f"{_label(target)}: granted {row['granted']}, available "
          f"{row['available']}, reserved {row['reserved']}, spent {row['spent']}")
    return 0


async def cmd_credits_audit(settings: Settings, args: argparse.Namespace) -> int:
    _, pool = await open_database(settings, pool_size=2)
    started = time.perf_counter()
    found = 0
    try:
        async with pool.acquire() as conn:
            async for problem in violations(conn):
                print(f"VIOLATION {problem}", flush=True)
                found += 1
            users = await conn.fetchval("SELECT count(*) FROM accounts")
    finally:
        await pool.close()
    print(f"audit: {users} accounts, {found} violations, "
          f"{time.perf_counter() - started:.2f} s")
    return 1 if found else 0


async def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    from bot.ops import queue_status

    _, pool = await open_database(settings, pool_size=2)
    try:
        print(await queue_status(pool))
    finally:
        await pool.close()
    return 0


async def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from bot.roles import run_roles

    return await run_roles(settings, roles={"worker"}, concurrency=args.concurrency)


async def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    from bot.roles import run_roles

    return await run_roles(settings, roles={"gateway", "worker", "web"})


async def cmd_gateway(settings: Settings, args: argparse.Namespace) -> int:
    from bot.roles import run_roles

    return await run_roles(settings, roles={"gateway"})


async def cmd_web(settings: Settings, args: argparse.Namespace) -> int:
    from bot.roles import run_roles

    return await run_roles(settings, roles={"web"})


async def cmd_bench(settings: Settings, args: argparse.Namespace) -> int:
    from bot.bench import run_bench

    code: int = await run_bench(settings, args)
    return code


async def cmd_discord_invite(settings: Settings, args: argparse.Namespace) -> int:
    from bot.checks import check_discord_invite
    from bot.roles import discord_invite_url

    check_discord_invite(settings)
    url = await discord_invite_url(settings)
    print(url)
    return 0


async def cmd_db_status(settings: Settings, args: argparse.Namespace) -> int:
    from bot.db import redact_url
    from bot.embedded import embedded_server

    if settings.database_url:
        print(f"DATABASE_URL is set: Easel uses {redact_url(settings.database_url.get_secret_value())}, "
              "not the embedded PostgreSQL")
    server = embedded_server(settings.data_dir)
    if server.is_running:
        print(f"embedded PostgreSQL: running (pid {server.pid}, since {server.started_at:%Y-%m-%d %H:%M:%S}) "
              f"· data {server.pgdata} · socket {server.socket_dir}")
    else:
        print(f"embedded PostgreSQL: not running · data {server.pgdata} "
              "(any easel command starts it)")
    return 0


async def cmd_db_stop(settings: Settings, args: argparse.Namespace) -> int:
    from bot.embedded import embedded_server, stop_embedded_server

    pgdata = embedded_server(settings.data_dir).pgdata
    stopped = stop_embedded_server(settings.data_dir)
    print(f"embedded PostgreSQL in {pgdata}: " + ("stopped" if stopped else "was not running"))
    return 0


async def cmd_admin_link(settings: Settings, args: argparse.Namespace) -> int:
    from core.service import ADMIN_UNAVAILABLE, admin_url

    if not settings.secret_key or not settings.public_url:
        print(f"easel: {ADMIN_UNAVAILABLE}", file=sys.stderr)
        return 2
    if not 0 < args.hours <= 24 * 7:
        print("easel: --hours must be more than 0 and at most 168", file=sys.stderr)
        return 2
    secret = settings.secret_key.get_secret_value().encode()
    print(admin_url(secret, settings.public_url, 0, int(args.hours * 3600)))
    return 0
