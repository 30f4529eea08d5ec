"""What one generation costs (issue 18): what it does, counted; never how long it takes."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from adapters.storage.local import LocalObjectStore
from core.models import StoredObject
from core.service import Easel
from core.worker import Worker
from tests.corekit import FakeChat, make_runtime, request, thread
from tests.procs import wait_until


class CountingStore(LocalObjectStore):
    """The local store, counting what the pipeline asks of it."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.puts = 0
        self.gets = 0

    async def put(self, key: str, data: bytes, content_type: str) -> StoredObject:
        self.puts += 1
        return await super().put(key, data, content_type)

    async def get(self, key: str) -> bytes:
        self.gets += 1
        return await super().get(key)


async def test_an_image_is_written_once_and_never_read_back(
    pool: asyncpg.Pool, images_dir: Path
) -> None:
    chat = FakeChat()
    rt = make_runtime(pool, images_dir, chat=chat, default_model="sketch")
    store = CountingStore(images_dir)
    rt.store = store
    easel = Easel(rt)
    for n in range(3):
        await easel.submit(request("a lighthouse at dusk", n=n))
    assert await Worker(rt).run_until_empty() == 3
    # The bytes the provider returned are posted as they are: on S3 a read-back is a
    # full download per image.
    assert store.puts == 3 and store.gets == 0
    for n in range(3):
        [image] = chat.images(thread(n))
        assert (images_dir / image.object_key).read_bytes() == image.data
        assert image.url is None  # a local folder has no link to give (never a host path)


async def _hot(pool: asyncpg.Pool) -> tuple[int, int]:
    row = await pool.fetchrow(
        """SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables
           WHERE relname = 'generations'""")
    assert row is not None
    return int(row["n_tup_upd"]), int(row["n_tup_hot_upd"])


async def test_stage_writes_are_hot_updates(pool: asyncpg.Pool, images_dir: Path) -> None:
    rt = make_runtime(pool, images_dir, default_model="sketch", max_active=100,
                      rate_per_minute=100)
    easel = Easel(rt)
    for n in range(10):
        await easel.submit(request("a red kite", n=n))
    assert await Worker(rt).run_until_empty() == 10

    # Each generation is updated by its claim, two stage writes, the finish and the
    # final-shown mark; the stage writes touch no indexed column, so they stay HOT.
    async def counted() -> tuple[int, int] | None:
        await pool.execute("SELECT pg_stat_clear_snapshot()")
        updates, hot = await _hot(pool)
        return (updates, hot) if updates >= 50 else None

    updates, hot = await wait_until(counted, timeout_s=30, what="update statistics")
    assert hot >= 15, (updates, hot)
