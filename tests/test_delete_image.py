"""Batches at the core (a 2 x 2 grid of four, a row of buttons per image), and after
"delete my image" the thread goes on: the next turn builds on the newest image left,
and a button on the deleted image still works (from its prompt, without the image)."""

from __future__ import annotations

import io
from pathlib import Path

import asyncpg
from PIL import Image

from core.composite import GAP, LABEL_HEIGHT, PANEL_HEIGHT
from core.errors import NotYourImage
from core.models import Intent
from core.service import Easel
from core.worker import Worker
from tests.corekit import FakeChat, ScriptedProvider, ledger_ok, make_runtime, request, thread, user


async def test_the_thread_goes_on_after_its_images_are_deleted(
    pool: asyncpg.Pool, images_dir: Path
) -> None:
    google = ScriptedProvider("google")
    rt = make_runtime(pool, images_dir,
                      providers={"sketch": ScriptedProvider(), "google": google})
    easel = Easel(rt)
    first = await easel.submit(request("a fox in the snow --model nano2"))
    assert await Worker(rt).run_until_empty() == 1
    second = await easel.submit(request("at night"))
    assert await Worker(rt).run_until_empty() == 1
    assert await pool.fetchval("SELECT parent_id FROM generations WHERE id = $1",
                               second.generation_id) == first.generation_id
    ledger = await pool.fetch("SELECT * FROM ledger ORDER BY id")

    try:
        await easel.delete_image(thread(), user("bob"), second.generation_id)
        raise AssertionError("someone else deleted ada's image")
    except NotYourImage:
        pass
    deleted = await easel.delete_image(thread(), user(), None)  # the newest: the second
    assert deleted.generation_ids == (second.generation_id,) and len(deleted.object_keys) == 1
    assert not (images_dir / deleted.object_keys[0]).exists()

    third = await easel.submit(request("make it darker"))
    assert await Worker(rt).run_until_empty() == 1
    assert await pool.fetchval("SELECT parent_id FROM generations WHERE id = $1",
                               third.generation_id) == first.generation_id
    assert google.requests[-1].input_images, "built on the image that is left"

    await easel.delete_image(thread(), user(), first.generation_id)
    vary = await easel.submit(request("", action=Intent.VARIATION,
                                      target_generation_id=first.generation_id))
    assert await Worker(rt).run_until_empty() == 1
    assert await pool.fetchval("SELECT status::text FROM generations WHERE id = $1",
                               vary.generation_id) == "succeeded"
    assert not google.requests[-1].input_images  # its image is gone: the prompt alone

    # The ledger has only what the generations did; deleting wrote nothing.
    after = await pool.fetch("SELECT * FROM ledger ORDER BY id")
    assert after[:len(ledger)] == ledger
    assert all(r["generation_id"] in (third.generation_id, vary.generation_id)
               for r in after[len(ledger):])
    assert await ledger_ok(pool) == []


async def test_four_images_make_a_2x2_grid_with_a_row_each_and_one_request_at_once(
    pool: asyncpg.Pool, images_dir: Path
) -> None:
    google = ScriptedProvider("google")
    chat = FakeChat()
    rt = make_runtime(pool, images_dir, chat=chat,
                      providers={"sketch": ScriptedProvider(), "google": google})
    assert rt.config.max_active == 3  # a batch of four is one request, not four
    submitted = await Easel(rt).submit(request("a fox --model nano2 --n 4 --seed 7"))
    assert len(submitted.generation_ids) == 4 and submitted.cost == 40
    assert await Worker(rt).run_until_empty() == 4
    assert sorted(r.seed for r in google.requests) == [7, 8, 9, 10]
    [grid] = chat.images(thread())
    with Image.open(io.BytesIO(grid.data)) as image:
        assert image.size == (2 * PANEL_HEIGHT + 3 * GAP,
                              2 * (PANEL_HEIGHT + LABEL_HEIGHT + GAP) + GAP)
    rows: dict[int, list[str]] = {}
    for button in grid.buttons:
        rows.setdefault(button.generation_id, []).append(button.label)
    assert list(rows) == list(submitted.generation_ids)
    assert rows[submitted.generation_ids[0]] == ["U1 · 4K", "V1", "Delete"]
    assert rows[submitted.generation_ids[3]] == ["U4 · 4K", "V4"]
    assert await pool.fetchval("SELECT count(*) FROM ledger WHERE kind = 'confirm'") == 4
