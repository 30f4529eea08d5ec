"""A private PostgreSQL a test may stop and start, as an operator's `pg_ctl` would.

pgserver ships the server binaries (pg_ctl, initdb); it runs them as an unprivileged
system user of its own when the test runs as root (postgres refuses root), and the
server listens on a Unix socket only, in the same folder after a restart, so the
URL the Easel processes hold stays valid across the outage.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import asyncpg


class RestartablePostgres:
    """A server of its own in `data_dir` (the test run's shared server is left alone)."""

    def __init__(self, data_dir: Path) -> None:
        import pgserver
        from pgserver._commands import pg_ctl

        self._pg_ctl = pg_ctl
        self.server = pgserver.get_server(data_dir, cleanup_mode="stop")
        info = self.server.get_postmaster_info()
        self.socket_dir = info.socket_dir
        self.admin_url: str = self.server.get_uri()

    def _ctl(self, *args: str) -> None:
        self._pg_ctl(list(args), pgdata=self.server.pgdata, user=self.server.system_user,
                     timeout=60)

    async def stop(self) -> None:
        """`pg_ctl stop -m fast`: every connection is cut, new ones are refused."""
        await asyncio.to_thread(self._ctl, "-w", "-m", "fast", "stop")

    async def start(self) -> None:
        """`pg_ctl start` on the same socket folder; returns once it accepts connections."""
        await asyncio.to_thread(
            self._ctl, "-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}",
            "-l", str(self.server.log), "start")

    async def database(self, name: str) -> str:
        """Create database `name`, migrated; return its URL."""
        from bot.db import ensure_database
        from bot.migrate import migrate

        url = await ensure_database(self.admin_url, name)
        conn = await asyncpg.connect(url)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        return url

    def close(self) -> None:
        # pgserver's cleanup stops only the postmaster it started itself; after a restart
        # that one is gone, so stop whatever runs on this data directory first.
        with contextlib.suppress(Exception):
            self._ctl("-w", "-m", "fast", "stop")
        with contextlib.suppress(Exception):
            self.server.cleanup()
