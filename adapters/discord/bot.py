"""The discord.py bot behind Easel's Discord gateway.

`setup_hook` (after login, before the gateway connects) opens the outbound messenger,
registers the follow-up components as DynamicItems (clicks on images posted before a restart
still work), adds the slash commands and syncs them: to DISCORD_GUILD_IDS when set (instant),
else globally. Replies in a session thread are refinements (`on_message`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import discord
from discord.ext import commands

from adapters.discord.buttons import DYNAMIC_ITEMS
from adapters.discord.commands import EaselCommands
from adapters.discord.messenger import DiscordMessenger
from adapters.discord.turns import Ask, Turns, is_image, read_uploads, session_of, user_of
from core.errors import Refusal
from core.options import parse_inline_options

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger("easel.discord")


def guild_ids(value: str) -> list[int]:
    """DISCORD_GUILD_IDS ('123, 456') as ids; anything not a number is a setup error."""
    parts = [part.strip() for part in value.split(",") if part.strip()]
    bad = [part for part in parts if not part.isdigit()]
    if bad:
        raise ValueError(f"DISCORD_GUILD_IDS must be comma-separated guild ids, got {bad[0]!r}")
    return [int(part) for part in parts]


def intents(*, message_content: bool) -> discord.Intents:
    """Guilds, guild and DM messages; message content (privileged) when the portal allows it."""
    chosen = discord.Intents.default()
    chosen.message_content = message_content
    return chosen


class EaselBot(commands.Bot):
    """Easel on one Discord gateway connection (see ShardedEaselBot for several shards)."""

    def __init__(self, app: App, messenger: DiscordMessenger, *, message_content: bool = True,
                 **options: Any) -> None:
        super().__init__(command_prefix=commands.when_mentioned,
                         intents=intents(message_content=message_content), help_command=None,
                         allowed_mentions=discord.AllowedMentions.none(), **options)
        self.app = app
        self.messenger = messenger
        self.turns = Turns(app.easel, messenger)
        self.connected = False  # READY received: discord.py's ready delay has started

    async def on_connect(self) -> None:
        self.connected = True

    async def setup_hook(self) -> None:
        await self.messenger.start()
        self.add_dynamic_items(*DYNAMIC_ITEMS)
        await self.add_cog(EaselCommands(self.turns, self.app.settings))
        guilds = guild_ids(self.app.settings.discord_guild_ids)
        if guilds:
            for guild_id in guilds:
                guild = discord.Object(guild_id)
                self.tree.copy_global_to(guild=guild)
                synced = await self.tree.sync(guild=guild)
                log.info("discord: %d commands synced to guild %s", len(synced), guild_id)
        else:
            synced = await self.tree.sync()
            log.info("discord: %d commands synced globally (may take a while to show)",
                     len(synced))

    async def on_ready(self) -> None:
        log.info("discord: connected as %s to %d guilds", self.user, len(self.guilds))

    async def on_message(self, message: discord.Message) -> None:
        """A reply in a session thread refines its image (never text commands)."""
        if message.author.bot or message.webhook_id is not None or self.user is None:
            return
        # Outside threads and DMs (a channel session, where threads were refused) only
        # mentions count: everything else said there is people talking to each other.
        in_conversation = isinstance(message.channel, (discord.Thread, discord.DMChannel))
        if not in_conversation and self.user not in message.mentions:
            return
        text = named_mentions(message.content, self.user.id, message.mentions)
        images = [a for a in message.attachments if is_image(a)]
        if not text and not images:
            return  # nothing readable (no message-content intent, or a sticker)
        guild_id = message.guild.id if message.guild else None
        thread = session_of(message.channel, guild_id, message.channel.id)
        source_event = str(message.id)
        if not await self.turns.easel.is_session(thread):
            return
        if not self.turns.first_delivery(source_event):
            return
        if await self.turns.already_taken(source_event):
            return
        try:
            said, _ = parse_inline_options(text)  # refused here, before any status is posted
            uploads = await read_uploads(images, self.turns.max_upload_bytes)
        except Refusal as error:
            await self.turns.refuse(thread, error)
            return
        # The core reads the options out of the text (one parser for every platform).
        await self.turns.take(Ask(
            thread=thread, user=user_of(message.author, guild_id), text=text,
            source_event=source_event, label=said or "(an image to edit)", uploads=uploads,
            platform_message_id=str(message.id)))


class ShardedEaselBot(EaselBot, commands.AutoShardedBot):
    """Easel running the shards DISCORD_SHARD_IDS of DISCORD_SHARD_COUNT in one process."""


def named_mentions(content: str, bot_id: int, people: Sequence[discord.abc.User]) -> str:
    """The message without the bot's mention, and with other people's mentions as their
    names: `<@123>` must not reach the image prompt (the core drops what is left)."""
    names = {str(person.id): person.display_name for person in people}

    def name(match: re.Match[str]) -> str:
        return " " if match[1] == str(bot_id) else names.get(match[1], "")

    return re.sub(r"<@!?(\d+)>", name, content).strip()
