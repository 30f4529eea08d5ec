"""After "delete my image" the thread goes on: the next turn builds on the newest image left,
and a button on the deleted image still works (from its prompt, without the image)."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from core.errors import NotYourImage
from core.models import Intent
from core.service import Easel
from core.worker import Worker
from tests.corekit import ScriptedProvider, ledger_ok, make_runtime, request, thread, user


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
