"""The JSON API and its live events: a generation run by a worker process, streamed by the
web process over Postgres LISTEN/NOTIFY; and who may read what."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from core.links import GrantKind, sign_link
from tests import test_processes as kit
from tests.flowkit import SECRET, build_thread, serving
from tests.procs import EaselProcesses, free_port, wait_until
from tests.test_processes import SlowOpenAI, Submitter, easel_env

# The process tests' fixtures: a fake Slack, a gated fake OpenAI, the processes, a submitter.
slack, openai, procs, make_submitter = kit.slack, kit.openai, kit.procs, kit.make_submitter

SECRET_KEY = "api-test-secret-key-0123456789"


async def read_sse(response: aiohttp.ClientResponse, into: list[tuple[str, dict[str, Any]]]) -> None:
    """Parse a text/event-stream into (event, data) pairs until the server ends it."""
    event, data = "message", ""
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data = line.removeprefix("data: ")
        elif not line and data:
            into.append((event, json.loads(data)))
            event, data = "message", ""


@pytest.mark.slow
async def test_a_generation_run_by_a_worker_process_streams_live_from_the_web_process(
    database_url: str, pool: asyncpg.Pool, slack: Any, openai: SlowOpenAI,
    procs: EaselProcesses, make_submitter: Callable[..., Submitter], tmp_path: Path,
) -> None:
    procs.env = easel_env(database_url, slack, openai, tmp_path / "data",
                          EASEL_SECRET_KEY=SECRET_KEY, PUBLIC_URL="http://127.0.0.1")
    port = free_port()
    await procs.start_web("web", port)
    openai.gate = asyncio.Event()  # the image request waits until the stream has seen it start
    await procs.start_worker("worker")
    sent = await make_submitter().submit(1)
    session_id = await pool.fetchval("SELECT session_id FROM generations WHERE id = $1",
                                     sent.generation_id)
    token = sign_link(SECRET_KEY.encode(), GrantKind.SESSION, session_id, int(time.time()) + 600)
    base = f"http://127.0.0.1:{port}/api/generations/{sent.generation_id}"
    events: list[tuple[str, dict[str, Any]]] = []
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/events", params={"token": token}) as stream:
            assert stream.status == 200 and stream.content_type == "text/event-stream"
            reader = asyncio.create_task(read_sse(stream, events))

            async def generating() -> bool:
                return any(e == "state" and d["stage"] == "generating" for e, d in events)

            await wait_until(generating, timeout_s=30, what="the stream to show 'generating'")
            async with http.get(base, headers={"Authorization": f"Bearer {token}"}) as response:
                midway = await response.json()
            assert response.status == 200
            assert (midway["status"], midway["stage"], midway["images"]) == (
                "running", "generating", [])
            openai.gate.set()
            await asyncio.wait_for(reader, 60)

        names = [e for e, _ in events]
        stages = [d["stage"] for e, d in events if e == "stage"]
        print(f"SSE events: {names}")
        assert stages[:2] == ["understanding", "plan_intent"] and stages[-1] == "succeeded"
        assert stages[stages.index("plan_prompt") + 1] == "refining_prompt"
        assert names[-1] == "done"
        done = events[-1][1]
        assert done["status"] == "succeeded" and done["charged"] == done["cost"] > 0
        assert done["prompts"]["user"] == "a lighthouse number 1 at dusk"
        assert done["prompts"]["sent"] and done["model"] == "gpt" and done["model_id"]
        assert {"aspect_ratio", "resolution"} <= set(done["params"])
        assert [e["stage"] for e in done["events"]] == stages
        # Event ids let a reconnecting EventSource resume after the last one it saw.
        last_id = max(d["id"] for e, d in events if e == "stage")
        async with http.get(f"{base}/events", params={"token": token},
                            headers={"Last-Event-ID": str(last_id)}) as again:
            replay: list[tuple[str, dict[str, Any]]] = []
            await read_sse(again, replay)
        assert [e for e, _ in replay] == ["state", "done"]
        (image,) = done["images"]
        async with http.get(f"http://127.0.0.1:{port}{image['url']}") as response:
            assert response.status == 200 and (await response.read()).startswith(b"\x89PNG")


async def test_tampered_expired_or_another_persons_token_gets_403_and_no_traversal(
    pool: asyncpg.Pool, images_dir: Path
) -> None:
    t = await build_thread(pool, images_dir)
    mine = await pool.fetchrow("SELECT session_id, user_id FROM generations WHERE id = $1", t.first)
    asset = await pool.fetchval("SELECT id FROM assets WHERE generation_id = $1", t.first)
    other_user = await pool.fetchval(
        "INSERT INTO users (platform, workspace, external_id) VALUES ('console', '', 'bob') "
        "RETURNING id")
    later = int(time.time()) + 600
    good = {
        "session": sign_link(SECRET, GrantKind.SESSION, mine["session_id"], later),
        "person": sign_link(SECRET, GrantKind.PERSON, mine["user_id"], later),
    }
    session_mac = good["session"].rsplit(".", 1)[1]
    refused = {
        "tampered": good["session"][:-1] + ("A" if good["session"][-1] != "A" else "B"),
        "another key": sign_link(b"another-key", GrantKind.SESSION, mine["session_id"], later),
        "expired": sign_link(SECRET, GrantKind.SESSION, mine["session_id"], int(time.time()) - 1),
        "another person": sign_link(SECRET, GrantKind.PERSON, other_user, later),
        "another session": sign_link(SECRET, GrantKind.SESSION, mine["session_id"] + 1, later),
        "kind swapped": f"u{mine['session_id']}.{later}.{session_mac}",
        "none": "",
    }
    async with serving(t.rt) as base, aiohttp.ClientSession() as http:
        api = f"{base}/api/generations/{t.first}"
        for name, token in good.items():
            async with http.get(api, params={"token": token}) as response:
                assert response.status == 200, name
                assert (await response.json())["id"] == t.first
            async with http.get(f"{api}/images/{asset}", params={"token": token}) as response:
                assert response.status == 200 and (await response.read()).startswith(b"\x89PNG")
        for name, token in refused.items():
            if token:  # the studio's own image route refuses the same tokens
                studio_image = f"{base}/studio/{token}/image/{t.first}/{asset}"
                async with http.get(studio_image) as r:
                    assert r.status == 403, (name, "studio image", r.status)
            for path in ("", "/events", f"/images/{asset}"):
                async with http.get(api + path, headers={"Authorization": f"Bearer {token}"}) as r:
                    assert r.status == 403, (name, path, r.status)
        # An id nobody may see answers like one that does not exist: 403, nothing to probe.
        async with http.get(f"{base}/api/generations/999999", params=good) as response:
            assert response.status == 403
        # Image routes take ids only, and serve only that generation's own images.
        other_asset = await pool.fetchval(
            "SELECT id FROM assets WHERE generation_id = $1", t.refined)
        traversal = [
            f"{api}/images/{other_asset}", f"{api}/images/..%2F..%2F..%2Fetc%2Fpasswd",
            f"{api}/images/../../../../etc/passwd", f"{api}/images/%2e%2e%2fpasswd",
            f"{base}/flow/{good['session']}/image/..%2F..%2Fetc%2Fpasswd",
            f"{base}/flow/{good['session']}/image/%2e%2e",
            # The studio's image routes: another generation's asset, or a path, never served.
            f"{base}/studio/{good['session']}/image/{t.first}/{other_asset}",
            f"{base}/studio/{good['session']}/image/{t.first}/..%2F..%2Fetc%2Fpasswd",
            f"{base}/studio/{good['session']}/image/..%2F{t.first}/{asset}",
            f"{base}/studio/{good['session']}/composite/..%2F..%2Fetc%2Fpasswd",
            f"{base}/studio/{good['person']}/image/{t.first}/%2e%2e%2f%2e%2e%2fpasswd",
        ]
        for url in traversal:
            async with http.get(url, params={"token": good["session"]}) as response:
                body = await response.read()
                assert response.status in (403, 404), (url, response.status)
                assert b"root:" not in body and not body.startswith(b"\x89PNG"), url
