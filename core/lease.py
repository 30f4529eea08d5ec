"""A worker's hold on one generation, as far as the worker knows.

The database is the judge (every write is fenced on `claims`), but a worker that was
stalled (a long GC pause, SIGSTOP, a laptop lid) must not wake up and touch the
outside world on a claim it no longer holds. So before each side effect outside
Postgres (a status edit, an object write, a chat post) the pipeline asks its `Claim`:
while the last renewal is fresh, yes at once; after that, only if a fenced renewal
in the database still succeeds.
"""

from __future__ import annotations

import time

import asyncpg

# Extends the lease only while this claim still holds the job: None back means it is lost.
CONFIRM_LEASE = """
UPDATE generations SET locked_until = least(now() + make_interval(secs => $3),
                                            deadline_at + make_interval(secs => $3))
WHERE id = $1 AND claims = $2 AND status = 'running'
RETURNING id
"""


class Claim:
    """One job held by one worker: when its lease was last renewed, and whether it let go."""

    def __init__(self, generation_id: int, claims: int, lease_s: float) -> None:
        self.generation_id = generation_id
        self.claims = claims
        self.lease_s = lease_s
        self.valid_until = time.monotonic() + lease_s
        # Set when the job's own task finished, parked or requeued it (so a heartbeat
        # that finds no lease does not take that for a lost claim).
        self.released = False
        self.lost = False

    def renewed(self, sent_at: float) -> None:
        """A fenced write sent at monotonic time `sent_at` succeeded: the lease runs from then."""
        self.valid_until = max(self.valid_until, sent_at + self.lease_s)

    @property
    def is_fresh(self) -> bool:
        """Whether the lease surely still holds (renewed recently enough, by our own clock)."""
        return not self.lost and time.monotonic() < self.valid_until - self.lease_s / 3

    async def confirm(self, pool: asyncpg.Pool) -> bool:
        """True while this claim holds the job (asking the database if the lease is not fresh)."""
        if self.lost:
            return False
        if self.is_fresh:
            return True
        sent_at = time.monotonic()
        row = await pool.fetchval(CONFIRM_LEASE, self.generation_id, self.claims, self.lease_s)
        if row is None:
            self.lost = True
            return False
        self.renewed(sent_at)
        return True
