"""Delete my image: the requester (or an admin) removes Easel's image message and the stored
objects. The generation stays, marked deleted, and the ledger is not touched: what was paid
for was made.

A batch's images share one grid message, so deleting one of them deletes the grid: the
message, every image of the batch and the grid's own object.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.batch import IS_BATCH
from core.errors import NotFound, NotYourImage
from core.models import MessageRef, ThreadRef, UserRef
from core.runtime import Runtime

# The generation in this thread, whoever asked for it, and its batch's grid if it is in one.
FIND = f"""
SELECT g.id, g.deleted_at, g.image_message, g.compare_group, {IS_BATCH} AS batch,
       c.composite_key,
       u.platform = $5 AND u.workspace = $6 AND u.external_id = $7 AS is_requester
FROM generations g
JOIN sessions s ON s.id = g.session_id
JOIN users u ON u.id = g.user_id
LEFT JOIN compare_groups c ON c.id = g.compare_group
WHERE g.id = $1 AND g.status = 'succeeded'
  AND s.platform = $2 AND s.channel = $3 AND s.thread = $4
"""

# The last image of the thread that is still there (what `/delete` alone deletes).
LAST_IMAGE = """
SELECT g.id FROM generations g JOIN sessions s ON s.id = g.session_id
WHERE s.platform = $1 AND s.channel = $2 AND s.thread = $3
  AND g.status = 'succeeded' AND g.deleted_at IS NULL
ORDER BY g.id DESC LIMIT 1
"""

OUTPUTS = """
SELECT object_key FROM assets WHERE generation_id = ANY($1::bigint[]) AND kind = 'output'
"""
# Marks them deleted; a thread whose head was one of them builds on its newest image left.
MARK_DELETED = """
WITH marked AS (
    UPDATE generations SET deleted_at = coalesce(deleted_at, now()) WHERE id = ANY($1::bigint[])
    RETURNING session_id
)
UPDATE sessions s SET head_generation_id = (
    SELECT g.id FROM generations g WHERE g.session_id = s.id AND g.status = 'succeeded'
      AND g.deleted_at IS NULL AND g.compare_group IS NULL AND g.id <> ALL($1::bigint[])
    ORDER BY g.id DESC LIMIT 1)
WHERE s.id IN (SELECT session_id FROM marked) AND s.head_generation_id = ANY($1::bigint[])
"""


@dataclass(frozen=True)
class Deleted:
    generation_ids: tuple[int, ...]
    object_keys: tuple[str, ...]
    already: bool = False  # deleted before (what was left is gone now too)


async def last_image(rt: Runtime, thread: ThreadRef) -> int:
    """The id of the thread's newest image that is not deleted (NotFound when none)."""
    found = await rt.pool.fetchval(LAST_IMAGE, thread.platform, thread.channel, thread.thread)
    if found is None:
        raise NotFound("This thread has no image to delete.")
    return int(found)


async def delete_image(rt: Runtime, thread: ThreadRef, user: UserRef, generation_id: int, *,
                       is_admin: bool = False, also: MessageRef | None = None) -> Deleted:
    """Delete the image `generation_id` of `thread` for `user`: its message (and `also`, the
    message its buttons were on where that is another one) and its stored objects."""
    row = await rt.pool.fetchrow(FIND, generation_id, thread.platform, thread.channel,
                                 thread.thread, user.platform, user.workspace, user.external_id)
    if row is None:
        raise NotFound()
    if not (row["is_requester"] or is_admin):
        raise NotYourImage()
    ids = [generation_id]
    keys: list[str] = []
    if row["batch"]:  # one grid holds them all
        ids = [int(i) for i in await rt.pool.fetchval(
            "SELECT array_agg(id) FROM generations WHERE compare_group = $1 AND status = 'succeeded'",
            row["compare_group"])]
        keys += [row["composite_key"]] if row["composite_key"] else []
    keys += [r["object_key"] for r in await rt.pool.fetch(OUTPUTS, ids)]
    # The message and objects first, the mark last: a delete cut short is done again whole.
    platform = rt.platforms[thread.platform]
    for message in dict.fromkeys(m for m in (MessageRef.from_json(row["image_message"]), also)
                                 if m is not None):
        await platform.delete_message(thread, message)
    unique = tuple(dict.fromkeys(keys))
    for key in unique:
        await rt.store.delete(key)
    await rt.pool.execute(MARK_DELETED, ids)
    return Deleted(tuple(ids), unique, already=row["deleted_at"] is not None)
