"""The OAuth2 link that adds Easel to a server with the scopes and permissions it needs."""

from __future__ import annotations

import asyncio

import discord
from discord.http import HTTPClient, Route

from bot.settings import Settings

SCOPES = ("bot", "applications.commands")


def permissions() -> discord.Permissions:
    """What Easel does in a channel: read it, post, open threads and post in them, attach
    images under embeds, and read the thread it answers in."""
    return discord.Permissions(
        view_channel=True,
        send_messages=True,
        send_messages_in_threads=True,
        create_public_threads=True,
        embed_links=True,
        attach_files=True,
        read_message_history=True,
    )


def invite_url_for(application_id: int) -> str:
    return discord.utils.oauth_url(application_id, permissions=permissions(), scopes=SCOPES)


async def invite_url(settings: Settings) -> str:
    """Ask Discord for the application's id (with DISCORD_TOKEN) and build the invite link."""
    if settings.discord_token is None:
        raise ValueError("DISCORD_TOKEN is not set: the invite link needs the bot's application")
    if settings.discord_api_base_url:
        Route.BASE = settings.discord_api_base_url.rstrip("/")
    http = HTTPClient(asyncio.get_running_loop())
    try:
        await http.static_login(settings.discord_token.get_secret_value())
        application = await http.application_info()
    finally:
        await http.close()
    return invite_url_for(int(application["id"]))
