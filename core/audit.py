"""`easel credits audit`: check the credit invariants against the rows."""

from __future__ import annotations

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


async def audit(conn: asyncpg.Connection, *, include_in_flight: bool = True) -> list[str]:
    """Every violation of the credit invariants, as sentences (empty when all hold)."""
    problems: list[str] = []
    for row in await conn.fetch(LEDGER_VS_ACCOUNTS):
        user = row["user_id"]
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
    for row in await conn.fetch(RESERVATION_ENTRIES):
        problems.append(
            f"reservation {row['id']} ({row['status']}): {row['reserves']} reserve and "
            f"{row['settles']} settle entries in the ledger"
        )
    for row in await conn.fetch(GENERATION_SETTLEMENT):
        if not include_in_flight and row["status"] in ("queued", "running", "waiting"):
            continue
        problems.append(
            f"generation {row['id']} is {row['status']} but its reservation is "
            f"{row['reservation_status']}"
        )
    return problems
