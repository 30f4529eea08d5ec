"""A running Easel with its Slack gateway on 127.0.0.1, for end-to-end Slack tests."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from adapters.providers.sketch import SketchProvider
from adapters.slack.gateway import EVENTS_PATH, run_slack_gateway
from adapters.slack.messenger import SlackMessenger
from bot.app import App, bootstrap
from bot.settings import Settings
from bot.web import build_web_app
from core.ports import ImageProvider
from core.worker import Worker
from tests.fakes.provider import ScriptedProvider
from tests.fakes.slack_server import DEFAULT_CHANNEL, DEFAULT_USER, FakeSlack
from tests.fakes.slack_state import FakeMessage

CHANNEL = DEFAULT_CHANNEL
ALICE = DEFAULT_USER


@dataclass
class Rig:
    """A running Easel with its Slack gateway, and the fake Slack it talks to."""

    fake: FakeSlack
    app: App
    url: str

    async def work(self) -> int:
        return await Worker(self.app.runtime).run_until_empty()

    async def count(self, sql: str, *args: object) -> int:
        return int(await self.app.runtime.pool.fetchval(sql, *args))

    async def generations(self) -> int:
        return await self.count("SELECT count(*) FROM generations")

    def thread(self, thread_ts: str, channel: str = CHANNEL) -> list[FakeMessage]:
        return self.fake.thread_messages(channel, thread_ts)

    def bot_replies(self, thread_ts: str, channel: str = CHANNEL) -> list[FakeMessage]:
        return [m for m in self.thread(thread_ts, channel)
                if m.bot_id and m.ts != thread_ts]

    def images(self, thread_ts: str, channel: str = CHANNEL) -> list[bytes]:
        return [f.data or b"" for m in self.thread(thread_ts, channel) if m.bot_id
                for f in m.files]


@contextlib.asynccontextmanager
async def running_easel(database_url: str, tmp_path: Path, fake: FakeSlack, *,
                        providers: dict[str, ImageProvider] | None = None,
                        **extra: object) -> AsyncIterator[Rig]:
    settings = Settings.model_validate({
        "DATABASE_URL": database_url, "SLACK_BOT_TOKEN": fake.bot_token,
        "SLACK_SIGNING_SECRET": fake.signing_secret, "SLACK_API_URL": fake.api_url,
        "EASEL_DATA_DIR": str(tmp_path), "EASEL_STATUS_EDIT_INTERVAL_S": 0,
        "EASEL_DEFAULT_MODEL": "sketch", **extra})
    messenger = SlackMessenger(fake.bot_token, api_url=fake.api_url)
    async with bootstrap(settings, platforms={"slack": messenger}, providers=providers,
                         pool_size=4) as app:
        web_app = build_web_app(app.runtime) if not settings.slack_app_token else None
        stop = asyncio.Event()
        gateway = asyncio.create_task(run_slack_gateway(app, web_app, stop))
        runner = None
        try:
            url = ""
            if web_app is not None:
                await until(lambda: _has_route(web_app, EVENTS_PATH))
                runner = web.AppRunner(web_app, access_log=None)
                await runner.setup()
                site = web.TCPSite(runner, "127.0.0.1", 0)
                await site.start()
                port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
                url = f"http://127.0.0.1:{port}{EVENTS_PATH}"
            yield Rig(fake, app, url)
        finally:
            stop.set()
            await asyncio.wait_for(gateway, 10)
            if runner is not None:
                await runner.cleanup()
            await messenger.close()


def _has_route(web_app: web.Application, path: str) -> bool:
    return any(r.canonical == path for r in web_app.router.resources())


async def until(condition: Callable[[], Any], timeout_s: float = 10.0) -> None:
    """Wait for a condition (sync or async) that Bolt's background listeners make true."""
    async with asyncio.timeout(timeout_s):
        while True:
            value = condition()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return
            await asyncio.sleep(0.02)


async def mention_and_finish(rig: Rig, text: str, *, user: str = ALICE) -> dict[str, Any]:
    """A person mentions Easel; wait for the generation and run the worker."""
    before = await rig.generations()
    mention = rig.fake.app_mention(text, user=user)
    delivered = await rig.fake.deliver_event(rig.url, mention)
    assert delivered.status == 200
    await until(lambda: more_generations(rig, before))
    await rig.work()
    return mention


async def more_generations(rig: Rig, before: int) -> bool:
    return await rig.generations() > before


def paid_providers() -> dict[str, ImageProvider]:
    return {"sketch": SketchProvider(), "google": ScriptedProvider("google")}
