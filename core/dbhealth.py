"""Database outages as the long-running loops see them: back off, reconnect, say so once.

Every loop of a process (claim, heartbeat, listen, sweep) shares one `DatabaseHealth`:
the first loop to lose the database logs the outage, the first to reach it again logs
the recovery, and /readyz and the workers table show what it holds.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass

import asyncpg

log = logging.getLogger("easel.database")

BACKOFF_BASE_S = 0.1
# A short ceiling: the time from "the database is back" to "work resumes" is at most this.
BACKOFF_MAX_S = 2.0

# What a stopped, restarting or unreachable server raises: a refused or reset socket,
# a connection closed under a query, "the database system is starting up / shutting down".
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    # What asyncpg raises when the server goes away in the middle of a protocol exchange.
    asyncpg.exceptions.InternalClientError,
)


def is_connection_error(exc: BaseException) -> bool:
    """Whether `exc` means the database is unreachable (as opposed to a bug or a bad query)."""
    return isinstance(exc, CONNECTION_ERRORS)


def backoff_s(failures: int) -> float:
    """Exponential backoff with jitter for the `failures`-th retry in a row (1, 2, ...)."""
    ceiling = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** max(0, failures - 1))
    return random.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True)
class HealthSnapshot:
    """What /readyz and the workers table show."""

    is_up: bool
    down_for_s: float | None
    outages: int
    last_outage_s: float | None
    last_error: str | None


class DatabaseHealth:
    """One process's view of its database: up, or down since when (and how often it was)."""

    def __init__(self) -> None:
        self._down_since: float | None = None
        self._last_failure = float("-inf")
        self.outages = 0
        self.last_outage_s: float | None = None
        self.last_error: str | None = None

    @property
    def is_up(self) -> bool:
        return self._down_since is None

    def lost(self, where: str, exc: BaseException) -> None:
        """A loop could not reach the database; the first one of an outage logs it."""
        self.last_error = type(exc).__name__
        self._last_failure = time.monotonic()
        if self._down_since is not None:
            return
        self._down_since = time.monotonic()
        self.outages += 1
        log.warning("database unreachable (%s: %s); retrying with backoff", where,
                    type(exc).__name__)

    def reached(self, started_at: float) -> None:
        """A call begun at monotonic `started_at` reached the database; the first one begun
        after the last failure ends the outage (an older call that still got through while
        the server went down says nothing new)."""
        if self._down_since is None or started_at < self._last_failure:
            return
        self.last_outage_s = time.monotonic() - self._down_since
        self._down_since = None
        log.warning("database reachable again after %.1fs", self.last_outage_s)

    def snapshot(self) -> HealthSnapshot:
        down_for_s = None if self._down_since is None else time.monotonic() - self._down_since
        return HealthSnapshot(self.is_up, down_for_s, self.outages, self.last_outage_s,
                              self.last_error)


async def sleep_or(event: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, or less if `event` is set meanwhile."""
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except TimeoutError:
        pass
