"""Apply the ordered SQL files in `migrations/`, each in a transaction, under an advisory lock."""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass

import asyncpg

# An arbitrary constant: every Easel process takes this lock to migrate.
MIGRATION_LOCK_ID = 0x0EA5E1


@dataclass(frozen=True)
class Migration:
    version: str
    sql: str


def available_migrations() -> list[Migration]:
    """The SQL files shipped in the `migrations` package, in name order."""
    folder = importlib.resources.files("migrations")
    files = sorted(
        (entry for entry in folder.iterdir() if entry.name.endswith(".sql")),
        key=lambda entry: entry.name,
    )
    return [Migration(entry.name.removesuffix(".sql"), entry.read_text("utf-8")) for entry in files]


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply pending migrations; return the versions applied (empty when up to date)."""
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_ID)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version text PRIMARY KEY,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}
        applied = []
        for migration in available_migrations():
            if migration.version in done:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version) VALUES ($1)", migration.version
                )
            applied.append(migration.version)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_ID)


async def pending_migrations(conn: asyncpg.Connection) -> list[str]:
    """Versions shipped but not applied (for readiness checks)."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    done = (
        {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}
        if exists
        else set()
    )
    return [m.version for m in available_migrations() if m.version not in done]
