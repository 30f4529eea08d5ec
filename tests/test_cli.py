"""The `easel` command: help, migrations (twice, and two at once), settings errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import asyncpg


def _easel(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ, **(env or {})},
    )


def _run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    process = _easel(*args, env=env)
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err


def test_help_lists_the_commands() -> None:
    code, out, _ = _run("--help")
    assert code == 0
    for command in ("chat", "run", "gateway", "worker", "web", "migrate", "credits", "models",
                    "status", "bench"):
        assert command in out


def test_a_bad_setting_is_one_line_naming_it() -> None:
    code, _, err = _run("models", env={"EASEL_STARTER_CREDITS": "abc"})
    assert code == 2
    assert err.strip().count("\n") == 0 and "EASEL_STARTER_CREDITS" in err
    assert "Traceback" not in err


async def test_two_migrations_at_once_then_nothing_pending(
    pg_admin_url: str, tmp_path: Path
) -> None:
    conn = await asyncpg.connect(pg_admin_url)
    try:
        await conn.execute('DROP DATABASE IF EXISTS "cli_migrate"')
        await conn.execute('CREATE DATABASE "cli_migrate"')
    finally:
        await conn.close()
    url = pg_admin_url.replace("/postgres?", "/cli_migrate?", 1)
    env = {"DATABASE_URL": url, "EASEL_DATA_DIR": str(tmp_path)}
    both = [_easel("migrate", env=env), _easel("migrate", env=env)]
    results = [(p.wait(timeout=120), p.communicate()[0]) for p in both]
    assert [code for code, _ in results] == [0, 0]
    assert sum("applied: 0001_schema" in out for _, out in results) == 1
    code, out, _ = _run("migrate", env=env)
    assert code == 0 and "nothing to migrate" in out
    conn = await asyncpg.connect(url)
    try:
        versions = [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")]
        tables = await conn.fetchval(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename = 'ledger'")
    finally:
        await conn.close()
    assert sorted(versions) == sorted(set(versions)) and "0001_schema" in versions
    assert tables == 1
