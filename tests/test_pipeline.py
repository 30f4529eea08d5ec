"""The life of a request through the real core: submit → worker → stages → image or refund."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from core import generations as q
from core.errors import (
    ContentPolicy,
    InsufficientCredits,
    RateLimited,
    RateLimitedByProvider,
    TooManyActive,
)
from core.models import Images, StatusView
from core.pipeline import LeaseLost, Pipeline
from core.service import Easel
from core.status import received_view
from core.submit import SubmitRequest
from core.sweeper import sweep
from core.worker import Worker
from tests.corekit import FakeChat, ScriptedProvider, ledger_ok, make_runtime, request, thread, user


async def _ask(easel: Easel, chat: FakeChat, text: str, **kwargs: object):
    req = request(text, **kwargs)
    status = await chat.post_status(req.thread, received_view(text))
    req = SubmitRequest(**{**req.__dict__, "status_message": status})
    return await easel.submit(req), status


async def _rows(pool: asyncpg.Pool, sql: str, *args: object) -> list[asyncpg.Record]:
    return await pool.fetch(sql, *args)


async def test_a_request_ends_with_an_image_and_one_charge(
    pool: asyncpg.Pool, images_dir: Path
) -> None:
    chat = FakeChat()
    rt = make_runtime(pool, images_dir, chat=chat, default_model="sketch")
    easel = Easel(rt)
    submitted, status = await _ask(easel, chat, "a lighthouse at dusk")
    assert await Worker(rt).run_until_empty() == 1

    shown = chat.find(status)
    headlines = [v.headline for v in shown.history if isinstance(v, StatusView)]
    for word in ("Understanding", "Refining", "Generating", "Uploading", "Finalizing", "Done"):
        assert any(word in h for h in headlines), (word, headlines)
    final = shown.current
    # One row of buttons per image: the image carries them, the final status none.
    assert isinstance(final, StatusView) and final.succeeded and not final.buttons
    images = chat.images(thread())
    assert len(images) == 1 and images[0].data.startswith(b"\x89PNG") and images[0].buttons
    assert (images_dir / images[0].object_key).read_bytes() == images[0].data
    row = (await _rows(pool, "SELECT * FROM generations"))[0]
    assert row["status"] == "succeeded" and row["refined_prompt"]
    events = [r["stage"] for r in await _rows(pool, "SELECT stage FROM generation_events ORDER BY id")]
    plan = ["plan_intent", "plan_subjects", "plan_style", "plan_constraints", "plan_prompt"]
    assert events == ["understanding", *plan, "refining_prompt", "generating", "uploading",
                      "succeeded"], "how the prompt was constructed comes before it is sent"
    reservation = (await _rows(pool, "SELECT * FROM reservations"))[0]
    assert reservation["status"] == "confirmed" and reservation["generation_id"] == submitted.generation_id
    assert await ledger_ok(pool) == []


async def test_a_repeated_event_makes_one_generation_and_one_reservation(
    pool: asyncpg.Pool, images_dir: Path
) -> None:
    rt = make_runtime(pool, images_dir, providers={"google": ScriptedProvider("google")},
                      default_model="nano2")
    easel = Easel(rt)
    first = await easel.submit(request("a fox", event="evt-1"))
    again = await easel.submit(request("a fox", event="evt-1"))
    assert again.duplicate and again.generation_id == first.generation_id
    assert await pool.fetchval("SELECT count(*) FROM generations") == 1
    assert await pool.fetchval("SELECT count(*) FROM reservations") == 1
    assert await pool.fetchval("SELECT available FROM accounts") == 50 - first.cost


async def test_a_refinement_builds_on_the_last_image(pool: asyncpg.Pool, images_dir: Path) -> None:
    provider = ScriptedProvider()
    rt = make_runtime(pool, images_dir, providers={"sketch": provider})
    easel = Easel(rt)
    first, _ = await _ask(easel, FakeChat(), "a red fox")
    await Worker(rt).run_until_empty()
    second, _ = await _ask(easel, FakeChat(), "make it night")
    await Worker(rt).run_until_empty()
    parent = await pool.fetchval("SELECT parent_id FROM generations WHERE id = $1",
                                 second.generation_id)
    assert parent == first.generation_id
    assert "fox" in provider.requests[1].prompt and "night" in provider.requests[1].prompt
    assert provider.requests[1].input_images, "the edit got the previous image"


async def test_transient_error_then_success_charges_once(
    pool: asyncpg.Pool, images_dir: Path
) -> None:
    provider = ScriptedProvider(script=[RateLimitedByProvider(retry_after_s=0.05)])
    chat = FakeChat()
    rt = make_runtime(pool, images_dir, providers={"sketch": provider}, chat=chat)
    easel = Easel(rt)
    _, status = await _ask(easel, chat, "a castle")
    await Worker(rt).run_until_empty()
    row = await pool.fetchrow("SELECT status, attempts FROM generations")
    assert (row["status"], row["attempts"]) == ("succeeded", 2)
    notes = [line for v in chat.find(status).history if isinstance(v, StatusView)
             for line in v.lines]
    assert any("trying again" in line for line in notes)
    assert await pool.fetchval("SELECT count(*) FROM ledger WHERE kind = 'confirm'") == 1
    assert await ledger_ok(pool) == []


async def test_permanent_error_refunds_and_says_why(pool: asyncpg.Pool, images_dir: Path) -> None:
    provider = ScriptedProvider("google", script=[ContentPolicy()])
    chat = FakeChat()
    rt = make_runtime(pool, images_dir, providers={"google": provider}, chat=chat,
                      default_model="pro")
    easel = Easel(rt)
    submitted, status = await _ask(easel, chat, "something forbidden")
    assert submitted.cost > 0
    await Worker(rt).run_until_empty()
    final = chat.find(status).current
    assert isinstance(final, StatusView) and final.succeeded is False
    assert "content policy" in final.headline and "Nothing was charged" in final.headline
    account = await pool.fetchrow("SELECT available, reserved, spent FROM accounts")
    assert tuple(account) == (50, 0, 0)
    assert len(provider.requests) == 1, "a permanent error is not retried"
    assert await ledger_ok(pool) == []


async def test_transient_errors_until_out_of_attempts_refund(
    pool: asyncpg.Pool, images_dir: Path
) -> None:
    provider = ScriptedProvider(script=[RateLimitedByProvider(retry_after_s=0.01)] * 5)
    chat = FakeChat()
    rt = make_runtime(pool, images_dir, providers={"sketch": provider}, chat=chat,
                      max_attempts=3)
    easel = Easel(rt)
    _, status = await _ask(easel, chat, "a boat")
    await Worker(rt).run_until_empty()
    assert len(provider.requests) == 3
    assert await pool.fetchval("SELECT status FROM generations") == "failed"
    assert await pool.fetchval("SELECT status FROM reservations") == "released"
    final = chat.find(status).current
    assert isinstance(final, StatusView) and "Nothing was charged" in final.headline


@pytest.mark.parametrize("limit", ["credits", "active", "rate"])
async def test_refusals_leave_no_reservation(
    pool: asyncpg.Pool, images_dir: Path, limit: str
) -> None:
    settings: dict[str, object] = {"default_model": "pro"}
    if limit == "credits":
        settings["starter_credits"] = 3
    if limit == "active":
        settings["max_active"] = 2
    if limit == "rate":
        settings["rate_per_minute"] = 2
    rt = make_runtime(pool, images_dir, providers={"google": ScriptedProvider("google")},
                      **settings)
    easel = Easel(rt)
    expected = {"credits": InsufficientCredits, "active": TooManyActive, "rate": RateLimited}
    if limit != "credits":
        await easel.submit(request("one"))
        await easel.submit(request("two"))
    before = await pool.fetchval("SELECT count(*) FROM reservations")
    with pytest.raises(expected[limit]) as refused:
        await easel.submit(request("three"))
    assert "Nothing was charged" in refused.value.user_message or limit == "credits"
    assert await pool.fetchval("SELECT count(*) FROM reservations") == before
    assert await ledger_ok(pool) == []


async def test_a_worker_whose_lease_was_taken_cannot_finish_or_post(
    pool: asyncpg.Pool, images_dir: Path
) -> None:
    chat = FakeChat()
    rt = make_runtime(pool, images_dir, chat=chat)
    easel = Easel(rt)
    await _ask(easel, chat, "a slow horse")
    [stale] = await q.claim(pool, "worker-a", 1, 30, ["console"])
    # worker A stalls; its lease runs out and the sweeper gives the job to worker B
    await pool.execute("UPDATE generations SET locked_until = now() - interval '1 second'")
    assert (await sweep(rt)).requeued == 1
    await Worker(rt).run_until_empty()
    assert len(chat.images(thread())) == 1
    # A wakes up and tries to carry on: every fenced write refuses it
    assert await pool.fetchrow(q.SUCCEED, stale.id, stale.claims, None, "", {}, "", None) is None
    assert await pool.fetchrow(q.FAIL, stale.id, stale.claims, "x", "", {}, "", None) is None
    await Pipeline(rt).run(stale)  # records nothing, posts nothing
    assert len(chat.images(thread())) == 1
    assert await pool.fetchval("SELECT status FROM generations") == "succeeded"
    assert await pool.fetchval("SELECT count(*) FROM ledger WHERE kind = 'confirm'") == 1
    assert await ledger_ok(pool) == []


async def test_lease_lost_is_raised_by_a_fenced_stage_write(
    pool: asyncpg.Pool, images_dir: Path
) -> None:
    rt = make_runtime(pool, images_dir)
    await Easel(rt).submit(request("x"))
    [job] = await q.claim(pool, "w", 1, 30, ["console"])
    await pool.execute("UPDATE generations SET claims = claims + 1")
    from core.pipeline import _Run

    run = _Run(Pipeline(rt), job, rt.catalog.get(job.model), None)  # type: ignore[arg-type]
    from core.models import Stage

    with pytest.raises(LeaseLost):
        await run._record(Stage.REFINING_PROMPT)


async def test_final_status_is_delivered_despite_failing_edits(
    pool: asyncpg.Pool, images_dir: Path
) -> None:
    chat = FakeChat()
    rt = make_runtime(pool, images_dir, chat=chat, status_edit_interval_s=10.0)
    easel = Easel(rt)
    _, status = await _ask(easel, chat, "a tree")
    chat.fail_edits = 2  # the first progress edit and the first final attempt fail
    await Worker(rt).run_until_empty()
    final = chat.find(status).current
    assert isinstance(final, StatusView) and final.succeeded
    # coalescing: with a 10 s interval only the first progress edit and the final one are made
    assert chat.edit_calls <= 4


async def test_images_result_type_is_used(pool: asyncpg.Pool, images_dir: Path) -> None:
    assert Images(()).images == ()


class _DiesWhilePosting(FakeChat):
    """Posts (or not) and then dies, as a worker killed around the image post would."""

    def __init__(self, *, posts_first: bool) -> None:
        super().__init__()
        self.posts_first = posts_first
        self.deaths = 1

    async def post_image(self, thread, image):  # type: ignore[no-untyped-def]
        if self.deaths and not self.posts_first:
            self.deaths -= 1
            raise asyncio.CancelledError()
        posted = await super().post_image(thread, image)
        if self.deaths:
            self.deaths -= 1
            raise asyncio.CancelledError()
        return posted


@pytest.mark.parametrize("posts_first", [True, False])
async def test_a_worker_dying_around_the_post_delivers_the_image_once(
    pool: asyncpg.Pool, images_dir: Path, posts_first: bool
) -> None:
    chat = _DiesWhilePosting(posts_first=posts_first)
    provider = ScriptedProvider()
    rt = make_runtime(pool, images_dir, chat=chat, providers={"sketch": provider})
    await _ask(Easel(rt), chat, "a kite")
    await Worker(rt).run_until_empty()
    assert len(chat.images(thread())) == 1
    assert len(provider.requests) == 1, "the stored image is delivered, not made again"
    assert await pool.fetchval("SELECT status FROM generations") == "succeeded"
    assert await pool.fetchval("SELECT count(*) FROM ledger WHERE kind = 'confirm'") == 1
    assert await ledger_ok(pool) == []


async def test_a_final_status_nobody_showed_is_shown_by_the_sweeper(
    pool: asyncpg.Pool, images_dir: Path
) -> None:
    chat = FakeChat()
    rt = make_runtime(pool, images_dir, chat=chat, status_edit_interval_s=10.0)
    _, status = await _ask(Easel(rt), chat, "a lamp")
    chat.fail_edits = 100  # the platform refuses every edit while the worker runs
    await Worker(rt).run_until_empty()
    assert await pool.fetchval("SELECT final_shown_at FROM generations") is None
    assert not any(isinstance(v, StatusView) and v.is_final for v in chat.find(status).history)
    chat.fail_edits = 0
    await pool.execute("UPDATE generations SET finished_at = now() - interval '1 hour'")
    assert (await sweep(rt)).shown == 1
    final = chat.find(status).current
    assert isinstance(final, StatusView) and final.succeeded and final.buttons
    assert await pool.fetchval("SELECT final_shown_at FROM generations") is not None
    assert (await sweep(rt)).shown == 0


async def test_a_webhook_that_beats_the_park_requeues_at_once(
    pool: asyncpg.Pool, images_dir: Path
) -> None:
    from core.models import Parked
    from core.webhooks import accept_prediction_webhook

    provider = ScriptedProvider(script=[Parked("pred-1")])
    rt = make_runtime(pool, images_dir, providers={"sketch": provider}, webhook_grace_s=600.0)
    await Easel(rt).submit(request("a fast model"))
    outcome = await accept_prediction_webhook(pool, webhook_id="w-1", source="replicate",
                                              external_id="pred-1")
    assert outcome == "ignored"  # nothing is parked under that prediction yet
    await Worker(rt).run_until_empty(timeout_s=10)
    assert await pool.fetchval("SELECT status FROM generations") == "succeeded"
    assert provider.resumed == ["pred-1"]


async def test_the_same_event_twenty_times_at_once_is_one_generation(
    pool: asyncpg.Pool, images_dir: Path
) -> None:
    rt = make_runtime(pool, images_dir, providers={"google": ScriptedProvider("google")},
                      default_model="nano2", max_active=50)
    easel = Easel(rt)
    results = await asyncio.gather(*(easel.submit(request("a fox", event="evt-race"))
                                     for _ in range(20)))
    assert len({r.generation_id for r in results}) == 1
    assert sum(not r.duplicate for r in results) == 1
    assert await pool.fetchval("SELECT count(*) FROM generations") == 1
    assert await pool.fetchval("SELECT count(*) FROM reservations") == 1
    assert await pool.fetchval("SELECT count(*) FROM messages") == 1
    assert await ledger_ok(pool) == []


async def test_200_concurrent_submits_take_exactly_what_the_balance_holds(
    pool: asyncpg.Pool, images_dir: Path
) -> None:
    # nano2 at 2K costs 10: a balance of 95 pays for exactly 9 of 200 requests at once.
    rt = make_runtime(pool, images_dir, providers={"google": ScriptedProvider("google")},
                      default_model="nano2", starter_credits=95, max_active=500,
                      rate_per_minute=500)
    easel = Easel(rt)
    await easel.credits(user())  # open the account before the rush

    async def one(n: int) -> bool:
        try:
            await easel.submit(request(f"fox {n}", n=n))
        except InsufficientCredits:
            return False
        return True

    results = await asyncio.gather(*(one(n) for n in range(200)))
    assert sum(results) == 9
    account = await pool.fetchrow("SELECT available, reserved FROM accounts")
    assert (account["available"], account["reserved"]) == (5, 90)
    assert await pool.fetchval("SELECT count(*) FROM generations") == 9
    assert await ledger_ok(pool) == []
