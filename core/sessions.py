"""Sessions: one per platform thread, with its users, messages and context."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from core.models import ThreadRef, UserRef

# Upserts the user and, for a new user, opens the account with the starter grant:
# one statement, so a new user's account and grant appear together or not at all.
_USER_CTES = """
u AS (
    INSERT INTO users (platform, workspace, external_id, display_name)
    VALUES ($1, $2, $3, $4)
    ON CONFLICT (platform, workspace, external_id)
    DO UPDATE SET display_name = CASE WHEN EXCLUDED.display_name = '' THEN users.display_name
                                      ELSE EXCLUDED.display_name END
    RETURNING id
), a AS (
    INSERT INTO accounts (user_id, granted, available)
    SELECT id, $5, $5 FROM u
    ON CONFLICT (user_id) DO NOTHING
    RETURNING user_id
), l AS (
    INSERT INTO ledger (user_id, kind, amount, reason, idempotency_key)
    SELECT user_id, 'grant', $5, 'starter grant', 'starter:' || user_id FROM a
)"""
UPSERT_USER = f"WITH {_USER_CTES} SELECT id FROM u"

UPSERT_SESSION = """
INSERT INTO sessions (platform, workspace, channel, thread, model, created_by)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (platform, workspace, channel, thread)
DO UPDATE SET deleted_at = NULL
RETURNING id, model, head_generation_id
"""

FIND_SESSION = """
SELECT id, model, head_generation_id FROM sessions
WHERE platform = $1 AND workspace = $2 AND channel = $3 AND thread = $4 AND deleted_at IS NULL
"""

@dataclass(frozen=True)
class SessionInfo:
    id: int
    model: str
    head_generation_id: int | None


async def upsert_user(conn: asyncpg.Connection, user: UserRef, starter_credits: int) -> int:
    """The user's id; a new user gets an account with the starter grant, once."""
    user_id = await conn.fetchval(
        UPSERT_USER,
        user.platform,
        user.workspace,
        user.external_id,
        user.display_name,
        starter_credits,
    )
    return int(user_id)


async def upsert_session(
    conn: asyncpg.Connection, thread: ThreadRef, default_model: str, user_id: int
) -> SessionInfo:
    """The thread's session, created on first use."""
    row = await conn.fetchrow(
        UPSERT_SESSION,
        thread.platform,
        thread.workspace,
        thread.channel,
        thread.thread,
        default_model,
        user_id,
    )
    assert row is not None
    return SessionInfo(row["id"], row["model"], row["head_generation_id"])


async def find_session(conn: asyncpg.Connection, thread: ThreadRef) -> SessionInfo | None:
    """The live session of a thread, or None when the thread is not a session."""
    row = await conn.fetchrow(
        FIND_SESSION, thread.platform, thread.workspace, thread.channel, thread.thread
    )
    return SessionInfo(row["id"], row["model"], row["head_generation_id"]) if row else None


async def set_model(conn: asyncpg.Connection, session_id: int, model: str) -> None:
    """Switch the model the session's next turns use."""
    await conn.execute("UPDATE sessions SET model = $2 WHERE id = $1", session_id, model)


async def set_head(conn: asyncpg.Connection, session_id: int, generation_id: int) -> None:
    """Make `generation_id` the image the session's next refinement builds on."""
    await conn.execute(
        "UPDATE sessions SET head_generation_id = $2 WHERE id = $1", session_id, generation_id
    )
