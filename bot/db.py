"""The database: an embedded PostgreSQL (pgserver) when DATABASE_URL is unset, and the pool."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import asyncpg

EMBEDDED_DATABASE = "easel"


def start_embedded_server(data_dir: Path) -> str:
    """Start (or reuse) the private PostgreSQL under `data_dir/postgres`; return its admin URL.

    pgserver serialises start-up across processes with a file lock and reuses a
    running server, so several Easel processes on one machine share one server.
    The server keeps running after Easel exits, so the next start is quick.
    """
    import warnings

    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers); /tmp is fine here.
        warnings.simplefilter("ignore")
        import pgserver  # only the embedded path needs it

    data_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(  # type: ignore[attr-defined]
        data_dir / "postgres", cleanup_mode=None)
    uri: str = server.get_uri()
    return uri


async def ensure_database(admin_url: str, name: str) -> str:
    """Create database `name` if missing (safe when processes race); return its URL."""
    conn = await asyncpg.connect(admin_url)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
            except (asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
                pass  # another process created it a moment ago
    finally:
        await conn.close()
    return admin_url.replace("/postgres?", f"/{name}?", 1)


async def resolve_database_url(database_url: str | None, data_dir: Path) -> str:
    """The configured URL, or the embedded server's (started off the event loop)."""
    if database_url:
        return database_url
    admin_url = await asyncio.to_thread(start_embedded_server, data_dir)
    return await ensure_database(admin_url, EMBEDDED_DATABASE)


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(
            typename, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


async def keep_session(conn: asyncpg.Connection) -> None:
    """Pool reset that keeps the session as it is.

    asyncpg's default reset sends `RESET ALL; UNLISTEN *; ...` on every release: a
    round trip per query for Easel. Pooled connections never change session state
    (migrations and LISTEN use their own connections); an open transaction is still
    rolled back by asyncpg before this runs.
    """


async def create_pool(url: str, *, max_size: int = 10, init: object = None) -> asyncpg.Pool:
    """An asyncpg pool whose JSON columns decode to Python objects."""
    pool = await asyncpg.create_pool(
        url,
        min_size=1,
        max_size=max_size,
        init=init or _init_connection,
        reset=keep_session,
        command_timeout=60,
    )
    assert pool is not None
    return pool
