"""The operator's view: the queue, the failures of the last day (dead letters), retry, spend.

Every query is bounded: counts come from the partial status indexes, failures from the
small `generations_failed` index over a 24-hour window, the day's spend from the
ledger's BRIN index over the same window; balances are one row per person (accounts),
never per generation. A retry is the one admin action here, and it writes rows only:
a new reservation and its ledger entry for the person, a new generation linked to the
failed one (`retry_of`), and an event on each of the two.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from core import credits
from core.config import CoreConfig
from core.errors import InsufficientCredits, NotFound, NotRetryable
from core.generations import NOTIFY_CHANNEL

WINDOW = "interval '24 hours'"
MAX_FAILED = 100
MAX_ROWS = 50

COUNTS = f"""
SELECT
    (SELECT count(*) FROM generations WHERE status = 'queued') AS queued,
    (SELECT count(*) FROM generations WHERE status = 'running') AS running,
    (SELECT count(*) FROM generations WHERE status = 'waiting') AS waiting,
    (SELECT count(*) FROM generations WHERE status = 'failed'
       AND finished_at > now() - {WINDOW}) AS failed_24h
"""

FAILED = f"""
SELECT g.id, g.model, g.error_kind, g.error, g.attempts, g.cost, g.finished_at, g.session_id,
    u.platform, u.workspace, u.external_id, u.display_name,
    r.id AS retry_id, r.status::text AS retry_status
FROM generations g
JOIN users u ON u.id = g.user_id
LEFT JOIN generations r ON r.retry_of = g.id
WHERE g.status = 'failed' AND g.finished_at > now() - {WINDOW}
ORDER BY g.finished_at DESC, g.id DESC
LIMIT $1
"""

# The day's spend per person: confirmed reservations of the window (BRIN on created_at).
SPENT_TODAY = f"""
SELECT user_id, sum(amount) AS spent_24h FROM ledger
WHERE kind = 'confirm' AND created_at > now() - {WINDOW} GROUP BY user_id
"""

PEOPLE = f"""
SELECT u.id, u.platform, u.workspace, u.external_id, u.display_name,
    a.granted, a.available, a.reserved, a.spent, coalesce(d.spent_24h, 0) AS spent_24h
FROM accounts a JOIN users u ON u.id = a.user_id
LEFT JOIN ({SPENT_TODAY}) d ON d.user_id = a.user_id
ORDER BY coalesce(d.spent_24h, 0) DESC, a.spent DESC, u.id
LIMIT $1
"""

WORKSPACES = f"""
SELECT u.platform, u.workspace, count(*) AS people, sum(a.granted) AS granted,
    sum(a.available) AS available, sum(a.reserved) AS reserved, sum(a.spent) AS spent,
    sum(coalesce(d.spent_24h, 0)) AS spent_24h
FROM accounts a JOIN users u ON u.id = a.user_id
LEFT JOIN ({SPENT_TODAY}) d ON d.user_id = a.user_id
GROUP BY u.platform, u.workspace
ORDER BY sum(a.spent) DESC, u.platform, u.workspace
LIMIT $1
"""

LOCK_FAILED = "SELECT id, status::text AS status, user_id, cost FROM generations WHERE id = $1 FOR UPDATE"
EXISTING_RETRY = "SELECT id FROM generations WHERE retry_of = $1"

# $1 failed generation, $2 its person, $3 cost, $4 max attempts, $5 timeout, $6 reservation
# ttl, $7 ledger reason, $8 who retried. Reserves and queues in one statement, like submit;
# the event on the failed generation and on the retry are the admin action's record.
RETRY = f"""
WITH {credits.debit_cte("$2", "$3")}, rid AS (
    SELECT nextval(pg_get_serial_sequence('reservations', 'id')) AS id FROM debit
), g AS (
    INSERT INTO generations (session_id, message_id, user_id, platform, source_event, model,
        params, intent, user_prompt, parent_id, max_attempts, deadline_at, reservation_id,
        cost, retry_of)
    SELECT o.session_id, o.message_id, o.user_id, o.platform, 'retry:' || o.id, o.model,
        o.params, o.intent, o.user_prompt, o.parent_id, $4, now() + make_interval(secs => $5),
        rid.id, $3, o.id
    FROM generations o, rid WHERE o.id = $1
    RETURNING id AS generation_id, reservation_id AS id
), {credits.reservation_ctes("g", "$2", "$3", "$6", "$7")}, events AS (
    INSERT INTO generation_events (generation_id, stage, detail)
    SELECT $1, 'admin_retry', jsonb_build_object('retried_as', g.generation_id, 'by', $8::text)
    FROM g
    UNION ALL
    SELECT g.generation_id, 'retry_of', jsonb_build_object('failed', $1::bigint, 'by', $8::text)
    FROM g
)
SELECT (SELECT generation_id FROM g) AS generation_id, EXISTS (SELECT 1 FROM debit) AS debited,
       (SELECT available FROM accounts WHERE user_id = $2) AS available,
       (SELECT pg_notify($9, generation_id::text) FROM g) AS notified
"""


@dataclass(frozen=True)
class Person:
    """Whose a row is: platform, workspace and id, with the name they go by."""

    platform: str
    workspace: str
    external_id: str
    display_name: str

    @property
    def label(self) -> str:
        where = ":".join(p for p in (self.platform, self.workspace, self.external_id) if p)
        return f"{self.display_name} ({where})" if self.display_name else where


@dataclass(frozen=True)
class FailedGeneration:
    """A dead letter: a failed generation of the window, why, and its retry if any."""

    id: int
    model: str
    error_kind: str | None
    error: str | None
    attempts: int
    cost: int
    finished_at: datetime
    session_id: int
    person: Person
    retry_id: int | None
    retry_status: str | None


@dataclass(frozen=True)
class Spend:
    """Credits of a person or a workspace: the balance now and the last day's spend."""

    name: str
    people: int
    granted: int
    available: int
    reserved: int
    spent: int
    spent_24h: int


@dataclass(frozen=True)
class Overview:
    queued: int
    running: int
    waiting: int
    failed_24h: int
    failed: tuple[FailedGeneration, ...]
    people: tuple[Spend, ...]
    workspaces: tuple[Spend, ...]


@dataclass(frozen=True)
class Retried:
    generation_id: int
    already: bool = False  # a retry of it existed: nothing new was reserved


async def overview(pool: asyncpg.Pool) -> Overview:
    """What the admin page shows, in four bounded queries."""
    async with pool.acquire() as conn:
        counts = await conn.fetchrow(COUNTS)
        failed = await conn.fetch(FAILED, MAX_FAILED)
        people = await conn.fetch(PEOPLE, MAX_ROWS)
        workspaces = await conn.fetch(WORKSPACES, MAX_ROWS)
    assert counts is not None
    return Overview(
        counts["queued"], counts["running"], counts["waiting"], counts["failed_24h"],
        tuple(_failed(r) for r in failed),
        tuple(_spend(_person(r).label, 1, r) for r in people),
        tuple(_spend(":".join(p for p in (r["platform"], r["workspace"]) if p), r["people"], r)
              for r in workspaces),
    )


async def retry_failed(
    pool: asyncpg.Pool, config: CoreConfig, generation_id: int, *, by: str
) -> Retried:
    """Queue a failed generation again as a new one (a new reservation of its cost for its
    person), linked to it; a generation retried before answers its retry. `by` names the
    admin in the events and the ledger."""
    async with pool.acquire() as conn, conn.transaction():
        old = await conn.fetchrow(LOCK_FAILED, generation_id)  # one retry at a time
        if old is None:
            raise NotFound()
        existing = await conn.fetchval(EXISTING_RETRY, generation_id)
        if existing is not None:
            return Retried(int(existing), already=True)
        if old["status"] != "failed":
            raise NotRetryable()
        row = await conn.fetchrow(
            RETRY, generation_id, old["user_id"], old["cost"], config.max_attempts,
            config.generation_timeout_s, config.reservation_ttl_s,
            f"retry of #{generation_id} by {by}", by, NOTIFY_CHANNEL,
        )
        assert row is not None
        if not row["debited"]:
            raise InsufficientCredits(int(old["cost"]), int(row["available"] or 0))
        return Retried(int(row["generation_id"]))


def _person(r: asyncpg.Record) -> Person:
    return Person(r["platform"], r["workspace"], r["external_id"], r["display_name"])


def _failed(r: asyncpg.Record) -> FailedGeneration:
    return FailedGeneration(
        r["id"], r["model"], r["error_kind"], r["error"], r["attempts"], r["cost"],
        r["finished_at"], r["session_id"], _person(r), r["retry_id"], r["retry_status"],
    )


def _spend(name: str, people: int, r: asyncpg.Record) -> Spend:
    return Spend(name, int(people), int(r["granted"]), int(r["available"]), int(r["reserved"]),
                 int(r["spent"]), int(r["spent_24h"]))
