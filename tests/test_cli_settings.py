"""Every bad setting a newcomer or operator meets is one line naming it, a non-zero exit and no
traceback (issue 15); database connection problems name DATABASE_URL without its password."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.procs import EaselProcesses, Finished


@pytest.fixture
async def procs(tmp_path: Path) -> AsyncIterator[EaselProcesses]:
    processes = EaselProcesses(tmp_path / "logs", {"EASEL_DATA_DIR": str(tmp_path / "data"),
                                                   "AWS_EC2_METADATA_DISABLED": "true"})
    yield processes
    await processes.stop_all()


def assert_one_line_naming(result: Finished, setting: str, *, hidden: str | None = None) -> str:
    """The last stderr line names `setting`; no traceback; exit non-zero. Returns that line."""
    print(f"exit {result.returncode}: {result.stderr.strip()}")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    problem = lines[-1]
    # Only the offline-defaults note may come first (it says which embedded parts run).
    assert all(line.startswith("easel: running on offline defaults") for line in lines[:-1])
    assert setting in problem and problem.startswith("easel: ")
    if hidden is not None:
        assert hidden not in result.stderr + result.stdout
    return problem


async def test_bad_log_level(procs: EaselProcesses) -> None:
    result = await procs.run("models", env={"EASEL_LOG_LEVEL": "LOUD"})
    line = assert_one_line_naming(result, "EASEL_LOG_LEVEL")
    assert "DEBUG, INFO, WARNING" in line


async def test_mysql_database_url(procs: EaselProcesses) -> None:
    result = await procs.run("status", env={"DATABASE_URL": "mysql://easel:hunter22@db/easel"})
    line = assert_one_line_naming(result, "DATABASE_URL", hidden="hunter22")
    assert "PostgreSQL URL" in line


async def test_env_file_that_is_not_utf8(procs: EaselProcesses) -> None:
    (procs.cwd / ".env").write_bytes(b"EASEL_STARTER_CREDITS=5\nNAME=caf\xe9\n")
    result = await procs.run("models")
    line = assert_one_line_naming(result, ".env")
    assert "UTF-8" in line


async def test_discord_invite_without_token(procs: EaselProcesses) -> None:
    result = await procs.run("discord", "invite")
    assert_one_line_naming(result, "DISCORD_TOKEN")


async def test_default_model_whose_key_is_unset(procs: EaselProcesses) -> None:
    result = await procs.run("chat", "--prompt", "a fox", env={"EASEL_DEFAULT_MODEL": "gpt"})
    line = assert_one_line_naming(result, "EASEL_DEFAULT_MODEL")
    assert "OPENAI_API_KEY" in line


async def test_default_model_that_does_not_exist(procs: EaselProcesses) -> None:
    result = await procs.run("chat", "--prompt", "a fox", env={"EASEL_DEFAULT_MODEL": "nope"})
    assert_one_line_naming(result, "EASEL_DEFAULT_MODEL")


async def test_s3_without_credentials(procs: EaselProcesses) -> None:
    result = await procs.run("chat", "--prompt", "a fox", env={"S3_BUCKET": "images"})
    line = assert_one_line_naming(result, "S3_BUCKET")
    assert "AWS_ACCESS_KEY_ID" in line


async def test_slack_bot_token_alone(procs: EaselProcesses) -> None:
    result = await procs.run("gateway", env={"SLACK_BOT_TOKEN": "xoxb-1-2-secretbits"},
                             timeout_s=30)
    line = assert_one_line_naming(result, "SLACK_BOT_TOKEN", hidden="secretbits")
    assert "SLACK_APP_TOKEN" in line and "SLACK_SIGNING_SECRET" in line


async def test_unreachable_database_names_database_url(procs: EaselProcesses) -> None:
    from tests.procs import free_port

    url = f"postgresql://easel:hunter22@127.0.0.1:{free_port()}/easel"
    for command in (("status",), ("migrate",), ("credits", "show"), ("web",)):
        result = await procs.run(*command, env={"DATABASE_URL": url})
        line = assert_one_line_naming(result, "DATABASE_URL", hidden="hunter22")
        assert "easel:***@127.0.0.1" in line and "connection refused" in line


async def _fake_postgres_refusing_passwords(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Speaks PostgreSQL's wire protocol just far enough to fail a password, as a server does."""
    length = struct.unpack("!I", await reader.readexactly(4))[0]
    body = await reader.readexactly(length - 4)
    if struct.unpack("!I", body[:4])[0] == 80877103:  # SSLRequest: no TLS here
        writer.write(b"N")
        length = struct.unpack("!I", await reader.readexactly(4))[0]
        await reader.readexactly(length - 4)
    writer.write(b"R" + struct.pack("!II", 8, 3))  # AuthenticationCleartextPassword
    await writer.drain()
    await reader.readexactly(1)
    await reader.readexactly(struct.unpack("!I", await reader.readexactly(4))[0] - 4)
    fields = b"SFATAL\x00VFATAL\x00C28P01\x00Mpassword authentication failed for user \"easel\"\x00\x00"
    writer.write(b"E" + struct.pack("!I", len(fields) + 4) + fields)
    await writer.drain()
    writer.close()


async def test_wrong_password_names_database_url(procs: EaselProcesses) -> None:
    server = await asyncio.start_server(_fake_postgres_refusing_passwords, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        url = f"postgresql://easel:wrongpass9@127.0.0.1:{port}/easel?sslmode=disable"
        result = await procs.run("credits", "audit", env={"DATABASE_URL": url})
    finally:
        server.close()
    line = assert_one_line_naming(result, "DATABASE_URL", hidden="wrongpass9")
    assert "password authentication failed" in line


async def test_missing_database_names_database_url(procs: EaselProcesses, pg_admin_url: str) -> None:
    url = pg_admin_url.replace("/postgres?", "/no_such_db?", 1)
    result = await procs.run("status", env={"DATABASE_URL": url})
    line = assert_one_line_naming(result, "DATABASE_URL")
    assert "no_such_db" in line and "does not exist" in line


async def test_credits_grant_with_a_bare_platform_id(procs: EaselProcesses, database_url: str) -> None:
    import asyncpg

    from core.models import UserRef
    from core.sessions import upsert_user

    conn = await asyncpg.connect(database_url)
    try:
        for ref in (UserRef("slack", "T0TEAM", "U0XDAVE001"), UserRef("discord", "111", "4242"),
                    UserRef("discord", "111", "77"), UserRef("discord", "222", "77")):
            await upsert_user(conn, ref, 50)
    finally:
        await conn.close()
    env = {"DATABASE_URL": database_url}

    slack = await procs.run("credits", "grant", "slack:U0XDAVE001", "100", env=env)
    discord = await procs.run("credits", "grant", "discord:4242", "10", env=env)
    full = await procs.run("credits", "grant", "discord:222:77", "5", env=env)
    ambiguous = await procs.run("credits", "grant", "discord:77", "100", env=env)
    unknown = await procs.run("credits", "grant", "slack:U0NOBODY", "100", env=env)
    shown = await procs.run("credits", "show", "slack:U0XDAVE001", env=env)
    for result in (slack, discord, full, ambiguous, unknown, shown):
        print(result.returncode, (result.stdout + result.stderr).strip())
    assert slack.returncode == 0 and "slack:T0TEAM:U0XDAVE001: 150 available" in slack.stdout
    assert discord.returncode == 0 and "discord:111:4242: 60 available" in discord.stdout
    assert full.returncode == 0 and "discord:222:77: 55 available" in full.stdout
    assert ambiguous.returncode == 2 and "discord:111:77" in ambiguous.stderr
    assert "discord:222:77" in ambiguous.stderr and "Traceback" not in ambiguous.stderr
    assert unknown.returncode == 2 and "has not used Easel yet" in unknown.stderr
    assert shown.returncode == 0 and "granted 150, available 150" in shown.stdout

    conn = await asyncpg.connect(database_url)
    try:
        users = await conn.fetch("SELECT platform, workspace, external_id FROM users ORDER BY id")
        balances = dict(await conn.fetch(
            "SELECT u.platform || ':' || u.workspace || ':' || u.external_id, a.available "
            "FROM users u JOIN accounts a ON a.user_id = u.id"))
    finally:
        await conn.close()
    assert len(users) == 4  # no phantom account with workspace ''
    assert balances == {"slack:T0TEAM:U0XDAVE001": 150, "discord:111:4242": 60,
                        "discord:111:77": 50, "discord:222:77": 55}


async def test_db_status_and_stop_for_the_embedded_server(procs: EaselProcesses) -> None:
    before = await procs.run("db", "status")
    assert before.returncode == 0 and "not running" in before.stdout
    assert (await procs.run("credits", "show")).returncode == 0  # starts the embedded server
    running = await procs.run("db", "status")
    stopped = await procs.run("db", "stop")
    after = await procs.run("db", "status")
    again = await procs.run("db", "stop")
    for result in (before, running, stopped, after, again):
        print(result.returncode, result.stdout.strip(), result.stderr.strip()[-300:])
    assert running.returncode == 0 and "running (pid" in running.stdout
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert "not running" in after.stdout and "was not running" in again.stdout
