"""The inbound half of the Slack adapter: a Bolt app in Socket Mode or HTTP mode.

Socket Mode when SLACK_APP_TOKEN is set (no public URL needed); otherwise Slack
POSTs events, commands and clicks to `/slack/events` on Easel's web server and
Bolt checks each request's signature with SLACK_SIGNING_SECRET. Bolt uses the
outbound messenger's Web API client, so SLACK_API_URL applies to both halves.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp

from adapters.slack import listeners
from adapters.slack.downloads import SlackFiles
from adapters.slack.messenger import SlackMessenger
from adapters.slack.turns import Turns

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger("easel.slack")

EVENTS_PATH = "/slack/events"


class SlackSetupError(RuntimeError):
    """Slack is configured in a way the gateway cannot run with; the message says how to fix it."""


def build_bolt_app(app: App, messenger: SlackMessenger) -> AsyncApp:
    """The Bolt app with every Easel listener registered (no I/O happens here)."""
    settings = app.settings
    secret = settings.slack_signing_secret
    bolt_app = AsyncApp(
        name="easel",
        logger=logging.getLogger("easel.slack.bolt"),
        client=messenger.client,
        signing_secret=secret.get_secret_value() if secret else "",
        # Ack first: events are acknowledged before the listener runs.
        process_before_response=False,
    )
    files = SlackFiles(str(messenger.client.token), api_url=settings.slack_api_url,
                       max_bytes=app.runtime.config.max_upload_bytes)
    listeners.register_all(bolt_app, Turns(app.easel, messenger, files,
                                               admins=app.settings.admin_ids))
    return bolt_app


def mount_events_route(web_app: web.Application, bolt_app: AsyncApp) -> None:
    """Serve Slack's HTTP deliveries (events, commands, interactivity) at EVENTS_PATH."""

    async def slack_events(request: web.Request) -> web.Response:
        bolt_response = await bolt_app.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(bolt_response)

    web_app.router.add_post(EVENTS_PATH, slack_events)


async def run_slack_gateway(app: App, web_app: web.Application | None,
                            stop: asyncio.Event) -> None:
    """Receive Slack deliveries until `stop` is set."""
    messenger = app.runtime.platforms.get("slack")
    if not isinstance(messenger, SlackMessenger):
        raise SlackSetupError("the Slack gateway needs the Slack messenger (SLACK_BOT_TOKEN)")
    settings = app.settings
    bolt_app = build_bolt_app(app, messenger)
    if settings.slack_app_token:
        await _run_socket_mode(bolt_app, settings.slack_app_token.get_secret_value(),
                               messenger, stop)
        return
    if not settings.slack_signing_secret:
        raise SlackSetupError(
            "Slack HTTP mode needs SLACK_SIGNING_SECRET (or set SLACK_APP_TOKEN for Socket Mode)")
    if web_app is None:
        raise SlackSetupError("Slack HTTP mode needs Easel's web server")
    # Before any await: the web server freezes its routes when it starts.
    mount_events_route(web_app, bolt_app)
    log.info("slack: HTTP mode, receiving at %s", EVENTS_PATH)
    await stop.wait()


async def _run_socket_mode(bolt_app: AsyncApp, app_token: str, messenger: SlackMessenger,
                           stop: asyncio.Event) -> None:
    handler = AsyncSocketModeHandler(bolt_app, app_token, logger=bolt_app.logger,
                                     web_client=messenger.client)
    await handler.connect_async()  # type: ignore[no-untyped-call]
    log.info("slack: Socket Mode connected")
    try:
        await stop.wait()
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]
