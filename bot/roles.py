"""Process roles: gateway, worker, web, or all of them (`easel run`).

Every role shares the database and the bucket and nothing else, so any number
of each may run on any number of machines. The roles' loops are supervised: one
that ends before SIGTERM ends the process with a non-zero exit code, so whatever
runs the process (systemd, Docker, Kubernetes) restarts it, instead of a live
process that no longer does its work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web

from bot.app import App, bootstrap, check_catalog_at_start
from bot.checks import check_slack_inbound
from bot.health import health_app, serve_health
from bot.settings import Settings
from core.ports import ChatPlatform
from core.sweeper import run_sweeper, sweep
from core.worker import Worker

log = logging.getLogger("easel.roles")

NO_PLATFORM = (
    "easel: no chat platform is configured. Set DISCORD_TOKEN (Discord) or SLACK_BOT_TOKEN "
    "with SLACK_APP_TOKEN or SLACK_SIGNING_SECRET (Slack); see the README's Configuration. "
    "To try Easel with no accounts at all, run `easel chat`."
)

WAITING_FOR = "a chat platform: DISCORD_TOKEN or SLACK_BOT_TOKEN (then restart)"

# Each inbound adapter registers how to start itself: (app, web_app, stop) -> task body.
Gateway = Callable[[App, web.Application | None, asyncio.Event], Coroutine[Any, Any, None]]


async def build_platforms(settings: Settings) -> dict[str, ChatPlatform]:
    """The outbound messengers for every configured platform (token only)."""
    platforms: dict[str, ChatPlatform] = {}
    if settings.discord_token:
        from adapters.discord.messenger import DiscordMessenger

        discord = DiscordMessenger(
            settings.discord_token.get_secret_value(), api_base_url=settings.discord_api_base_url
        )
        await discord.start()
        platforms["discord"] = discord
    if settings.slack_bot_token:
        from adapters.slack.messenger import SlackMessenger

        platforms["slack"] = SlackMessenger(
            settings.slack_bot_token.get_secret_value(), api_url=settings.slack_api_url
        )
    return platforms


def gateways(settings: Settings) -> list[Gateway]:
    """The inbound halves to run for the configured platforms."""
    found: list[Gateway] = []
    if settings.discord_token:
        from adapters.discord.gateway import run_discord_gateway

        found.append(run_discord_gateway)
    if settings.slack_bot_token:
        from adapters.slack.gateway import run_slack_gateway

        found.append(run_slack_gateway)
    return found


async def run_roles(
    settings: Settings, *, roles: set[str], concurrency: int | None = None
) -> int:
    """Run `roles` until SIGTERM/SIGINT (0) or until one of their loops ends (1)."""
    if "gateway" in roles:
        check_slack_inbound(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    platforms = await build_platforms(settings)
    if not platforms and roles & {"gateway", "worker"}:
        print(NO_PLATFORM, file=sys.stderr)
        if not settings.wait_for_config:
            return 2
        # Under a supervisor (compose), idle until restarted with tokens instead of crash-looping.
        print("easel: EASEL_WAIT_FOR_CONFIG is set: waiting; restart this process once "
              "the settings are in place", file=sys.stderr)
        waiting = None
        if settings.health_port:
            waiting = await serve_health(health_app(None, waiting_for=WAITING_FOR), settings)
        await stop.wait()
        if waiting is not None:
            await waiting.cleanup()
        return 0
    async with bootstrap(settings, platforms=platforms) as app:
        if roles & {"gateway", "worker"}:
            try:
                await check_catalog_at_start(app)
            except Exception as exc:  # a check that cannot run never stops the start
                log.warning("model catalog check failed: %s", exc)
        tasks: list[asyncio.Task[Any]] = []
        worker = None
        web_app = None
        runner = None
        # Slack in HTTP mode (no app token) receives its events through the web server, but
        # only the gateway role does; a worker serves no HTTP, so several fit on one host.
        is_slack_http = bool(settings.slack_bot_token and not settings.slack_app_token)
        if "web" in roles or ("gateway" in roles and is_slack_http):
            web_app = await _web_app(app)
        if "gateway" in roles:
            for gateway in gateways(settings):
                tasks.append(asyncio.create_task(gateway(app, web_app, stop),
                                                 name=f"gateway {gateway.__name__}"))
            # Let each gateway start: Slack's HTTP mode adds its route before the server freezes
            # the router (runner.setup() below does that without yielding to the loop).
            await asyncio.sleep(0)
        if web_app is not None:
            runner = web.AppRunner(web_app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, settings.web_host, settings.web_port).start()
            log.info("web server on %s:%s", settings.web_host, settings.web_port)
        health = None
        if settings.health_port and (web_app is None or settings.health_port != settings.web_port):
            health = await serve_health(health_app(app.runtime), settings)
        if "worker" in roles:
            await sweep(app.runtime)
            worker = Worker(app.runtime, concurrency=concurrency)
            tasks.append(asyncio.create_task(worker.run(), name="worker"))
            tasks.append(asyncio.create_task(run_sweeper(app.runtime, stop), name="sweeper"))
        log.info("easel running: %s", ", ".join(sorted(roles)))
        exit_code = await _supervise(tasks, stop)
        log.info("shutting down")
        if worker is not None:
            worker.stop()
        for served in (runner, health):
            if served is not None:
                await served.cleanup()
        # `easel web` has no task of its own (the runner serves), and wait() refuses an empty set.
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=settings.shutdown_grace_s + 5)
            for task in pending:
                task.cancel()
        for platform in platforms.values():
            with contextlib.suppress(Exception):
                await platform.close()  # type: ignore[attr-defined]
    return exit_code


async def _supervise(tasks: list[asyncio.Task[Any]], stop: asyncio.Event) -> int:
    """Wait for SIGTERM (0), or for a role's loop to end before it (1, and stop the rest)."""
    stopper = asyncio.create_task(stop.wait(), name="stop")
    done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
    ended = [task for task in done if task is not stopper]
    if stop.is_set() or not ended:
        return 0
    stopper.cancel()
    for task in ended:
        error = None if task.cancelled() else task.exception()
        log.error("%s ended on its own (%s); stopping so the process is restarted",
                  task.get_name(), repr(error) if error else "no error")
    stop.set()
    return 1


async def _web_app(app: App) -> web.Application:
    from bot.web import build_web_app

    settings = app.settings
    provider = app.runtime.providers.get("replicate")
    fetched = None
    if provider is not None and not settings.replicate_webhook_secret:
        from adapters.providers.replicate_webhook import WebhookSecret, fetch_webhook_secret

        client = provider.client  # type: ignore[attr-defined]
        fetched = WebhookSecret(lambda: fetch_webhook_secret(client))

    async def replicate_secret(refresh: bool) -> str | None:
        """REPLICATE_WEBHOOK_SECRET, else Replicate's (re-fetched when a webhook fails)."""
        if settings.replicate_webhook_secret:
            return None if refresh else settings.replicate_webhook_secret.get_secret_value()
        if fetched is None:
            return None
        return await fetched.refetched() if refresh else await fetched.current()

    flow_secret = settings.secret_key.get_secret_value().encode() if settings.secret_key else None
    return build_web_app(app.runtime, replicate_secret=replicate_secret, flow_secret=flow_secret)


async def discord_invite_url(settings: Settings) -> str:
    """The OAuth2 URL that adds Easel with the scopes and permissions it needs."""
    from adapters.discord.invite import invite_url

    url: str = await invite_url(settings)
    return url
