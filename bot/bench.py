"""`easel bench`: synthetic users through the real submit → worker → pipeline path.

Real Postgres (a scratch database on the configured or embedded server), local
storage in a temporary folder, an in-process chat platform that only counts, and
a provider that sleeps for the given latency and returns a small PNG. Prints
figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import multiprocessing
import os
import resource
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from PIL import Image

from bot import bench_probe
from bot.db import _init_connection, create_pool, resolve_database_url
from bot.migrate import migrate
from bot.settings import Settings
from core.catalog import parse_catalog
from core.config import CoreConfig
from core.models import (
    GeneratedImage,
    ImageDelivery,
    ImageRequest,
    Images,
    MessageRef,
    Parked,
    StatusView,
    ThreadRef,
    UserRef,
)
from core.runtime import Runtime
from core.service import Easel
from core.status import received_view
from core.submit import SubmitRequest
from core.worker import Worker

BENCH_CATALOG = """
[[model]]
name = "bench"
provider = "bench"
model_id = "bench-v1"
display_name = "Bench"
credits = { "1K" = 1, "2K" = 1 }
aspect_ratios = ["1:1"]
can_edit = true
"""
SUBMITTERS = 64  # concurrent submit calls, like many gateway events at once
STATS_SETTLE_S = 1.2  # Postgres backends report their counters within a second of idling


class BenchProvider:
    name = "bench"

    def __init__(self, latency_s: float) -> None:
        self.latency_s = latency_s
        buffer = io.BytesIO()
        Image.new("RGB", (64, 64), (40, 90, 200)).save(buffer, "PNG")
        self.png = buffer.getvalue()

    async def generate(self, request: ImageRequest) -> Images | Parked:
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        return Images((GeneratedImage(self.png),))

    async def resume(self, external_id: str, request: ImageRequest) -> Images | Parked:
        return await self.generate(request)


class CountingChat:
    """A chat platform that shows nothing and counts what it was asked to do."""

    name = "bench"

    def __init__(self) -> None:
        self.edits = 0
        self.images = 0
        self.first_edit_at: dict[str, float] = {}  # status message id -> perf_counter()

    async def post_status(self, thread: ThreadRef, view: StatusView) -> MessageRef:
        return MessageRef(thread.channel, uuid.uuid4().hex, thread.thread)

    async def edit_status(self, thread: ThreadRef, message: MessageRef, view: StatusView) -> None:
        self.edits += 1
        self.first_edit_at.setdefault(message.message_id, time.perf_counter())

    async def post_image(self, thread: ThreadRef, image: ImageDelivery) -> MessageRef:
        self.images += 1
        return MessageRef(thread.channel, uuid.uuid4().hex, thread.thread)

    async def post_text(self, thread: ThreadRef, text: str) -> MessageRef:
        return MessageRef(thread.channel, uuid.uuid4().hex, thread.thread)

    async def delete_message(self, thread: ThreadRef, message: MessageRef) -> None:
        return None  # the bench loses no claim

    async def find_image(self, thread: ThreadRef, generation_id: int) -> MessageRef | None:
        return None  # the bench kills no worker


class RoundTrips:
    count = 0

    def __call__(self, record: Any) -> None:
        RoundTrips.count += 1


async def _pool(url: str, size: int) -> asyncpg.Pool:
    async def init(conn: asyncpg.Connection) -> None:
        await _init_connection(conn)
        conn.add_query_logger(RoundTrips())

    return await create_pool(url, max_size=size, init=init)


def _runtime(pool: asyncpg.Pool, images: Path, args: argparse.Namespace, url: str) -> Runtime:
    from adapters.refiners.rules import RuleRefiner
    from adapters.storage.local import LocalObjectStore

    config = CoreConfig(
        starter_credits=10**9, max_active=10**9, rate_per_minute=10**9, default_model="bench",
        worker_concurrency=args.concurrency, lease_s=60, status_edit_interval_s=1.0,
    )
    return Runtime(
        pool=pool, catalog=parse_catalog(BENCH_CATALOG, "bench"), config=config,
        providers={"bench": BenchProvider(args.latency_ms / 1000)}, refiner=RuleRefiner(),
        store=LocalObjectStore(images), platforms={"bench": CountingChat()},
        connect=lambda: asyncpg.connect(url),
    )


async def _scratch_database(settings: Settings, settings_sync_commit: bool) -> tuple[str, str]:
    url = await resolve_database_url(
        settings.database_url.get_secret_value() if settings.database_url else None,
        settings.data_dir,
    )
    name = f"easel_bench_{os.getpid()}"
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        if not settings_sync_commit:
            await conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    finally:
        await conn.close()
    scratch = urlunsplit(urlsplit(url)._replace(path=f"/{name}"))
    conn = await asyncpg.connect(scratch)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return url, scratch


async def _drop_database(admin_url: str, url: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{urlsplit(url).path[1:]}" WITH (FORCE)')
    finally:
        await conn.close()


def _worker_process(url: str, images: str, args: argparse.Namespace, may_close: Any) -> None:
    async def main() -> None:
        pool = await _pool(url, args.pool_size)
        worker = Worker(_runtime(pool, Path(images), args, url))
        await _work_until_all_done(worker, pool, args.generations)
        # Its backends stay up until the main process has read their CPU time.
        await asyncio.to_thread(may_close.wait, 60)
        await pool.close()

    asyncio.run(main())


async def _work_until_all_done(worker: Worker, pool: asyncpg.Pool, total: int) -> None:
    """Run the worker until every one of the `total` generations has finished."""
    task = asyncio.create_task(worker.run())
    await _until_all_done(pool, total)
    worker.stop()
    await task


async def _until_all_done(pool: asyncpg.Pool, total: int) -> None:
    done_sql = "SELECT count(*) FROM generations WHERE finished_at IS NOT NULL"
    while await pool.fetchval(done_sql) < total:  # noqa: ASYNC110 (other processes finish some)
        await asyncio.sleep(0.05)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run_bench(settings: Settings, args: argparse.Namespace) -> int:
    """Run the benchmark and print its figures."""
    admin_url, url = await _scratch_database(settings, not args.async_commit)
    if args.fill:
        from bot.bench_fill import run_fill

        try:
            return await run_fill(url, args)
        finally:
            await _drop_database(admin_url, url)
    images = tempfile.mkdtemp(prefix="easel-bench-")
    pool = await _pool(url, args.pool_size)
    rt = _runtime(pool, Path(images), args, url)
    # Submits get their own connections, as in `easel run` (and as a gateway process would).
    rt.intake_pool = await _pool(url, max(2, SUBMITTERS // 8))
    easel = Easel(rt)
    users = [UserRef("bench", "", f"user-{i}") for i in range(args.users)]
    submit_s: list[float] = []
    status_s: list[float] = []
    gate = asyncio.Semaphore(SUBMITTERS)
    chat: CountingChat = rt.platforms["bench"]  # type: ignore[assignment]
    # Worker processes start (and register) before the clock does: spawning Python is not
    # what is measured. With --separate-gateway this process only submits, like a gateway.
    in_process = 0 if args.separate_gateway else 1
    spawn = multiprocessing.get_context("spawn")
    may_close = spawn.Event()
    others = [
        spawn.Process(target=_worker_process, args=(url, images, args, may_close))
        for _ in range(max(0, args.workers - in_process))
    ]
    for process in others:
        process.start()
    while await pool.fetchval("SELECT count(*) FROM workers") < len(others):  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    probe = await asyncpg.connect(url)
    easel_pids = [os.getpid(), *(p.pid for p in others if p.pid is not None)]
    await asyncio.sleep(STATS_SETTLE_S)
    before = await bench_probe.sample(probe, easel_pids)
    started = time.perf_counter()
    trips_before = RoundTrips.count

    async def one(n: int) -> None:
        # Every request arrives at `started`; a gateway first drops repeats, then shows
        # the status message (the first thing the person sees), then submits.
        thread = ThreadRef("bench", "", "c", f"t{n}")
        if await easel.is_known_event("bench", f"bench-{n}"):
            return
        status = await chat.post_status(thread, received_view(f"bench image {n}"))
        status_s.append(time.perf_counter() - started)
        request = SubmitRequest(
            thread=thread, user=users[n % len(users)],
            text=f"a bench image number {n}", source_event=f"bench-{n}",
            status_message=status,
        )
        async with gate:
            t0 = time.perf_counter()
            await easel.submit(request)
            submit_s.append(time.perf_counter() - t0)

    submits = asyncio.gather(*(one(n) for n in range(args.generations)))
    if in_process:
        work = asyncio.create_task(_work_until_all_done(Worker(rt), pool, args.generations))
    else:
        work = asyncio.create_task(_until_all_done(pool, args.generations))
    await submits
    await work
    wall_s = time.perf_counter() - started
    trips = RoundTrips.count - trips_before
    await asyncio.sleep(STATS_SETTLE_S)
    figures = bench_probe.difference(before, await bench_probe.sample(probe, easel_pids))
    await probe.close()
    may_close.set()
    for process in others:
        await asyncio.to_thread(process.join)
    first_edit_s = [at - started for at in chat.first_edit_at.values()]
    rows = await pool.fetch(
        """SELECT extract(epoch FROM finished_at - created_at) AS e2e,
                  extract(epoch FROM finished_at - started_at) * 1000
                    - coalesce((SELECT sum(duration_ms) FROM generation_events e
                                WHERE e.generation_id = g.id AND e.stage = 'generating'), 0)
                    AS overhead_ms, status::text AS status
           FROM generations g"""
    )
    await pool.close()
    await rt.intake_pool.close()
    await _drop_database(admin_url, url)
    e2e = [float(r["e2e"]) for r in rows if r["status"] == "succeeded"]
    overhead = [float(r["overhead_ms"]) for r in rows if r["status"] == "succeeded"]
    peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
               + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    counted = "" if not others else " (round trips counted in the main process only)"
    print(f"easel bench: {args.generations} generations, {args.users} users, provider latency "
          f"{args.latency_ms:.0f} ms, worker concurrency {args.concurrency}, "
          f"{args.workers} worker process(es), pool {args.pool_size}"
          + (", synchronous_commit off" if args.async_commit else "")
          + (", submitting from a separate process" if args.separate_gateway else ""))
    print(f"  succeeded            {len(e2e)} / {len(rows)}")
    print(f"  wall                 {wall_s:.2f} s")
    print(f"  throughput           {len(e2e) / wall_s:.1f} generations/s")
    print(f"  submit→done          p50 {_pct(e2e, .5) * 1000:.0f} ms  p99 {_pct(e2e, .99) * 1000:.0f} ms")
    print(f"  submit latency       p50 {_pct(submit_s, .5) * 1000:.1f} ms  "
          f"p99 {_pct(submit_s, .99) * 1000:.1f} ms  (what a platform's 3 s ack waits on)")
    print(f"  request→status       p50 {_pct(status_s, .5) * 1000:.1f} ms  "
          f"p99 {_pct(status_s, .99) * 1000:.1f} ms  (all arrive at once; status posted)")
    print(f"  request→first edit   p50 {_pct(first_edit_s, .5) * 1000:.0f} ms  "
          f"p99 {_pct(first_edit_s, .99) * 1000:.0f} ms  (a worker shows the first stage)")
    print(f"  core overhead/gen    p50 {_pct(overhead, .5):.1f} ms  p99 {_pct(overhead, .99):.1f} ms"
          "  (worker time minus provider time)")
    print(f"  SQL round trips/gen  {trips / max(1, len(rows)):.1f}{counted}")
    for line in bench_probe.cpu_lines(figures, len(rows)):
        print(line)
    print(f"  status edits         {rt.platforms['bench'].edits}")  # type: ignore[attr-defined]
    print(f"  peak RSS             {peak_mb:.0f} MB")
    print(f"  mean submit          {statistics.fmean(submit_s) * 1000:.1f} ms")
    return 0 if len(e2e) == len(rows) else 1
