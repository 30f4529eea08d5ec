"""What a claim that turns out to be lost undoes, and the side effects that must not be cut.

The database fences every write on the claim; these fence what lies outside it. An image
posted by a claim whose record then fails is deleted again, unless the generation's record
adopted that very post (a recovering worker's `find_image` may have found it); a provider
job nobody will collect is cancelled at the provider.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable

import asyncpg

from core.models import MessageRef, ThreadRef
from core.ports import CancellableProvider, ChatPlatform

log = logging.getLogger("easel.fencing")

# How long a lost claim waits for the generation's outcome before leaving its post alone
# (in leases: the sweeper requeues, another worker claims and finishes).
WITHDRAW_WAIT_FACTOR = 4
WITHDRAW_POLL_S = 0.25
OUTCOME = "SELECT status::text AS status, image_message FROM generations WHERE id = $1"


class PostInFlight:
    """A chat post that a cancellation must not cut off without learning what was posted."""

    def __init__(self) -> None:
        self.posted: MessageRef | None = None

    async def run(self, posting: Awaitable[MessageRef]) -> MessageRef:
        """Await `posting`; when cancelled meanwhile, still wait for it (then re-raise)."""
        post = asyncio.ensure_future(posting)
        try:
            self.posted = await asyncio.shield(post)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                self.posted = await asyncio.shield(post)
            raise
        return self.posted


async def withdraw_unadopted_post(
    pool: asyncpg.Pool, platform: ChatPlatform, thread: ThreadRef, generation_id: int,
    posted: MessageRef, lease_s: float,
) -> None:
    """Delete `posted` once the generation ended with another image on record (or none)."""
    try:
        adopted = await _adopted(pool, generation_id, posted, WITHDRAW_WAIT_FACTOR * lease_s)
        if adopted is False:
            await platform.delete_message(thread, posted)
            log.info("generation %s: withdrew the image a lost claim posted", generation_id)
    except Exception as exc:  # the thread keeps a second image; nothing else is wrong
        log.warning("generation %s: could not withdraw a lost claim's image: %s",
                    generation_id, exc)


async def _adopted(pool: asyncpg.Pool, generation_id: int, posted: MessageRef,
                   wait_s: float) -> bool | None:
    """Wait for the generation to end: whether its record is `posted` (None: not ended)."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        row = await pool.fetchrow(OUTCOME, generation_id)
        if row is not None and row["status"] in ("succeeded", "failed", "cancelled"):
            recorded = MessageRef.from_json(row["image_message"])
            return recorded is not None and recorded.message_id == posted.message_id
        await asyncio.sleep(WITHDRAW_POLL_S)
    return None


async def cancel_quietly(provider: CancellableProvider, external_id: str) -> None:
    """Stop paying for a provider job nobody will wait for (best effort)."""
    try:
        await provider.cancel(external_id)
    except Exception as exc:  # it finishes at the provider and nobody collects it
        log.warning("could not cancel %s at %s: %s", external_id, provider.name, exc)
