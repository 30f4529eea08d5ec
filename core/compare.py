"""Compare: several models on one request, one status message, one side-by-side result.

Each member is an ordinary generation with its own reservation, so a failing
model is refunded while the others are charged. The shared status message is
rendered from the rows, so any worker may edit it. Whoever sees the last member
finish takes the group's finishing lease and posts the composite, then each
image with a "continue with this one" button; the sweeper finishes a group
whose finisher died.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from core.batch import IS_BATCH, batch_view, post_batch
from core.composite import Panel, compose
from core.models import Button, ImageDelivery, MessageRef, Stage, StatusView, ThreadRef
from core.runtime import Runtime
from core.status import STAGE_NAMES, StatusReporter

log = logging.getLogger("easel.compare")

FINISH_LEASE_S = 60

MEMBERS = f"""
SELECT g.id, g.model, g.status::text AS status, g.stage::text AS stage, g.cost, g.error,
       g.created_at, g.finished_at, g.refined_prompt, a.object_key, a.content_type,
       g.image_message IS NOT NULL AS image_posted, {IS_BATCH} AS batch,
       g.params->>'seed' AS seed,
       g.params->>'resolution' AS resolution
FROM generations g
JOIN compare_groups c ON c.id = g.compare_group
LEFT JOIN assets a ON a.generation_id = g.id AND a.kind = 'output' AND a.idx = 0
WHERE g.compare_group = $1 ORDER BY g.id
"""

# Only when every member is terminal, and only one finisher at a time.
TAKE_FINISH = """
UPDATE compare_groups c SET finisher = $2, finish_until = now() + make_interval(secs => $3)
FROM sessions s
WHERE c.id = $1 AND s.id = c.session_id AND c.finished_at IS NULL
  AND (c.finish_until IS NULL OR c.finish_until < now())
  AND c.platform = ANY($4::text[]) AND ($5::text IS NULL OR s.channel = $5)
  AND NOT EXISTS (SELECT 1 FROM generations g WHERE g.compare_group = c.id
                    AND g.status IN ('queued', 'running', 'waiting'))
RETURNING c.*, s.workspace, s.channel, s.thread
"""

UNFINISHED = """
SELECT c.id FROM compare_groups c
WHERE c.finished_at IS NULL AND (c.finish_until IS NULL OR c.finish_until < now())
  AND NOT EXISTS (SELECT 1 FROM generations g WHERE g.compare_group = c.id
                    AND g.status IN ('queued', 'running', 'waiting'))
LIMIT 100
"""


@dataclass(frozen=True)
class Member:
    id: int
    model: str
    status: str
    stage: str
    cost: int
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    refined_prompt: str | None
    object_key: str | None
    content_type: str | None
    image_posted: bool
    batch: bool = False  # n images of one model (`--n`), not a compare of models
    seed: str | None = None
    resolution: str | None = None

    @property
    def elapsed_s(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.created_at).total_seconds()


async def members(pool: asyncpg.Pool, group: str) -> list[Member]:
    """The group's generations, oldest first."""
    return [Member(**dict(row)) for row in await pool.fetch(MEMBERS, group)]


def group_view(rt: Runtime, group: list[Member], *, final: bool) -> StatusView:
    """A line per model (or per image of a batch) with its stage and time; the cost up front."""
    if group and group[0].batch:
        return batch_view(rt, group, final=final)
    total = sum(m.cost for m in group)
    lines = []
    for m in group:
        name = rt.catalog.get(m.model).display_name
        if m.status == "succeeded":
            lines.append(f"✅ {name} · {m.elapsed_s or 0:.1f}s · {m.cost} cr")
        elif m.status in ("failed", "cancelled"):
            lines.append(f"❌ {name} · {m.error or 'failed'} (refunded)")
        else:
            stage = STAGE_NAMES.get(Stage(m.stage), "queued") if m.stage != "received" else "queued"
            lines.append(f"⏳ {name} · {stage}")
    charged = sum(m.cost for m in group if m.status == "succeeded")
    headline = (
        f"🆚 Compare done · {charged} of {total} credits charged"
        if final
        else f"🆚 Comparing {len(group)} models · this compare costs {total} credits"
    )
    return StatusView(
        Stage.DONE if final else Stage.GENERATING, headline, tuple(lines), is_final=final,
        succeeded=any(m.status == "succeeded" for m in group) if final else None,
        cost=charged if final else total,
    )


class GroupReporter(StatusReporter):
    """A member's reporter: shows the whole group's state instead of its own."""

    def __init__(self, rt: Runtime, group: str, platform: object, thread: ThreadRef,
                 message: MessageRef | None, interval_s: float) -> None:
        super().__init__(platform, thread, message, interval_s)  # type: ignore[arg-type]
        self.rt = rt
        self.group = group

    async def show(self, view: StatusView) -> None:
        await super().show(group_view(self.rt, await members(self.rt.pool, self.group),
                                      final=False))

    async def final(self, view: StatusView) -> bool:
        # The group's finisher delivers the final view, once every member is done.
        await self.close()
        return True


async def finish_group(rt: Runtime, group: str) -> bool:
    """If every member is done and nobody else is finishing: post the results. True if we did."""
    finisher = f"{socket.gethostname()}:{os.getpid()}"
    # Only a process that can tell the thread takes the finish (never another terminal's).
    row = await rt.pool.fetchrow(TAKE_FINISH, group, finisher, FINISH_LEASE_S,
                                 list(rt.platforms), rt.only_channel)
    if row is None:
        return False
    thread = ThreadRef(row["platform"], row["workspace"], row["channel"], row["thread"])
    platform = rt.platform_for(thread)
    if platform is None:
        return False
    group_members = await members(rt.pool, group)
    done = [m for m in group_members if m.status == "succeeded" and m.object_key]
    images = {m.id: await rt.store.get(m.object_key) for m in done if m.object_key}
    if group_members and group_members[0].batch:
        await post_batch(rt, platform, thread, row, done, images)
        done = []  # the grid carries each image's buttons: nothing is posted alone
    panels = [
        Panel(
            images.get(m.id), rt.catalog.get(m.model).display_name,
            f"{m.elapsed_s or 0:.1f}s · {m.cost} cr" if m.id in images else "failed · refunded",
        )
        for m in group_members
    ]
    # A finisher that died part-way left marks of what it posted: post the rest only.
    if done and row["composite_key"] is None:
        composite = compose(panels)
        digest = hashlib.sha256(group.encode()).hexdigest()[:16]
        key = f"sessions/{row['session_id']}/compare/{digest}.png"
        stored = await rt.store.put(key, composite, "image/png")
        await platform.post_image(thread, _delivery(rt, done[0].id, key, composite, stored.size_bytes,
                                                    "Side by side", done, await rt.image_url(key)))
        await rt.pool.execute("UPDATE compare_groups SET composite_key = $2 WHERE id = $1",
                              group, key)
    if done:
        for m in done:
            assert m.object_key is not None
            if m.image_posted:
                continue
            data = images[m.id]
            name = rt.catalog.get(m.model).display_name
            posted = await platform.post_image(thread, ImageDelivery(
                generation_id=m.id, object_key=m.object_key,
                content_type=m.content_type or "image/png", size_bytes=len(data), data=data,
                url=await rt.image_url(m.object_key),
                caption=f"{name} · {m.cost} credits · {m.elapsed_s or 0:.1f}s", model=name,
                cost=m.cost, elapsed_s=m.elapsed_s or 0.0, refined_prompt=m.refined_prompt or "",
                buttons=(Button("continue", f"Continue with {name}", m.id),),
            ))
            await rt.pool.execute(
                "UPDATE generations SET image_message = $2 WHERE id = $1", m.id, posted.to_json()
            )
    message = MessageRef.from_json(row["status_message"])
    reporter = StatusReporter(platform, thread, message, 0)
    await reporter.final(group_view(rt, group_members, final=True))
    await rt.pool.execute("UPDATE compare_groups SET finished_at = now() WHERE id = $1", group)
    await rt.pool.execute(
        "UPDATE generations SET final_shown_at = now() WHERE compare_group = $1", group
    )
    return True


def _delivery(rt: Runtime, generation_id: int, key: str, data: bytes, size: int, title: str,
              done: list[Member], url: str | None) -> ImageDelivery:
    cost = sum(m.cost for m in done)
    return ImageDelivery(
        generation_id=generation_id, object_key=key, content_type="image/png", size_bytes=size,
        data=data, url=url, caption=f"{title}: " + ", ".join(
            rt.catalog.get(m.model).display_name for m in done),
        model=title, cost=cost, elapsed_s=max((m.elapsed_s or 0.0) for m in done),
        refined_prompt=done[0].refined_prompt or "",
    )


async def finish_stranded_groups(rt: Runtime) -> int:
    """Recovery: finish groups whose members are all done but whose finisher never did."""
    finished = 0
    for row in await rt.pool.fetch(UNFINISHED):
        try:
            finished += await finish_group(rt, row["id"])
        except Exception as exc:  # one bad group must not stop the sweep
            log.warning("compare group %s could not be finished: %s", row["id"], exc)
    return finished
