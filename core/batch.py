"""A batch: `--n 2..4` images of one model on one request, posted as one grid.

A batch is a compare group whose members share the model (a compare needs two models): each
image is an ordinary generation with its own reservation, so a failed image is refunded
while the others are charged. The group's finisher posts one grid of the images that were
made (2 × 2 for four), with a row of buttons per image (upscale or vary this one), and the grid becomes the
message of every image in it.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from core.composite import Panel, compose
from core.models import Button, ImageDelivery, MessageRef, Stage, StatusView, ThreadRef
from core.ports import ChatPlatform
from core.runtime import Runtime
from core.status import STAGE_NAMES

if TYPE_CHECKING:
    from core.compare import Member

# Whether the compare group `c` is a batch: all its members are of one model.
IS_BATCH = "(SELECT count(DISTINCT m) = 1 FROM unnest(c.models) AS m)"

RECORD_GRID = """
WITH grid AS (
    UPDATE compare_groups SET composite_key = $2 WHERE id = $1 RETURNING session_id
), posted AS (
    UPDATE generations SET image_message = $3 WHERE id = ANY($4::bigint[])
)
UPDATE sessions SET head_generation_id = $5 FROM grid WHERE sessions.id = grid.session_id
"""


def batch_view(rt: Runtime, group: list[Member], *, final: bool) -> StatusView:
    """A line per image with its stage, time and seed; the batch's cost up front."""
    name = rt.catalog.get(group[0].model).display_name
    total = sum(m.cost for m in group)
    lines = []
    for index, m in enumerate(group, 1):
        if m.status == "succeeded":
            lines.append(f"✅ Image {index} · {m.elapsed_s or 0:.1f}s · {m.cost} cr"
                         f" · seed {m.seed}")
        elif m.status in ("failed", "cancelled"):
            lines.append(f"❌ Image {index} · {m.error or 'failed'} (refunded)")
        else:
            stage = STAGE_NAMES.get(Stage(m.stage), "queued") if m.stage != "received" else "queued"
            lines.append(f"⏳ Image {index} · {stage}")
    made = [m for m in group if m.status == "succeeded"]
    charged = sum(m.cost for m in made)
    headline = (
        f"🖼 {len(made)} of {len(group)} images · {name} · {charged} of {total} credits charged"
        if final
        else f"🖼 {len(group)} images · {name} · this batch costs {total} credits"
    )
    return StatusView(
        Stage.DONE if final else Stage.GENERATING, headline, tuple(lines), is_final=final,
        succeeded=bool(made) if final else None, cost=charged if final else total, model=name,
    )


def batch_buttons(rt: Runtime, done: list[Member]) -> tuple[Button, ...]:
    """A row per image of the grid: upscale it (when its model has 4K) and vary it; the
    first row also deletes the grid."""
    buttons: list[Button] = []
    for index, m in enumerate(done, 1):
        model = rt.catalog.get(m.model)
        if "4K" in model.credits and m.resolution != "4K":
            buttons.append(Button("upscale", f"U{index} · 4K", m.id))
        buttons.append(Button("vary", f"V{index}", m.id))
        if index == 1:
            buttons.append(Button("delete", "Delete", m.id))
    return tuple(buttons)


async def post_batch(rt: Runtime, platform: ChatPlatform, thread: ThreadRef, group: Any,
                     done: list[Member], images: dict[int, bytes]) -> None:
    """Post the grid of the images made (once: a finisher that died after posting it left
    its key), and record it as each image's message."""
    if not done or group["composite_key"] is not None:
        return
    name = rt.catalog.get(done[0].model).display_name
    grid = compose([Panel(images[m.id], f"{index}", f"seed {m.seed} · {m.cost} cr")
                    for index, m in enumerate(done, 1)], columns=2 if len(done) == 4 else None)
    digest = hashlib.sha256(str(group["id"]).encode()).hexdigest()[:16]
    key = f"sessions/{group['session_id']}/batch/{digest}.png"
    stored = await rt.store.put(key, grid, "image/png")
    cost = sum(m.cost for m in done)
    posted: MessageRef = await platform.post_image(thread, ImageDelivery(
        generation_id=done[0].id, object_key=key, content_type="image/png",
        size_bytes=stored.size_bytes, data=grid, url=await rt.store.url(key, rt.config.url_ttl_s),
        caption=f"{name} · {len(done)} images · {cost} credits", model=name, cost=cost,
        elapsed_s=max((m.elapsed_s or 0.0) for m in done),
        refined_prompt=done[0].refined_prompt or "", buttons=batch_buttons(rt, done),
    ))
    await rt.pool.execute(RECORD_GRID, group["id"], key, posted.to_json(),
                          [m.id for m in done], done[0].id)
