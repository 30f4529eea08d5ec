"""A person's history: their sessions across threads, newest first, each with its generations.

What the studio's first panel lists. A person's grant covers the sessions they asked
something in; a session grant covers that one session.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from core.links import Grant

MAX_SESSIONS = 50
MAX_GENERATIONS = 400

SESSIONS = """
SELECT s.id, s.platform, s.channel, s.thread, s.created_at,
    coalesce(max(g.created_at), s.created_at) AS last_at
FROM sessions s LEFT JOIN generations g ON g.session_id = s.id
WHERE s.deleted_at IS NULL AND (
    ($1 = 'session' AND s.id = $2)
    OR ($1 = 'person' AND s.id IN (SELECT session_id FROM generations WHERE user_id = $2))
    OR $1 = 'admin')
GROUP BY s.id
ORDER BY last_at DESC, s.id DESC
LIMIT $3
"""

GENERATIONS = """
SELECT g.id, g.session_id, g.model, g.status::text AS status, g.stage::text AS stage,
    g.user_prompt, g.compare_group, g.created_at
FROM generations g WHERE g.session_id = ANY($1::bigint[])
ORDER BY g.id DESC
LIMIT $2
"""

COMPARE_MEMBERS = "SELECT id FROM generations WHERE compare_group = $1 ORDER BY id"
COMPOSITE = "SELECT composite_key FROM compare_groups WHERE id = $1"


@dataclass(frozen=True)
class HistoryGeneration:
    """A line of the list: enough to pick a generation."""

    id: int
    model: str
    status: str
    stage: str
    user_prompt: str
    compare_group: str | None
    created_at: datetime


@dataclass(frozen=True)
class HistorySession:
    """One thread the person used, with its generations newest first."""

    id: int
    platform: str
    channel: str
    thread: str
    created_at: datetime
    last_at: datetime
    generations: tuple[HistoryGeneration, ...]

    @property
    def status(self) -> str:
        """The newest generation's status (what the thread is doing now)."""
        return self.generations[0].status if self.generations else "empty"


async def load_history(pool: asyncpg.Pool, grant: Grant) -> list[HistorySession]:
    """The sessions a grant covers, newest activity first."""
    kind = grant.kind.name.lower()
    async with pool.acquire() as conn:
        sessions = await conn.fetch(SESSIONS, kind, grant.subject, MAX_SESSIONS)
        rows = await conn.fetch(GENERATIONS, [s["id"] for s in sessions], MAX_GENERATIONS)
    by_session: dict[int, list[HistoryGeneration]] = {}
    for r in rows:
        by_session.setdefault(r["session_id"], []).append(HistoryGeneration(
            r["id"], r["model"], r["status"], r["stage"], r["user_prompt"], r["compare_group"],
            r["created_at"]))
    return [
        HistorySession(s["id"], s["platform"], s["channel"], s["thread"], s["created_at"],
                       s["last_at"], tuple(by_session.get(s["id"], ())))
        for s in sessions
    ]


async def compare_members(pool: asyncpg.Pool, compare_group: str) -> list[int]:
    """The generation ids of a compare group, in the order they were asked."""
    return [r["id"] for r in await pool.fetch(COMPARE_MEMBERS, compare_group)]


async def composite_key(pool: asyncpg.Pool, compare_group: str) -> str | None:
    """The object key of a compare group's side-by-side image, once it is made."""
    key = await pool.fetchval(COMPOSITE, compare_group)
    return str(key) if key else None
