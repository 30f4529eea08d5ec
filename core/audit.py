"""`easel credits audit`: check the credit invariants against the rows.

One repeatable-read snapshot, so work finishing during the audit cannot look like a
violation; rows are streamed with a cursor, so memory stays flat however many
accounts there are (the time is O(accounts + ledger), and the command prints it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg

LEDGER_VS_ACCOUNTS = """
WITH sums AS (
    SELECT user_id,
        sum(amount) FILTER (WHERE kind = 'grant') AS grants,
        sum(amount) FILTER (WHERE kind = 'deduct') AS deducts,
        sum(amount) FILTER (WHERE kind = 'reserve') AS reserves,
        sum(amount) FILTER (WHERE kind = 'confirm') AS confirms,
        sum(amount) FILTER (WHERE kind = 'release') AS releases
    FROM ledger GROUP BY user_id
)
SELECT a.user_id, a.granted, a.available, a.reserved, a.spent,
    coalesce(s.grants, 0) - coalesce(s.deducts, 0) AS l_granted,
    coalesce(s.grants, 0) - coalesce(s.deducts, 0) - coalesce(s.reserves, 0)
        + coalesce(s.releases, 0) AS l_available,
    coalesce(s.reserves, 0) - coalesce(s.confirms, 0) - coalesce(s.releases, 0) AS l_reserved,
    coalesce(s.confirms, 0) AS l_spent,
    (SELECT coalesce(sum(amount), 0) FROM reservations r
      WHERE r.user_id = a.user_id AND r.status = 'pending') AS pending_sum
FROM accounts a LEFT JOIN sums s USING (user_id)
"""

RESERVATION_ENTRIES = """
SELECT r.id, r.status,
    count(*) FILTER (WHERE l.kind = 'reserve') AS reserves,
    count(*) FILTER (WHERE l.kind IN ('confirm', 'release')) AS settles,
    bool_or(l.kind = 'confirm') AS confirmed, bool_or(l.kind = 'release') AS released
FROM reservations r LEFT JOIN ledger l ON l.reservation_id = r.id
GROUP BY r.id, r.status
HAVING count(*) FILTER (WHERE l.kind = 'reserve') <> 1
    OR (r.status = 'pending' AND count(*) FILTER (WHERE l.kind IN ('confirm', 'release')) <> 0)
    OR (r.status <> 'pending' AND count(*) FILTER (WHERE l.kind IN ('confirm', 'release')) <> 1)
    OR (r.status = 'confirmed' AND NOT coalesce(bool_or(l.kind = 'confirm'), false))
    OR (r.status = 'released' AND NOT coalesce(bool_or(l.kind = 'release'), false))
"""

GENERATION_SETTLEMENT = """
SELECT g.id, g.status, r.status AS reservation_status
FROM generations g JOIN reservations r ON r.id = g.reservation_id
WHERE (g.status = 'succeeded' AND r.status <> 'confirmed')
   OR (g.status IN ('failed', 'cancelled') AND r.status <> 'released')
   OR (g.status IN ('queued', 'running', 'waiting') AND r.status <> 'pending')
"""


# The ledger and the event log carry no foreign keys (migration 0009: they cost a lookup
# and a row lock per entry on the hot path); the statements that write them take the
# ids from the rows they just wrote, and this is the check that they always did.
ORPHANS = """
SELECT 'ledger entry ' || l.id || ' names user ' || l.user_id || ', who does not exist' AS problem
FROM ledger l WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = l.user_id)
UNION ALL
SELECT 'ledger entry ' || l.id || ' names reservation ' || l.reservation_id
    || ', which does not exist'
FROM ledger l WHERE l.reservation_id IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM reservations r WHERE r.id = l.reservation_id)
UNION ALL
SELECT 'ledger entry ' || l.id || ' names generation ' || l.generation_id
    || ', which does not exist'
FROM ledger l WHERE l.generation_id IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM generations g WHERE g.id = l.generation_id)
"""

BATCH_ROWS = 1000


async def audit(conn: asyncpg.Connection, *, include_in_flight: bool = True) -> list[str]:
    """Every violation of the credit invariants, as sentences (empty when all hold)."""
    return [problem async for problem in violations(conn, include_in_flight=include_in_flight)]


async def violations(
    conn: asyncpg.Connection, *, include_in_flight: bool = True
) -> AsyncIterator[str]:
    """The violations as they are found, read through cursors in one snapshot."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        async for row in conn.cursor(LEDGER_VS_ACCOUNTS, prefetch=BATCH_ROWS):
            for problem in _account_problems(row):
                yield problem
        async for row in conn.cursor(RESERVATION_ENTRIES, prefetch=BATCH_ROWS):
            yield (
                f"reservation {row['id']} ({row['status']}): {row['reserves']} reserve and "
                f"{row['settles']} settle entries in the ledger"
            )
        async for row in conn.cursor(GENERATION_SETTLEMENT, prefetch=BATCH_ROWS):
            if not include_in_flight and row["status"] in ("queued", "running", "waiting"):
                continue
            yield (
                f"generation {row['id']} is {row['status']} but its reservation is "
                f"{row['reservation_status']}"
            )
        async for row in conn.cursor(ORPHANS, prefetch=BATCH_ROWS):
            yield row["problem"]


def _account_problems(row: asyncpg.Record) -> list[str]:
    user = row["user_id"]
    problems = []
    if row["granted"] != row["available"] + row["reserved"] + row["spent"]:
        problems.append(f"user {user}: granted != available + reserved + spent")
    for column in ("granted", "available", "reserved", "spent"):
        if row[column] != row[f"l_{column}"]:
            problems.append(
                f"user {user}: {column} is {row[column]} but the ledger says "
                f"{row[f'l_{column}']}"
            )
    if row["reserved"] != row["pending_sum"]:
        problems.append(
            f"user {user}: reserved is {row['reserved']} but pending reservations "
            f"sum to {row['pending_sum']}"
        )
    return problems
