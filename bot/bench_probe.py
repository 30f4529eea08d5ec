"""What `easel bench` reads around its clock: CPU time from /proc, commits from pg_stat.

CPU is `utime + stime` from `/proc/<pid>/stat` (every thread of the process, the store's
worker threads included; `schedstat` would count the main thread only), so the figures
hold on a shared, noisy machine better than wall time does. Postgres processes are only readable
when the server runs on this machine (the embedded default); otherwise they are None.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import asyncpg

CLOCK_TICK_S = 1 / os.sysconf("SC_CLK_TCK")

BACKENDS = "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
COMMITS = "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
WAL_SYNCS = "SELECT wal_sync FROM pg_stat_wal"
UPDATES = """SELECT coalesce(sum(n_tup_upd), 0) AS updates, coalesce(sum(n_tup_hot_upd), 0) AS hot
             FROM pg_stat_user_tables WHERE relname = 'generations'"""


def cpu_s(pid: int) -> float | None:
    """Seconds process `pid` has spent on a CPU so far, or None if it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) * CLOCK_TICK_S
    except (OSError, ValueError, IndexError):
        return None


def _parent_pid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rpartition(")")[2].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _children(parent: int) -> list[int]:
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit() and _parent_pid(int(name)) == parent:
            pids.append(int(name))
    return pids


@dataclass
class Sample:
    """One reading: CPU seconds per process, and the database's counters."""

    easel: dict[int, float] = field(default_factory=dict)
    backends: dict[int, float] = field(default_factory=dict)
    server: dict[int, float] = field(default_factory=dict)
    commits: int = 0
    wal_syncs: int | None = None
    updates: int = 0
    hot_updates: int = 0


@dataclass(frozen=True)
class Figures:
    """What changed between two samples."""

    easel_cpu_s: float
    backend_cpu_s: float | None
    server_cpu_s: float | None
    commits: int
    wal_syncs: int | None
    updates: int
    hot_updates: int


async def _flushed_stats(conn: asyncpg.Connection) -> None:
    # Other backends report their counters within about a second of going idle (PG 15+);
    # this connection's own are forced out, and the snapshot is taken afresh.
    try:
        await conn.execute("SELECT pg_stat_force_next_flush()")
    except asyncpg.PostgresError:
        pass
    await conn.execute("SELECT pg_stat_clear_snapshot()")


async def sample(conn: asyncpg.Connection, easel_pids: list[int]) -> Sample:
    """Read every counter now (`conn` is a connection to the benchmarked database)."""
    await _flushed_stats(conn)
    taken = Sample(commits=int(await conn.fetchval(COMMITS) or 0))
    updated = await conn.fetchrow(UPDATES)
    assert updated is not None
    taken.updates, taken.hot_updates = int(updated["updates"]), int(updated["hot"])
    try:
        taken.wal_syncs = int(await conn.fetchval(WAL_SYNCS))
    except asyncpg.PostgresError:  # before PG 14
        taken.wal_syncs = None
    for pid in easel_pids:
        if (seconds := cpu_s(pid)) is not None:
            taken.easel[pid] = seconds
    own = await conn.fetchval("SELECT pg_backend_pid()")
    for row in await conn.fetch(BACKENDS):
        if row["pid"] != own and (seconds := cpu_s(row["pid"])) is not None:
            taken.backends[row["pid"]] = seconds
    postmaster = _parent_pid(own) if cpu_s(own) is not None else None
    if postmaster is not None:
        for pid in _children(postmaster):
            if pid != own and (seconds := cpu_s(pid)) is not None:
                taken.server[pid] = seconds
    return taken


def difference(before: Sample, after: Sample) -> Figures:
    """CPU spent and commits made between `before` and `after`.

    A backend that started in between counts from zero (its connection set-up is part
    of the work); one that ended in between is lost, so take `after` before pools close.
    """

    def spent(a: dict[int, float], b: dict[int, float]) -> float:
        return sum(seconds - a.get(pid, 0.0) for pid, seconds in b.items())

    return Figures(
        easel_cpu_s=spent(before.easel, after.easel),
        backend_cpu_s=spent(before.backends, after.backends) if after.backends else None,
        server_cpu_s=spent(before.server, after.server) if after.server else None,
        commits=after.commits - before.commits,
        updates=after.updates - before.updates,
        hot_updates=after.hot_updates - before.hot_updates,
        wal_syncs=(after.wal_syncs - before.wal_syncs
                   if after.wal_syncs is not None and before.wal_syncs is not None else None),
    )


def cpu_lines(figures: Figures, generations: int) -> list[str]:
    """The per-generation CPU and commit lines of the report."""
    n = max(1, generations)

    def ms(seconds: float | None) -> str:
        return "n/a (server not on this machine)" if seconds is None else (
            f"{seconds * 1000 / n:.2f} ms")

    total = (figures.easel_cpu_s + figures.backend_cpu_s
             if figures.backend_cpu_s is not None else None)
    lines = [
        f"  CPU/gen Easel        {ms(figures.easel_cpu_s)}  (every Easel process, from /proc)",
        f"  CPU/gen Postgres     {ms(figures.backend_cpu_s)}  (this database's backends)",
        f"  CPU/gen together     {ms(total)}",
        f"  CPU/gen PG server    {ms(figures.server_cpu_s)}  (all server processes: WAL "
        "writer, autovacuum, other databases' backends too)",
        f"  commits/gen          {figures.commits / n:.2f}  (pg_stat_database xact_commit, "
        "read-only ones included)",
    ]
    lines.append(f"  generation updates   {figures.updates / n:.2f}/gen, "
                 f"{100 * figures.hot_updates / max(1, figures.updates):.0f} % HOT "
                 "(pg_stat_user_tables)")
    if figures.wal_syncs is not None:
        lines.append(f"  WAL syncs/gen        {figures.wal_syncs / n:.2f}  (pg_stat_wal, whole "
                     "server: durable flushes after group commit)")
    return lines
