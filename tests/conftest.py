"""Shared fixtures: one embedded PostgreSQL per test run, a fresh database per test.

The schema is migrated once into a template database; each test gets a copy
(CREATE DATABASE ... TEMPLATE), which takes a few milliseconds.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from bot.db import create_pool, ensure_database
from bot.migrate import migrate

TEMPLATE = "easel_template"
_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """The admin URL of a private server for this test run (or TEST_DATABASE_ADMIN_URL)."""
    if os.environ.get("TEST_DATABASE_ADMIN_URL"):
        yield os.environ["TEST_DATABASE_ADMIN_URL"]
        return
    import pgserver

    # Outside pytest's basetemp: a concurrent pytest run prunes old basetemp folders, and a
    # postmaster whose data directory lock file vanishes shuts itself down mid-run.
    data_dir = Path(tempfile.mkdtemp(prefix="easel-pg-"))
    server = pgserver.get_server(data_dir / "postgres", cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def template_url(pg_admin_url: str) -> str:
    async def build() -> str:
        conn = await asyncpg.connect(pg_admin_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}"')
        finally:
            await conn.close()
        url = await ensure_database(pg_admin_url, TEMPLATE)
        conn = await asyncpg.connect(url)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        return url

    return asyncio.run(build())


@pytest.fixture
async def database_url(pg_admin_url: str, template_url: str) -> AsyncIterator[str]:
    """A fresh, migrated database for one test."""
    name = f"t_{os.getpid()}_{next(_counter)}"
    conn = await asyncpg.connect(pg_admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
    finally:
        await conn.close()
    yield pg_admin_url.replace("/postgres?", f"/{name}?", 1)
    conn = await asyncpg.connect(pg_admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, max_size=20)
    yield pool
    await pool.close()


@pytest.fixture
def images_dir(tmp_path: Path) -> Path:
    path = tmp_path / "images"
    path.mkdir()
    return path
