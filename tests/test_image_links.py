"""Discord's link for an image too large to attach, with images in a local folder: a signed
link to Easel's own image route that opens the image, or a plain reason; never a path on
the Easel host. Through the real pipeline, discord.py's HTTP client and a fake Discord."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
import discord.http
import pytest

from adapters.discord.messenger import DiscordMessenger
from adapters.providers.sketch import SketchProvider
from core.models import ThreadRef, UserRef
from core.service import Easel
from core.submit import SubmitRequest
from core.worker import Worker
from tests.corekit import make_runtime
from tests.fakes.discord_server import FakeDiscord
from tests.flowkit import serving

SECRET = b"image-link-secret"


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord()
    await server.start()
    old_base = discord.http.Route.BASE
    yield server
    discord.http.Route.BASE = old_base
    await server.stop()


async def _too_large_image(pool: asyncpg.Pool, fake: FakeDiscord, images: Path,
                           **config: object) -> str:
    """Make one image on a Discord thread whose upload limit it exceeds; the posted text."""
    messenger = DiscordMessenger(fake.token, api_base_url=fake.api_base, filesize_limit_bytes=300)
    # The offline sketch draws a real picture, far more than 300 bytes.
    rt = make_runtime(pool, images, providers={"sketch": SketchProvider()}, **config)
    rt.platforms = {"discord": messenger}
    anchor = await fake.send_message(fake.channel.id, fake.user, "/imagine a fox")
    made = await fake.create_thread(fake.channel.id, "a fox", message=anchor)
    thread = ThreadRef("discord", str(fake.guild.id), str(fake.channel.id), str(made.id))
    person = UserRef("discord", str(fake.guild.id), str(fake.user.id), "Ada")
    try:
        await Easel(rt).submit(SubmitRequest(thread=thread, user=person, text="a red fox",
                                             source_event=f"ev-{made.id}"))
        await Worker(rt).run_until_empty()
    finally:
        await messenger.close()
    posted = [m.content for m in fake.channel_messages(made.id) if m.author.bot]
    return next(text for text in posted if "more than Discord accepts" in text)


async def test_the_link_is_signed_and_opens_the_image(
    pool: asyncpg.Pool, fake: FakeDiscord, tmp_path: Path
) -> None:
    text = await _too_large_image(pool, fake, tmp_path / "images",
                                  public_url="https://easel.example.org", flow_secret=SECRET)
    print(text)
    assert str(tmp_path) not in text and "/sessions/" not in text
    link = re.search(r"https://easel\.example\.org/images/(\S+)", text)
    assert link is not None
    stored = next((tmp_path / "images").rglob("*.png")).read_bytes()
    rt = make_runtime(pool, tmp_path / "images")
    async with serving(rt, SECRET) as base, aiohttp.ClientSession() as http:
        async with http.get(f"{base}/images/{link[1]}") as opened:
            assert opened.status == 200 and opened.content_type == "image/png"
            assert await opened.read() == stored
        forged = link[1][:-2] + ("AA" if not link[1].endswith("AA") else "BB")
        async with http.get(f"{base}/images/{forged}") as refused:
            assert refused.status == 403


async def test_without_a_public_url_it_is_a_plain_reason(
    pool: asyncpg.Pool, fake: FakeDiscord, tmp_path: Path
) -> None:
    text = await _too_large_image(pool, fake, tmp_path / "images")
    print(text)
    assert str(tmp_path) not in text and "/sessions/" not in text and "http" not in text
    assert re.search(r"more than Discord accepts here \([^)]*\)\.$", text)


def test_a_signed_image_link_cannot_be_bent_to_another_key() -> None:
    from core.links import LinkInvalid, sign_image_link, verify_image_link

    token = sign_image_link(SECRET, "sessions/1/1/1-0.png", 2_000_000_000)
    assert verify_image_link([SECRET], token, 1_000) == "sessions/1/1/1-0.png"
    other = sign_image_link(SECRET, "sessions/2/9/1-0.png", 2_000_000_000)
    bent = other.split(".")[0] + "." + ".".join(token.split(".")[1:])
    for bad in (bent, token + "x", "", "a.b.c"):
        with pytest.raises(LinkInvalid):
            verify_image_link([SECRET], bad, 1_000)
    with pytest.raises(LinkInvalid):
        verify_image_link([SECRET], token, 2_000_000_001)
