"""The database: an embedded PostgreSQL (pgserver) when DATABASE_URL is unset, and the pool."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import asyncpg

from bot.settings import SettingsError

EMBEDDED_DATABASE = "easel"
CONNECT_TIMEOUT_S = 10.0
NO_PGSERVER = (
    "DATABASE_URL is not set and the embedded PostgreSQL (the pip package pgserver) is not "
    "installed: set DATABASE_URL to a PostgreSQL server, or `pip install pgserver`"
)


def redact_url(url: str) -> str:
    """`url` with its password (in the userinfo or a `password=` parameter) replaced by ***."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, host = netloc.rpartition("@")
            user, has_password, _ = userinfo.partition(":")
            netloc = f"{user}:***@{host}" if has_password else netloc
        query = "&".join(
            "password=***" if item.lower().startswith("password=") else item
            for item in parts.query.split("&")
        ) if parts.query else ""
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return "(a URL that cannot be parsed)"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is PostgreSQL running and listening there?)"
    if isinstance(exc, TimeoutError):
        return f"no answer within {CONNECT_TIMEOUT_S:.0f}s"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


async def connect(url: str, *, configured: bool) -> asyncpg.Connection:
    """One connection; a failure becomes one line naming DATABASE_URL (password hidden)."""
    try:
        return await asyncpg.connect(url, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError, asyncpg.PostgresError,
            asyncpg.InterfaceError) as exc:
        where = (f"DATABASE_URL ({redact_url(url)})" if configured
                 else "the embedded PostgreSQL")
        raise SettingsError(f"cannot connect to the database at {where}: {_reason(exc)}") from None


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
        try:
            import pgserver  # only the embedded path needs it
        except ImportError:
            raise SettingsError(NO_PGSERVER) from None

    data_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(  # type: ignore[attr-defined]
        data_dir / "postgres", cleanup_mode=None)
    uri: str = server.get_uri()
    return uri


async def ensure_database(admin_url: str, name: str) -> str:
    """Create database `name` if missing (safe when processes race); return its URL."""
    conn = await connect(admin_url, configured=False)
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
