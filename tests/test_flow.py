"""The prompt-flow page: signed links, the lineage tree as HTML, its images, the console's file."""

from __future__ import annotations

import asyncio
import html
import io
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

import aiohttp
import asyncpg
import pytest

from adapters.console.chat import ConsoleChat, lines_from
from adapters.console.platform import ConsolePlatform
from adapters.storage.s3 import S3ObjectStore, build_s3_client
from bot.flow_page import write_flow_file
from core.errors import ContentPolicy, FlowUnavailable
from core.flow import FlowLinkInvalid, sign_flow_token, verify_flow_token
from core.service import NOT_A_SESSION, Easel
from core.worker import Worker
from tests.corekit import make_runtime, request, thread
from tests.fakes.s3_server import moto_s3
from tests.flowkit import SECRET, TURNS, build_thread, outline, serving

NOW = 1_700_000_000
S3_SECRET_ACCESS_KEY = "easel-flow-secret-access-key"


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with moto_s3("AKIAEASELFLOW0000001", S3_SECRET_ACCESS_KEY) as endpoint:
        yield endpoint


def test_a_token_carries_its_session_and_expiry_and_nothing_else_verifies() -> None:
    token = sign_flow_token(SECRET, 42, NOW + 60)
    assert verify_flow_token(SECRET, token, NOW) == 42
    assert re.fullmatch(r"[0-9A-Za-z._-]+", token), "safe in a URL path as it is"
    session, expires, mac = token.split(".")
    flipped = mac[:-1] + ("A" if mac[-1] != "A" else "B")
    refused = [
        f"{session}.{expires}.{flipped}",  # wrong signature
        f"43.{expires}.{mac}",  # another session
        f"{session}.{NOW + 10**6}.{mac}",  # a later expiry
        f"+42.{expires}.{mac}", f"042.{expires}.{mac}", f"{token}.", f" {token}", "", "42",
    ]
    for bad in refused:
        with pytest.raises(FlowLinkInvalid):
            verify_flow_token(SECRET, bad, NOW)
    with pytest.raises(FlowLinkInvalid):
        verify_flow_token(b"another-secret", token, NOW)
    with pytest.raises(FlowLinkInvalid):
        verify_flow_token(SECRET, token, NOW + 60)  # expired at the second it names
    with pytest.raises(FlowLinkInvalid):
        verify_flow_token(b"", token, NOW)
    with pytest.raises(ValueError):
        sign_flow_token(b"", 42, NOW)


async def test_flow_link_needs_settings_and_a_session(pool: asyncpg.Pool, images_dir: Path) -> None:
    easel = Easel(make_runtime(pool, images_dir))
    for secret, public_url in ((None, "https://easel.example"), (SECRET, None), (b"", "")):
        with pytest.raises(FlowUnavailable) as refused:
            await easel.flow_link(thread(), secret, public_url)
        assert refused.value.user_message == (
            "The prompt-flow page needs PUBLIC_URL and EASEL_SECRET_KEY set on this Easel."
        )
    with pytest.raises(FlowUnavailable) as refused:
        await easel.flow_link(thread(), SECRET, "https://easel.example")
    assert refused.value.user_message == NOT_A_SESSION

    submitted = await easel.submit(request("a kite"))
    link = await easel.flow_link(thread(), SECRET, "https://easel.example/easel/", ttl_s=3600)
    assert link.startswith("https://easel.example/easel/flow/")
    token = link.rsplit("/", 1)[1]
    assert verify_flow_token(SECRET, token, time.time()) == submitted.session_id
    assert abs(int(token.split(".")[1]) - (time.time() + 3600)) < 60


async def test_the_page_shows_every_turn_and_the_compare_side_by_side(
    pool: asyncpg.Pool, images_dir: Path
) -> None:
    t = await build_thread(pool, images_dir)
    rows = await pool.fetch("SELECT * FROM generations ORDER BY id")
    events = await pool.fetch("SELECT * FROM generation_events WHERE duration_ms IS NOT NULL")
    assert [r["status"] for r in rows] == ["succeeded", "succeeded", "succeeded", "failed"]
    assert [r["parent_id"] for r in rows][:2] == [None, t.first]
    async with serving(t.rt) as base, aiohttp.ClientSession() as http:
        link = await t.easel.flow_link(thread(), SECRET, base)
        async with http.get(link) as response:
            assert response.status == 200
            assert response.content_type == "text/html"
            assert response.headers["Referrer-Policy"] == "no-referrer"
            assert "no-store" in response.headers["Cache-Control"]
            page = await response.text()

        for turn in TURNS:
            assert f"<q>{html.escape(turn)}</q>" in page, turn
        for row in rows:
            assert html.escape(row["refined_prompt"]) in page, row["refined_prompt"]
            assert f'id="gen-{row["id"]}"' in page
        for stage, label in (("understanding", "Reading the thread"),
                             ("refining_prompt", "Constructing the prompt"),
                             ("generating", "Generating the image"),
                             ("uploading", "Storing the image"),
                             ("succeeded", "Succeeded"), ("failed", "Failed")):
            assert f'<span class="stage" data-stage="{stage}">{label}</span>' in page, stage
        assert "refining_prompt<" not in page and "size_bytes" not in page and "elapsed_s" not in page
        timings = re.findall(r'<span class="timing">(\d+ ms|\d+\.\d\d s)</span>', page)
        assert len(timings) == len(events) >= 10
        # Each model named once, with the provider's model id beside it (never "X (x)").
        assert '<span class="model">Nano Banana 2</span><code class="model-id">' in page
        assert '<span class="model">Sketch (offline)</span>' in page and "(sketch)" not in page
        assert "aspect 1:1 · resolution" in page
        assert f"{rows[2]['cost']} credits" in page and "not charged" in page
        assert page.count('<span class="outcome" data-field="status">succeeded</span>') == 3
        assert page.count('<span class="outcome" data-field="status">failed</span>') == 1
        assert html.escape(ContentPolicy.default_message) in page
        assert "<script" not in page and 'name="viewport"' in page

        tree = outline(page)
        left, right = (f"gen-{i}" for i in t.compare)
        assert {left, right} <= tree.inside[".compare"], "both compare images in one grid"
        assert f"gen-{t.refined}" in tree.inside[f"#step-{t.first}"], "the refinement is nested"
        assert left in tree.inside[f"#step-{t.refined}"], "the compare builds on the refinement"

        assert len(tree.images) == 3  # red, blue, green; the refused one has none
        stored = {r["object_key"] for r in await pool.fetch("SELECT object_key FROM assets")}
        for src in tree.images:
            async with http.get(urljoin(link, html.unescape(src))) as image:
                assert image.status == 200 and image.content_type == "image/png"
                data = await image.read()
            assert data.startswith(b"\x89PNG")
            assert any((images_dir / key).read_bytes() == data for key in stored)


async def test_with_s3_the_page_links_presigned_urls(
    pool: asyncpg.Pool, images_dir: Path, moto_endpoint: str
) -> None:
    client = build_s3_client(endpoint_url=moto_endpoint, region="us-east-1", path_style=True)
    await asyncio.to_thread(client.create_bucket, Bucket="easel-flow")
    store = S3ObjectStore("easel-flow", endpoint_url=moto_endpoint, region="us-east-1",
                          path_style=True)
    t = await build_thread(pool, images_dir, store=store)
    asset = await pool.fetchval("SELECT min(id) FROM assets")
    async with serving(t.rt) as base, aiohttp.ClientSession() as http:
        link = await t.easel.flow_link(thread(), SECRET, base)
        async with http.get(link) as response:
            page = await response.text()
        sources = [html.unescape(src) for src in outline(page).images]
        assert len(sources) == 3
        for src in sources:
            assert src.startswith(f"{moto_endpoint}/easel-flow/sessions/") and "X-Amz-Signature=" in src
            assert S3_SECRET_ACCESS_KEY not in src
            async with http.get(src) as image:
                assert image.status == 200 and (await image.read()).startswith(b"\x89PNG")
        # The signed image route serves from any store, so it works with S3 too.
        async with http.get(urljoin(link, f"{link.rsplit('/', 1)[1]}/image/{asset}")) as image:
            assert image.status == 200 and (await image.read()).startswith(b"\x89PNG")


async def test_wrong_expired_or_altered_links_get_403(pool: asyncpg.Pool, images_dir: Path) -> None:
    t = await build_thread(pool, images_dir)
    other = await t.easel.submit(request("a teapot", n=2))
    await Worker(t.rt).run_until_empty()
    mine = (await pool.fetchval("SELECT session_id FROM generations WHERE id = $1", t.first))
    asset = await pool.fetchval("SELECT id FROM assets WHERE generation_id = $1", t.first)
    later = int(time.time()) + 3600
    theirs = sign_flow_token(SECRET, other.session_id, later)
    _, expires, mac = theirs.split(".")
    forged = [
        sign_flow_token(b"not-the-key", mine, later),  # wrong signature
        sign_flow_token(SECRET, mine, int(time.time()) - 1),  # expired
        f"{mine}.{expires}.{mac}",  # another session's token bent to this one
        f"{mine}.{later}.{'A' * 43}",
    ]
    async with serving(t.rt) as base, aiohttp.ClientSession() as http:
        for token in forged:
            for path in (f"/flow/{token}", f"/flow/{token}/image/{asset}"):
                async with http.get(base + path) as response:
                    assert response.status == 403, (path, response.status)
                    assert "not valid any more" in await response.text()
        # A good token for the other session cannot fetch this session's image by its id.
        async with http.get(f"{base}/flow/{theirs}/image/{asset}") as response:
            assert response.status == 404
        async with http.get(f"{base}/flow/{theirs}") as response:
            page = await response.text()
        assert response.status == 200 and "a teapot" in page and TURNS[0] not in page
        async with http.get(f"{base}/flow/{sign_flow_token(SECRET, 999_999, later)}") as response:
            assert response.status == 404
    async with serving(t.rt, secret=None) as base, aiohttp.ClientSession() as http:
        async with http.get(f"{base}/flow/{theirs}") as response:
            assert response.status == 404  # not enabled without EASEL_SECRET_KEY


async def test_what_people_typed_is_escaped(pool: asyncpg.Pool, images_dir: Path) -> None:
    rt = make_runtime(pool, images_dir)
    easel = Easel(rt)
    await easel.submit(request('<script>alert("x")</script> & <img src=x onerror=y>'))
    await Worker(rt).run_until_empty()
    async with serving(rt) as base, aiohttp.ClientSession() as http:
        async with http.get(await easel.flow_link(thread(), SECRET, base)) as response:
            page = await response.text()
    assert "<script" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;img src=x" in page


async def test_console_flow_writes_a_page_with_file_images(
    pool: asyncpg.Pool, images_dir: Path, tmp_path: Path
) -> None:
    out = io.StringIO()
    platform = ConsolePlatform(out, interactive=False)
    rt = make_runtime(pool, images_dir, chat=platform)  # type: ignore[arg-type]
    chat = ConsoleChat(rt, platform, user="ada", data_dir=tmp_path / "data",
                       write_flow=lambda session, folder: write_flow_file(rt, session, folder))
    status = await chat.run(lines_from(["a red fox", "make it night", "/flow", "/new", "/flow"]))
    printed = out.getvalue()
    found = re.search(r"Prompt flow: (\S+\.html)", printed)
    assert found, printed
    _check_flow_file(Path(found[1]), tmp_path / "data" / "flow")
    assert f"🚫 {NOT_A_SESSION}" in printed  # /flow in the new, empty thread
    assert status == 0  # a refusal is an answer: the session was normal


def _check_flow_file(path: Path, folder: Path) -> None:
    """The console's page: in <data dir>/flow, with both turns and file:// images that exist."""
    assert path.parent == folder and path.is_file()
    page = path.read_text("utf-8")
    assert "<q>a red fox</q>" in page and "<q>make it night</q>" in page
    sources = outline(page).images
    assert len(sources) == 2
    for src in sources:
        url = urlparse(html.unescape(src))
        assert url.scheme == "file" and Path(unquote(url.path)).read_bytes().startswith(b"\x89PNG")
