"""The inbound half of the Discord adapter: log in, hold the gateway, stop on request.

The bot asks for the privileged message-content intent; when the developer portal has not
enabled it, Discord closes the gateway (4014) and the bot connects again without it, so
thread replies that mention the bot (and slash commands and buttons) still work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

import discord
import discord.gateway
import yarl
from aiohttp import web

from adapters.discord.bot import EaselBot, ShardedEaselBot
from adapters.discord.messenger import DiscordMessenger

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger("easel.discord")

# discord.py waits guild_ready_timeout (2 s) after the last GUILD_CREATE before "ready".
READY_WAIT_S = 5.0


class DiscordSetupError(RuntimeError):
    """Discord is configured in a way the gateway cannot run with; the message says why."""


def build_bot(app: App, messenger: DiscordMessenger, *, message_content: bool) -> EaselBot:
    """One bot, sharded when DISCORD_SHARD_COUNT or DISCORD_SHARD_IDS is set."""
    settings = app.settings
    shard_ids = [int(s) for s in settings.discord_shard_ids.split(",") if s.strip()]
    if settings.discord_shard_count or shard_ids:
        return ShardedEaselBot(app, messenger, message_content=message_content,
                               shard_count=settings.discord_shard_count,
                               shard_ids=shard_ids or None)
    if settings.discord_gateway_url:
        # discord.py's only gateway override is this class attribute (process-wide).
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)
    return EaselBot(app, messenger, message_content=message_content)


async def run_discord_gateway(app: App, web_app: web.Application | None,
                              stop: asyncio.Event) -> None:
    """Receive Discord events until `stop` is set; then close the connection."""
    messenger = app.runtime.platforms.get("discord")
    if not isinstance(messenger, DiscordMessenger):
        raise DiscordSetupError("the Discord gateway needs the Discord messenger (DISCORD_TOKEN)")
    if app.settings.discord_token is None:
        raise DiscordSetupError("the Discord gateway needs DISCORD_TOKEN")
    token = app.settings.discord_token.get_secret_value()
    message_content = True
    while True:
        bot = build_bot(app, messenger, message_content=message_content)
        try:
            await _run_until_stopped(bot, token, stop)
            return
        except discord.PrivilegedIntentsRequired:
            if not message_content:
                raise
            log.warning("discord: the Message Content intent is not enabled in the developer "
                        "portal; replies in threads must mention the bot")
            message_content = False


async def _run_until_stopped(bot: EaselBot, token: str, stop: asyncio.Event) -> None:
    async with bot:  # closes the bot's connection and HTTP session on the way out
        runner = asyncio.create_task(bot.start(token), name="discord-gateway")
        stopper = asyncio.create_task(stop.wait(), name="discord-gateway-stop")
        try:
            await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if runner.done():
                runner.result()  # a login or intents failure surfaces here
        finally:
            stopper.cancel()
            if not runner.done():
                await _let_ready_finish(bot)
                await bot.close()
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(runner, 10)


async def _let_ready_finish(bot: EaselBot) -> None:
    """Give a connecting bot a moment to become ready before closing it: discord.py's ready
    task outlives close() and would then dispatch events on a closed client."""
    if bot.is_ready() or not bot.connected:
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(bot.wait_until_ready(), READY_WAIT_S)
