"""A session with a refinement and a compare group, and Easel's web server to show it."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import asyncpg
from aiohttp import web

from bot.web import build_web_app
from core.errors import ContentPolicy
from core.models import GeneratedImage, Images
from core.ports import ObjectStore
from core.runtime import Runtime
from core.service import Easel
from core.worker import Worker
from tests.corekit import ScriptedProvider, make_runtime, request
from tests.fakes.provider import tiny_png

SECRET = b"flow-test-secret-key"
RED, BLUE, GREEN = (200, 40, 40), (40, 60, 210), (40, 170, 70)
TURNS = ("a red fox in the snow", "make it night", "a fox by the sea")


@dataclass
class Thread:
    rt: Runtime
    easel: Easel
    first: int
    refined: int
    compare: tuple[int, int]  # (nano2 succeeds, sketch refused)


async def build_thread(
    pool: asyncpg.Pool, images_dir: Path, store: ObjectStore | None = None
) -> Thread:
    """Turn one, a refinement of it, then the same ask on two models side by side."""
    sketch = ScriptedProvider(script=[
        Images((GeneratedImage(tiny_png(RED)),)),
        Images((GeneratedImage(tiny_png(BLUE)),)),
        ContentPolicy(),
    ])
    google = ScriptedProvider("google")
    google.png = tiny_png(GREEN)
    rt = make_runtime(pool, images_dir, providers={"sketch": sketch, "google": google},
                      default_model="sketch")
    if store is not None:
        rt = dataclasses.replace(rt, store=store)
    easel = Easel(rt)
    first = await easel.submit(request(TURNS[0]))
    await Worker(rt).run_until_empty()
    refined = await easel.submit(request(TURNS[1]))
    await Worker(rt).run_until_empty()
    both = await easel.submit(request(TURNS[2], compare=("nano2", "sketch")))
    await Worker(rt).run_until_empty()
    left, right = both.generation_ids
    return Thread(rt, easel, first.generation_id, refined.generation_id, (left, right))


@asynccontextmanager
async def serving(rt: Runtime, secret: bytes | None = SECRET) -> AsyncIterator[str]:
    """Easel's web app on 127.0.0.1 (a random port); yields its base URL."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    runner = web.AppRunner(build_web_app(rt, flow_secret=secret), access_log=None)
    await runner.setup()
    await web.SockSite(runner, listener).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        await runner.cleanup()


class Outline(HTMLParser):
    """Which element ids and <img> sources sit inside each element with an id or class."""

    VOID = frozenset({"img", "meta", "br", "link", "input", "hr"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, dict[str, str]]] = []
        self.inside: dict[str, set[str]] = {}  # "#id" or ".class" -> ids nested in it
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        if tag == "img":
            self.images.append(attributes["src"])
        if "id" in attributes:
            for _, outer in self.stack:
                for name in _names(outer):
                    self.inside.setdefault(name, set()).add(attributes["id"])
        if tag not in self.VOID:
            self.stack.append((tag, attributes))

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop()[0] == tag:
                break


def _names(attributes: dict[str, str]) -> list[str]:
    names = [f".{c}" for c in attributes.get("class", "").split()]
    return names + ([f"#{attributes['id']}"] if "id" in attributes else [])


def outline(page: str) -> Outline:
    parser = Outline()
    parser.feed(page)
    parser.close()
    return parser
