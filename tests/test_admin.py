"""The operator's view: counts, the failures of the last day, retry, credits and spend.

A generation that failed (and was refunded) is retried from the admin page: a new
reservation, a new generation linked to the old one, posted in the original thread,
charged once. Any token but an admin one gets 403, and nothing is retried.
"""

from __future__ import annotations

import html
import json
import re
import time
from pathlib import Path

import aiohttp
import asyncpg

from core.admin import FAILED
from core.errors import ContentPolicy
from core.links import GrantKind, sign_link
from core.service import Easel
from core.worker import Worker
from tests.corekit import FakeChat, ScriptedProvider, ledger_ok, make_runtime, request, thread
from tests.flowkit import SECRET, serving


def _text(page: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


async def test_a_failed_generation_retried_from_the_admin_page_succeeds_and_is_charged_once(
    pool: asyncpg.Pool, images_dir: Path
) -> None:
    chat = FakeChat()
    google = ScriptedProvider("google", script=[ContentPolicy()])
    rt = make_runtime(pool, images_dir, chat=chat, providers={"sketch": ScriptedProvider(),
                                                              "google": google})
    asked = await Easel(rt).submit(request("a fox in the snow", model="nano2"))
    await Worker(rt).run_until_empty()
    failed = asked.generation_id
    row = await pool.fetchrow("SELECT status::text, user_id, cost FROM generations WHERE id = $1",
                              failed)
    assert row["status"] == "failed" and row["cost"] > 0
    cost, person = row["cost"], row["user_id"]
    before = await pool.fetchrow("SELECT * FROM accounts WHERE user_id = $1", person)
    assert before["spent"] == 0 and before["reserved"] == 0, "the failure was refunded"
    admin = sign_link(SECRET, GrantKind.ADMIN, 0, int(time.time()) + 600)

    async with serving(rt) as base, aiohttp.ClientSession() as http:
        async with http.get(f"{base}/admin/{admin}") as response:
            assert response.status == 200
            assert "form-action 'self'" in response.headers["Content-Security-Policy"]
            page = await response.text()
        text = _text(page)
        print(text[:600])
        assert "Queued 0 Running 0 Waiting on a provider 0 Failed, last 24 h 1" in text
        assert f"#{failed}" in text and "content policy" in text
        assert f'action="{admin}/retry/{failed}"' in page
        assert "console:ada" in text, "who asked, and their credits"

        retry = f"{base}/admin/{admin}/retry/{failed}"
        async with http.post(retry, allow_redirects=False) as response:
            assert response.status == 303
            location = response.headers["Location"]
        async with http.post(retry) as response:  # a second click: the same retry
            assert response.status == 200
            again = _text(await response.text())
        new = int(re.search(r"as=(\d+)", location)[1])  # type: ignore[index]
        assert f"#{failed} is queued again as #{new}" in again
        assert f"retried as #{new}" in again
        assert await pool.fetchval("SELECT count(*) FROM generations WHERE retry_of = $1",
                                   failed) == 1

        await Worker(rt).run_until_empty()
        async with http.get(f"{base}/admin/{admin}") as response:
            after_page = _text(await response.text())

    retried = await pool.fetchrow("SELECT * FROM generations WHERE id = $1", new)
    assert retried["status"] == "succeeded" and retried["retry_of"] == failed
    assert retried["session_id"] == asked.session_id and retried["model"] == "nano2"
    images = chat.images(thread())
    assert [i.generation_id for i in images] == [new], "posted in the original thread"
    account = await pool.fetchrow("SELECT * FROM accounts WHERE user_id = $1", person)
    assert account["spent"] == cost and account["reserved"] == 0, "charged once"
    assert account["available"] == before["available"] - cost
    ledger = await pool.fetch(
        "SELECT generation_id, kind::text, reason FROM ledger WHERE generation_id IS NOT NULL "
        "ORDER BY id")
    assert [(r["generation_id"], r["kind"]) for r in ledger] == [
        (failed, "reserve"), (failed, "release"), (new, "reserve"), (new, "confirm")]
    assert ledger[2]["reason"] == f"retry of #{failed} by the CLI admin link"
    events = {r["stage"]: json.loads(r["detail"]) if isinstance(r["detail"], str) else r["detail"]
              for r in await pool.fetch(
                  "SELECT stage, detail FROM generation_events WHERE stage IN "
                  "('admin_retry', 'retry_of')")}
    assert events == {"admin_retry": {"retried_as": new, "by": "the CLI admin link"},
                      "retry_of": {"failed": failed, "by": "the CLI admin link"}}
    assert f"retried as #{new} succeeded" in after_page
    assert await ledger_ok(pool) == []


async def test_only_an_admin_token_opens_the_page_or_retries(
    pool: asyncpg.Pool, images_dir: Path
) -> None:
    google = ScriptedProvider("google", script=[ContentPolicy()])
    rt = make_runtime(pool, images_dir, providers={"sketch": ScriptedProvider(), "google": google})
    asked = await Easel(rt).submit(request("a fox", model="nano2"))
    await Worker(rt).run_until_empty()
    mine = await pool.fetchrow("SELECT session_id, user_id FROM generations WHERE id = $1",
                               asked.generation_id)
    later = int(time.time()) + 600
    admin = sign_link(SECRET, GrantKind.ADMIN, 0, later)
    refused = {
        "person": sign_link(SECRET, GrantKind.PERSON, mine["user_id"], later),
        "session": sign_link(SECRET, GrantKind.SESSION, mine["session_id"], later),
        "tampered": admin[:-1] + ("A" if admin[-1] != "A" else "B"),
        "expired": sign_link(SECRET, GrantKind.ADMIN, 0, int(time.time()) - 1),
        "another key": sign_link(b"another-key", GrantKind.ADMIN, 0, later),
    }
    async with serving(rt) as base, aiohttp.ClientSession() as http:
        for name, token in refused.items():
            async with http.get(f"{base}/admin/{token}") as response:
                assert response.status == 403, name
                assert "dead-letters" not in await response.text(), name
            async with http.post(f"{base}/admin/{token}/retry/{asked.generation_id}",
                                 allow_redirects=False) as response:
                assert response.status == 403, name
    assert await pool.fetchval("SELECT count(*) FROM generations") == 1, "nothing was retried"


async def test_the_dead_letter_query_reads_the_failed_index_not_the_history(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        plan = json.dumps(await conn.fetchval(f"EXPLAIN (FORMAT JSON) {FAILED}", 100))
    print(plan[:400])
    assert "generations_failed" in plan


def test_easel_admin_link_prints_a_signed_admin_link_or_says_what_is_missing(
    tmp_path: Path,
) -> None:
    import os
    import subprocess
    import sys

    from core.links import verify_link

    def run(**env: str) -> subprocess.CompletedProcess[str]:
        clean = {k: v for k, v in os.environ.items() if k not in ("PUBLIC_URL", "EASEL_SECRET_KEY")}
        return subprocess.run([sys.executable, "-m", "bot.cli", "admin", "link", "--hours", "2"],
                              capture_output=True, text=True, timeout=120,
                              env={**clean, "EASEL_DATA_DIR": str(tmp_path), **env})

    missing = run()
    assert missing.returncode == 2 and "PUBLIC_URL and EASEL_SECRET_KEY" in missing.stderr
    made = run(PUBLIC_URL="https://easel.example/", EASEL_SECRET_KEY="admin-link-test-key")
    assert made.returncode == 0, made.stderr
    url = made.stdout.strip()
    assert url.startswith("https://easel.example/admin/a0.")
    grant = verify_link([b"admin-link-test-key"], url.rsplit("/", 1)[1], time.time())
    assert grant.kind is GrantKind.ADMIN and grant.subject == 0
    assert 7100 < grant.expires_at - time.time() <= 7200


async def test_the_admin_link_is_for_admins_only(pool: asyncpg.Pool, images_dir: Path) -> None:
    import pytest

    from core.errors import NotAllowed
    from core.links import verify_link
    from tests.corekit import user

    rt = make_runtime(pool, images_dir, public_url="https://easel.example", flow_secret=SECRET)
    with pytest.raises(NotAllowed):
        await Easel(rt).admin_link(user("mallory"), is_admin=False)
    link = await Easel(rt).admin_link(user("ada"), is_admin=True)
    grant = verify_link([SECRET], link.rsplit("/", 1)[1], time.time())
    ada = await pool.fetchval("SELECT id FROM users WHERE external_id = 'ada'")
    assert grant.kind is GrantKind.ADMIN and grant.subject == ada, "the link names who asked"
