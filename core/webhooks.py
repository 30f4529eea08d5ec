"""Provider webhooks: one webhook id, one effect; a finished prediction wakes its job."""

from __future__ import annotations

import asyncpg

from core.generations import NOTIFY_CHANNEL

# Dedupe and requeue in one statement: a repeated webhook id inserts nothing and so
# requeues nothing; an unknown or already finished prediction requeues nothing.
ACCEPT = """
WITH d AS (
    INSERT INTO webhook_deliveries (webhook_id, source, generation_id, external_id)
    VALUES ($1, $2, (SELECT id FROM generations WHERE external_id = $3), $3)
    ON CONFLICT (webhook_id) DO NOTHING
    RETURNING generation_id
), g AS (
    UPDATE generations SET status = 'queued', run_after = now()
    FROM d WHERE generations.id = d.generation_id AND generations.status = 'waiting'
    RETURNING generations.id, generations.claims
), e AS (
    INSERT INTO generation_events (generation_id, claim, stage, detail)
    SELECT id, claims, 'webhook', jsonb_build_object('webhook_id', $1::text) FROM g
)
SELECT (SELECT count(*) FROM d) AS fresh, (SELECT id FROM g) AS requeued,
       (SELECT pg_notify($4, id::text) FROM g) AS notified
"""


async def accept_prediction_webhook(
    pool: asyncpg.Pool, *, webhook_id: str, source: str, external_id: str
) -> str:
    """Record a verified webhook; returns 'requeued', 'duplicate' or 'ignored'."""
    row = await pool.fetchrow(ACCEPT, webhook_id, source, external_id, NOTIFY_CHANNEL)
    assert row is not None
    if not row["fresh"]:
        return "duplicate"
    return "requeued" if row["requeued"] is not None else "ignored"
