"""`easel db status|stop`: the embedded PostgreSQL that keeps running between commands.

pgserver starts the server with `pg_ctl` and leaves it running (Easel asks for no
clean-up, so the next command starts in a second or two). PostgreSQL refuses to
run as root, so pgserver runs it as a system user `pgserver` when Easel runs as
root (containers); stopping it must use the same user, which is why a plain
`pg_ctl stop` as root is refused and this command is the way to stop it.
"""

from __future__ import annotations

import datetime
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.db import NO_PGSERVER
from bot.settings import SettingsError

ROOT_SYSTEM_USER = "pgserver"  # pgserver.postgres_server.PostgresServer.__init__


@dataclass(frozen=True)
class EmbeddedServer:
    pgdata: Path
    pid: int | None
    socket_dir: Path | None
    started_at: datetime.datetime | None

    @property
    def is_running(self) -> bool:
        return self.pid is not None


def _utils() -> Any:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs on XDG_RUNTIME_DIR, as in bot.db
        try:
            from pgserver import utils
        except ImportError:
            raise SettingsError(NO_PGSERVER) from None
    return utils


def embedded_server(data_dir: Path) -> EmbeddedServer:
    """What postmaster.pid says about the server under `data_dir/postgres` (never starts it)."""
    pgdata = data_dir / "postgres"
    info = _utils().PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
    if info is None or not info.is_running():
        return EmbeddedServer(pgdata, None, None, None)
    return EmbeddedServer(pgdata, info.pid, info.socket_dir, info.start_time)


def stop_embedded_server(data_dir: Path) -> bool:
    """Stop the server (fast shutdown: sessions are ended, nothing committed is lost).

    False when it was not running.
    """
    server = embedded_server(data_dir)
    if not server.is_running:
        return False
    from pgserver._commands import POSTGRES_BIN_PATH

    user = ROOT_SYSTEM_USER if os.geteuid() == 0 else None
    result = subprocess.run(
        [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(server.pgdata), "-w", "-m", "fast", "stop"],
        user=user, capture_output=True, text=True, timeout=60, check=False,
    )
    if result.returncode != 0:
        raise SettingsError(f"could not stop the embedded PostgreSQL in {server.pgdata}: "
                            f"{(result.stderr or result.stdout).strip().splitlines()[-1:]}")
    return True
