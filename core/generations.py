"""The generation queue: claiming, leases, and the fenced writes that finish a job.

Every write a worker makes is fenced on the claim it holds (`claims` is bumped
by every claim), so a worker whose lease expired and whose job was claimed again
cannot record a stage, settle credits or mark the job finished.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from core.context_sql import context_json
from core.credits import settle_ctes
from core.models import MessageRef, Stage, Status, ThreadRef

NOTIFY_CHANNEL = "easel_generations"

_CLAIM = """
WITH next AS (
    SELECT g.id FROM generations g{join}
    WHERE g.status = 'queued' AND g.run_after <= now() AND g.platform = ANY($4::text[]){only}
    ORDER BY g.run_after, g.id
    LIMIT $2
    FOR UPDATE OF g SKIP LOCKED
)
UPDATE generations g SET status = 'running', claims = g.claims + 1,
    attempts = g.attempts + CASE WHEN g.external_id IS NULL THEN 1 ELSE 0 END,
    locked_by = $1, locked_until = now() + make_interval(secs => $3),
    started_at = coalesce(g.started_at, now())
FROM next, sessions s
WHERE g.id = next.id AND s.id = g.session_id
RETURNING g.*, s.workspace, s.channel, s.thread, {context} AS context
"""
# Each job comes with its context (the claim's snapshot: only earlier turns are read).
_JOB_CONTEXT = "g.parent_id", "g.message_id", "g.session_id", "coalesce(g.message_id, 4611686018427387904)"
CLAIM = _CLAIM.format(join="", only="", context=context_json(*_JOB_CONTEXT, "$5::int"))
# A process that serves one channel only (each `easel chat` its own terminal) claims only
# the generations of that channel's threads.
CLAIM_IN_CHANNEL = _CLAIM.format(join=" JOIN sessions s ON s.id = g.session_id",
                                 only=" AND s.channel = $5",
                                 context=context_json(*_JOB_CONTEXT, "$6::int"))

WORKER_FENCE = "claims = $2 AND status = 'running'"
# The sweeper may finish a job only while nobody holds a live lease on it.
SWEEPER_FENCE = (
    "status IN ('queued', 'running', 'waiting') AND coalesce(locked_until, '-infinity') < now()"
)

# Records the stages completed since the last write ($4: a JSON list of
# {stage, detail, duration_ms}), moves to the next stage and extends the lease, in
# one fenced statement: None back means the lease is gone.
RECORD_STAGES = """
WITH g AS (
    UPDATE generations SET stage = $3::generation_stage,
        refined_prompt = coalesce($5, refined_prompt), intent = coalesce($6, intent),
        params = params || $7::jsonb, locked_until = least(now() + make_interval(secs => $8),
                                                           deadline_at + make_interval(secs => $8))
    WHERE id = $1 AND claims = $2 AND status = 'running' AND locked_until > now()
    RETURNING id
), asset AS (
    INSERT INTO assets (generation_id, kind, idx, object_key, content_type, size_bytes, sha256)
    SELECT id, 'output', 0, $9, $10, $11, $12 FROM g WHERE $9::text IS NOT NULL
    ON CONFLICT (object_key) DO UPDATE SET size_bytes = EXCLUDED.size_bytes,
        sha256 = EXCLUDED.sha256, content_type = EXCLUDED.content_type
), events AS (
    INSERT INTO generation_events (generation_id, claim, stage, detail, duration_ms)
    SELECT g.id, $2, e->>'stage', e->'detail', (e->>'duration_ms')::float8
    FROM g, jsonb_array_elements($4::jsonb) AS e
)
SELECT id FROM g
"""

MARK_SHOWN = "UPDATE generations SET final_shown_at = now() WHERE id = ANY($1::bigint[])"

# A lease never reaches more than one lease past the deadline: a worker stuck beyond it
# loses the job to the sweeper, which fails and refunds it.
HEARTBEAT = """
UPDATE generations g SET locked_until = least(now() + make_interval(secs => $2),
                                              g.deadline_at + make_interval(secs => $2))
FROM unnest($3::bigint[], $4::int[]) AS held(id, claims)
WHERE g.id = held.id AND g.claims = held.claims AND g.status = 'running' AND g.locked_by = $1
RETURNING g.id
"""

# Parks the job until its webhook; when the webhook came first (a fast model), the
# job is queued at once instead.
PARK = """
WITH early AS (
    SELECT EXISTS (SELECT 1 FROM webhook_deliveries WHERE external_id = $3) AS arrived
)
UPDATE generations SET
    status = CASE WHEN early.arrived THEN 'queued' ELSE 'waiting' END::generation_status,
    external_id = $3, locked_by = NULL, locked_until = NULL,
    run_after = CASE WHEN early.arrived THEN now() ELSE now() + make_interval(secs => $4) END
FROM early
WHERE id = $1 AND claims = $2 AND status = 'running'
RETURNING id, early.arrived
"""

REQUEUE = """
WITH g AS (
    UPDATE generations SET status = 'queued', locked_by = NULL, locked_until = NULL,
        run_after = now() + make_interval(secs => $3), error_kind = $4, error = $5
    WHERE id = $1 AND claims = $2 AND status = 'running'
    RETURNING id
)
INSERT INTO generation_events (generation_id, claim, stage, detail)
SELECT id, $2, 'retry', jsonb_build_object('kind', $4::text, 'delay_s', $3::float8) FROM g
RETURNING generation_id
"""

def _finish_statement(status: Status, fence: str) -> str:
    succeeded = status is Status.SUCCEEDED
    outcome = "confirmed" if succeeded else "released"
    head = (
        """, head AS (
    UPDATE sessions SET head_generation_id = g.id FROM g
    WHERE sessions.id = g.session_id AND g.compare_group IS NULL
)"""
        if succeeded
        else ""
    )
    return f"""
WITH g AS (
    UPDATE generations SET status = '{status.value}', stage = 'done', finished_at = now(),
        locked_by = NULL, locked_until = NULL, error_kind = $3, error = $4,
        image_message = coalesce($7::jsonb, image_message)
    WHERE id = $1 AND {fence}
    RETURNING id, reservation_id, session_id, compare_group
), {settle_ctes("g", outcome, "$4").strip()}, event AS (
    INSERT INTO generation_events (generation_id, claim, stage, detail)
    SELECT id, coalesce($2::int, 0), '{status.value}', $5::jsonb FROM g
), reply AS (
    INSERT INTO messages (session_id, role, text, generation_id)
    SELECT session_id, 'assistant', $6, id FROM g
){head}
SELECT g.id, (SELECT count(*) FROM settled) AS settled FROM g
"""


SUCCEED = _finish_statement(Status.SUCCEEDED, WORKER_FENCE)
FAIL = _finish_statement(Status.FAILED, WORKER_FENCE)
SWEEP_FAIL = _finish_statement(Status.FAILED, f"$2::int IS NULL AND {SWEEPER_FENCE}")


@dataclass(frozen=True)
class Job:
    """A claimed generation, as the worker sees it."""

    id: int
    session_id: int
    message_id: int | None
    user_id: int
    thread: ThreadRef
    model: str
    params: dict[str, Any]
    intent: str
    user_prompt: str
    refined_prompt: str | None
    parent_id: int | None
    compare_group: str | None
    stage: Stage
    attempts: int
    max_attempts: int
    claims: int
    reservation_id: int | None
    cost: int
    external_id: str | None
    status_message: MessageRef | None
    image_message: MessageRef | None
    deadline_at: datetime
    created_at: datetime
    context: dict[str, Any] | None = None  # returned by the claim (core/context_sql.py)

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Job:
        return cls(
            id=row["id"],
            session_id=row["session_id"],
            message_id=row["message_id"],
            user_id=row["user_id"],
            thread=ThreadRef(row["platform"], row["workspace"], row["channel"], row["thread"]),
            model=row["model"],
            params=dict(row["params"] or {}),
            intent=row["intent"],
            user_prompt=row["user_prompt"],
            refined_prompt=row["refined_prompt"],
            parent_id=row["parent_id"],
            compare_group=row["compare_group"],
            stage=Stage(row["stage"]),
            attempts=row["attempts"],
            max_attempts=row["max_attempts"],
            claims=row["claims"],
            reservation_id=row["reservation_id"],
            cost=row["cost"],
            external_id=row["external_id"],
            status_message=MessageRef.from_json(row["status_message"]),
            image_message=MessageRef.from_json(row["image_message"]),
            deadline_at=row["deadline_at"],
            created_at=row["created_at"],
            context=row.get("context"),
        )


async def claim(
    pool: asyncpg.Pool, worker_id: str, limit: int, lease_s: float, platforms: list[str],
    channel: str | None = None, *, context_turns: int = 8,
) -> list[Job]:
    """Claim up to `limit` due generations of `platforms` (of `channel` only, when given)
    with one SKIP LOCKED statement, each with its context of `context_turns` turns."""
    if channel is None:
        rows = await pool.fetch(CLAIM, worker_id, limit, lease_s, platforms, context_turns)
    else:
        rows = await pool.fetch(CLAIM_IN_CHANNEL, worker_id, limit, lease_s, platforms, channel,
                                context_turns)
    return [Job.from_row(row) for row in rows]


async def notify(conn: asyncpg.Connection | asyncpg.Pool, generation_id: int = 0) -> None:
    """Wake the workers listening for new work."""
    await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, str(generation_id))
