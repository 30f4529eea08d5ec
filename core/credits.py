"""Credits: accounts, an append-only ledger and two-phase reservations.

Like TigerBeetle's pending transfers: `reserve` moves credits from `available`
to `reserved` in one conditional statement; `confirm` and `release` settle a
pending reservation exactly once (only a pending row passes their condition).
Each settle is one statement, so it is atomic without an explicit transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from core.errors import InsufficientCredits


@dataclass(frozen=True)
class Balance:
    user_id: int
    granted: int
    available: int
    reserved: int
    spent: int

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Balance:
        return cls(
            row["user_id"], row["granted"], row["available"], row["reserved"], row["spent"]
        )


def debit_cte(user: str, amount: str) -> str:
    """CTE `debit`: moves `amount` from available to reserved, only if it is there."""
    return f"""debit AS (
    UPDATE accounts SET available = available - {amount}, reserved = reserved + {amount},
        updated_at = now()
    WHERE user_id = {user} AND available >= {amount}
    RETURNING user_id
)"""


def reservation_ctes(source: str, user: str, amount: str, ttl_s: str, reason: str) -> str:
    """CTEs `reserved` and `reserve_entry`: the pending reservation for each row of `source`
    (which gives `id` and `generation_id`) and its ledger entry."""
    return f"""reserved AS (
    INSERT INTO reservations (id, user_id, amount, expires_at, generation_id)
    SELECT id, {user}, {amount}, now() + make_interval(secs => {ttl_s}), generation_id
    FROM {source}
    RETURNING id, user_id, amount, generation_id
), reserve_entry AS (
    INSERT INTO ledger (user_id, kind, amount, reason, reservation_id, generation_id,
                        idempotency_key)
    SELECT user_id, 'reserve', amount, {reason}, id, generation_id, 'reserve:' || id
    FROM reserved
)"""


# Without a generation (admin tools, tests); submit composes the same pieces with one.
RESERVE = f"""
WITH {debit_cte("$1", "$2")}, new_reservation AS (
    SELECT nextval(pg_get_serial_sequence('reservations', 'id')) AS id,
           NULL::bigint AS generation_id
    FROM debit
), {reservation_ctes("new_reservation", "$1", "$2", "$3", "$4")}
SELECT (SELECT id FROM reserved) AS reservation_id,
       (SELECT available FROM accounts WHERE user_id = $1) AS available
"""

def settle_ctes(source: str, outcome: str, reason_param: str) -> str:
    """CTEs that settle the pending reservation named by `source`.reservation_id.

    `outcome` is 'confirmed' or 'released' (a constant, never user input). Only a
    pending row passes the update, so a second settle changes nothing. Composed
    into the statements that finish a generation, so finishing and settling are
    one atomic statement. Defines CTE `settled` (the settled reservation).
    """
    assert outcome in ("confirmed", "released")
    kind = "confirm" if outcome == "confirmed" else "release"
    spent = "r.amount" if outcome == "confirmed" else "0"
    returned = "r.amount" if outcome == "released" else "0"
    return f"""
settled AS (
    UPDATE reservations SET status = '{outcome}', settled_at = now()
    WHERE id = (SELECT reservation_id FROM {source}) AND status = 'pending'
    RETURNING id, user_id, amount, generation_id
), settled_account AS (
    UPDATE accounts SET reserved = reserved - r.amount, spent = spent + {spent},
        available = available + {returned}, updated_at = now()
    FROM settled r WHERE accounts.user_id = r.user_id
    RETURNING accounts.user_id
), settled_ledger AS (
    INSERT INTO ledger (user_id, kind, amount, reason, reservation_id, generation_id,
                        idempotency_key)
    SELECT user_id, '{kind}', amount, {reason_param}, id, generation_id, '{kind}:' || id
    FROM settled
)"""


def _settle_statement(outcome: str) -> str:
    return (
        "WITH target AS (SELECT $1::bigint AS reservation_id), "
        + settle_ctes("target", outcome, "$2").strip()
        + "\nSELECT count(*) FROM settled"
    )


CONFIRM = _settle_statement("confirmed")
RELEASE = _settle_statement("released")

ADJUST = """
WITH a AS (
    UPDATE accounts SET granted = granted + $2, available = available + $2, updated_at = now()
    WHERE user_id = $1 AND available + $2 >= 0
    RETURNING user_id
)
INSERT INTO ledger (user_id, kind, amount, reason, idempotency_key)
SELECT user_id, CASE WHEN $2 >= 0 THEN 'grant' ELSE 'deduct' END::ledger_kind, abs($2), $3, $4
FROM a
RETURNING id
"""

BALANCE = "SELECT user_id, granted, available, reserved, spent FROM accounts WHERE user_id = $1"


async def reserve(
    conn: asyncpg.Connection, user_id: int, amount: int, *, reason: str, ttl_s: float
) -> int:
    """Move `amount` from available to reserved; return the reservation id.

    Raises InsufficientCredits (and changes nothing) when the balance is short.
    """
    row = await conn.fetchrow(RESERVE, user_id, amount, ttl_s, reason)
    assert row is not None
    if row["reservation_id"] is None:
        raise InsufficientCredits(amount, int(row["available"] or 0))
    return int(row["reservation_id"])


async def confirm(conn: asyncpg.Connection, reservation_id: int, reason: str = "") -> bool:
    """Settle as spent; False (and no change) when it was already settled."""
    return bool(await conn.fetchval(CONFIRM, reservation_id, reason))


async def release(conn: asyncpg.Connection, reservation_id: int, reason: str = "") -> bool:
    """Return to available; False (and no change) when it was already settled."""
    return bool(await conn.fetchval(RELEASE, reservation_id, reason))


async def adjust(
    conn: asyncpg.Connection, user_id: int, amount: int, *, reason: str, key: str
) -> bool:
    """An admin grant (amount > 0) or deduction (< 0) recorded in the ledger.

    A deduction larger than what is available changes nothing and returns False;
    a repeated `key` is rejected by the ledger's unique key.
    """
    async with conn.transaction():
        return await conn.fetchval(ADJUST, user_id, amount, reason, key) is not None


async def balance(conn: asyncpg.Connection, user_id: int) -> Balance | None:
    """The user's account, or None when they have none yet."""
    row = await conn.fetchrow(BALANCE, user_id)
    return Balance.from_row(row) if row else None
