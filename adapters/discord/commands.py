"""Easel's slash commands: /imagine, /credits, /model and /easel grant.

Each command acknowledges Discord first (an ephemeral defer: Discord allows 3 seconds), then
does its work and edits that deferred answer. The answer is only for the person who asked;
what everyone sees (the thread, the status message, the image) is posted by the bot.
"""

from __future__ import annotations

import contextlib
import logging
import shlex
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from adapters.discord.turns import (
    ALREADY_WORKING,
    Ask,
    Turns,
    acknowledge,
    read_uploads,
    session_of,
    user_of,
)
from bot.settings import Settings
from core.errors import EaselError, Refusal
from core.models import RESOLUTIONS, ModelSpec, ThreadRef
from core.options import MAX_COUNT, MAX_SEED, as_inline
from core.runtime import Runtime
from core.service import Easel

log = logging.getLogger("easel.discord")

THREAD_NAME_MAX = 100
CHOICES_MAX = 25
ASPECTS = ("1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3", "21:9")
NO_THREAD = ("I could not start a thread here (I need the Create Public Threads permission), "
             "so I am answering in the channel.")
CANNOT_POST = ("I cannot post in this channel. Ask a server admin to let me View Channel and "
               "Send Messages here, or try another channel.")
QUIET = discord.AllowedMentions.none()


def thread_name(prompt: str) -> str:
    """A thread title from the prompt: one line, at most 100 characters."""
    name = " ".join(prompt.split())
    if len(name) > THREAD_NAME_MAX:
        name = name[: THREAD_NAME_MAX - 1] + "…"
    return name or "Easel image"


def model_label(model: ModelSpec) -> str:
    """'Nano Banana 2 · 7/10/14 cr (1K/2K/4K)' — what a model costs, for choices."""
    costs = "/".join(str(model.credits[r]) for r in model.resolutions)
    label = f"{model.display_name} · {costs} cr ({'/'.join(model.resolutions)})"
    return label[:100]


def model_choices(runtime: Runtime, current: str) -> list[app_commands.Choice[str]]:
    """The configured models matching what was typed so far, with their costs (at most 25)."""
    typed = current.strip().lower()
    return [app_commands.Choice(name=model_label(m), value=m.name)
            for m in runtime.available_models()
            if typed in m.name.lower() or typed in m.display_name.lower()][:CHOICES_MAX]


def style_choices(easel: Easel, current: str) -> list[app_commands.Choice[str]]:
    """The style presets matching what was typed so far, with what each adds (at most 25)."""
    return [app_commands.Choice(name=f"{name} — {about}"[:100], value=name)
            for name, about in easel.style_names(current)][:CHOICES_MAX]


def is_admin(settings: Settings, interaction: discord.Interaction[Any]) -> bool:
    """EASEL_ADMINS lists the person (`123` or `discord:123`), or they can Manage Server."""
    user_id = str(interaction.user.id)
    if {user_id, f"discord:{user_id}"} & settings.admin_ids:
        return True
    return interaction.guild_id is not None and interaction.permissions.manage_guild


async def answer(interaction: discord.Interaction[Any], text: str) -> None:
    """Edit the deferred (ephemeral) answer; a dead interaction token only loses this note."""
    try:
        await interaction.edit_original_response(content=text[:2000])
    except discord.HTTPException as exc:
        log.warning("could not answer interaction %s: HTTP %s", interaction.id, exc.status)


class EaselCommands(commands.Cog):
    """The slash commands, bound to one Easel."""

    def __init__(self, turns: Turns, settings: Settings) -> None:
        self.turns = turns
        self.settings = settings

    @property
    def runtime(self) -> Runtime:
        return self.turns.easel.rt

    async def cog_app_command_error(self, interaction: discord.Interaction[Any],
                                    error: app_commands.AppCommandError) -> None:
        """A command failed unexpectedly (the database, Discord): still answer the person."""
        log.error("discord command %s failed", interaction.command and interaction.command.name,
                  exc_info=error)
        sentence = EaselError().user_message
        try:
            if interaction.response.is_done():
                await interaction.edit_original_response(content=sentence)
            else:
                await interaction.response.send_message(sentence, ephemeral=True)
        except discord.HTTPException as exc:
            log.warning("could not answer interaction %s: HTTP %s", interaction.id, exc.status)

    @app_commands.command(name="imagine", description="Make an image in a new thread")
    @app_commands.describe(prompt="What to draw", model="Image model (cost per image)",
                           aspect="Aspect ratio", resolution="Resolution",
                           image="A picture to edit or start from",
                           compare="Several models side by side, e.g. nano2,gpt,flux",
                           seed="The seed (shown under every image) to draw the same again",
                           count="How many images (1 to 4), posted as one grid",
                           style="A style preset (adds its words to the prompt)",
                           no="What the image should not have, e.g. text, people")
    @app_commands.choices(
        aspect=[app_commands.Choice(name=a, value=a) for a in ASPECTS],
        resolution=[app_commands.Choice(name=r, value=r) for r in RESOLUTIONS])
    async def imagine(self, interaction: discord.Interaction[Any], prompt: str,
                      model: str | None = None, aspect: str | None = None,
                      resolution: str | None = None,
                      image: discord.Attachment | None = None,
                      compare: str | None = None,
                      seed: app_commands.Range[int, 0, MAX_SEED] | None = None,
                      count: app_commands.Range[int, 1, MAX_COUNT] | None = None,
                      style: str | None = None, no: str | None = None) -> None:
        source_event = str(interaction.id)
        if not self.turns.first_delivery(source_event):
            return  # the same interaction again: the first delivery answers it
        if not await acknowledge(interaction, ephemeral=True):
            return
        if await self.turns.already_taken(source_event):
            await answer(interaction, ALREADY_WORKING)
            return
        try:
            uploads = await read_uploads([image] if image else [], self.turns.max_upload_bytes)
        except Refusal as error:
            await answer(interaction, error.user_message)
            return
        placed = await self._place(interaction, prompt)
        if placed is None:
            await answer(interaction, CANNOT_POST)
            return
        thread, note = placed
        outcome = await self.turns.take(Ask(
            thread=thread, user=user_of(interaction.user, interaction.guild_id),
            text=prompt + as_inline(seed=seed, count=count, style=style, negative=no),
            label=prompt, source_event=source_event,
            uploads=uploads, model=model, aspect_ratio=aspect,
            resolution=resolution,
            compare=tuple(m.strip() for m in (compare or "").split(",") if m.strip())))
        where = (f"in <#{thread.thread}>" if thread.thread != thread.channel else "below")
        if outcome.error is not None:
            text = outcome.error.user_message
        elif outcome.submitted is not None and outcome.submitted.duplicate:
            text = ALREADY_WORKING
        else:
            text = f"Working on it {where}."
        await answer(interaction, f"{text}\n{note}" if note else text)

    async def _place(self, interaction: discord.Interaction[Any],
                     prompt: str) -> tuple[ThreadRef, str | None] | None:
        """Where the session lives: a new thread on a message in a text channel, the current
        thread when run in one, else the channel itself. None when the bot cannot post."""
        channel = interaction.channel
        here = session_of(channel, interaction.guild_id, interaction.channel_id)
        if not isinstance(channel, discord.TextChannel):
            return here, None
        try:
            anchor = await channel.send(f"🎨 {interaction.user.mention}: {prompt}"[:2000],
                                        allowed_mentions=QUIET)
        except discord.HTTPException as exc:
            log.warning("cannot post in channel %s: HTTP %s", channel.id, exc.status)
            return None
        try:
            thread = await anchor.create_thread(name=thread_name(prompt),
                                                auto_archive_duration=1440)
        except discord.HTTPException as exc:
            log.warning("cannot create a thread in %s: HTTP %s %s", channel.id, exc.status,
                        exc.code)
            try:
                await anchor.edit(content=f"{anchor.content}\n-# {NO_THREAD}"[:2000],
                                  allowed_mentions=QUIET)
            except discord.HTTPException:
                pass  # the ephemeral answer still says why
            return here, NO_THREAD
        return (ThreadRef(here.platform, here.workspace, str(channel.id), str(thread.id)),
                None)

    @imagine.autocomplete("model")
    async def _imagine_model(self, interaction: discord.Interaction[Any],
                             current: str) -> list[app_commands.Choice[str]]:
        return model_choices(self.runtime, current)

    @imagine.autocomplete("style")
    async def _imagine_style(self, interaction: discord.Interaction[Any],
                             current: str) -> list[app_commands.Choice[str]]:
        return style_choices(self.turns.easel, current)

    @app_commands.command(name="settings", description="Your defaults for new threads")
    @app_commands.describe(model="Default model", aspect="Default aspect ratio",
                           resolution="Default resolution", style="Default style preset")
    @app_commands.choices(
        aspect=[app_commands.Choice(name=a, value=a) for a in ASPECTS],
        resolution=[app_commands.Choice(name=r, value=r) for r in RESOLUTIONS])
    async def my_settings(self, interaction: discord.Interaction[Any], model: str | None = None,
                       aspect: str | None = None, resolution: str | None = None,
                       style: str | None = None) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        given = {"--model": model, "--ar": aspect, "--res": resolution, "--style": style}
        change = "".join(f" {k} {shlex.quote(v)}" for k, v in given.items() if v)
        try:
            prefs = await self.turns.easel.settings(
                user_of(interaction.user, interaction.guild_id), change)
            await answer(interaction, prefs.as_text())
        except Refusal as error:
            await answer(interaction, error.user_message)

    @my_settings.autocomplete("model")
    async def _settings_model(self, interaction: discord.Interaction[Any],
                              current: str) -> list[app_commands.Choice[str]]:
        return model_choices(self.runtime, current)

    @my_settings.autocomplete("style")
    async def _settings_style(self, interaction: discord.Interaction[Any],
                              current: str) -> list[app_commands.Choice[str]]:
        return style_choices(self.turns.easel, current)

    @app_commands.command(name="credits", description="Your credits and recent images")
    async def credits(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        view = await self.turns.easel.credits(user_of(interaction.user, interaction.guild_id))
        await answer(interaction, view.as_text())

    @app_commands.command(name="flow", description="A private link to how this thread's images came to be")
    async def flow(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        here = session_of(interaction.channel, interaction.guild_id, interaction.channel_id)
        try:
            link = await self.turns.easel.flow_link(here)
            text = f"Prompt flow of this thread (link valid 7 days): {link}"
            with contextlib.suppress(Refusal):  # and every thread of theirs, live
                person = user_of(interaction.user, interaction.guild_id)
                text += f"\nAll your threads, live: {await self.turns.easel.history_link(person)}"
            await answer(interaction, text)
        except Refusal as error:
            await answer(interaction, error.user_message)

    @app_commands.command(name="history", description="A private link to all your threads and images")
    async def history(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            link = await self.turns.easel.history_link(
                user_of(interaction.user, interaction.guild_id))
            await answer(interaction, f"Your threads and images, live (link valid 7 days): {link}")
        except Refusal as error:
            await answer(interaction, error.user_message)

    @app_commands.command(name="model", description="Switch the model this thread uses")
    @app_commands.describe(name="The model (cost per image)")
    async def model(self, interaction: discord.Interaction[Any], name: str) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        here = session_of(interaction.channel, interaction.guild_id, interaction.channel_id)
        try:
            chosen = await self.turns.easel.set_model(
                here, user_of(interaction.user, interaction.guild_id), name.strip().lower())
        except Refusal as error:
            await answer(interaction, error.user_message)
            return
        text = f"Next images here use {model_label(chosen)}."
        if isinstance(interaction.channel, discord.TextChannel):
            text += " (/imagine opens a new thread; pick its model with the `model` option.)"
        await answer(interaction, text)

    @model.autocomplete("name")
    async def _model_name(self, interaction: discord.Interaction[Any],
                          current: str) -> list[app_commands.Choice[str]]:
        return model_choices(self.runtime, current)

    admin = app_commands.Group(name="easel", description="Easel administration")

    @admin.command(name="grant", description="Give (or, when negative, take) credits")
    @app_commands.describe(user="Who gets the credits", amount="How many (negative to take)")
    async def grant(self, interaction: discord.Interaction[Any], user: discord.User,
                    amount: int) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            view = await self.turns.easel.grant(
                user_of(interaction.user, interaction.guild_id),
                is_admin(self.settings, interaction),
                user_of(user, interaction.guild_id), amount, key=f"discord:{interaction.id}")
        except EaselError as error:
            await answer(interaction, error.user_message)
            return
        await answer(interaction, f"{user.mention} now has:\n{view.as_text()}")

    @admin.command(name="admin", description="A private link to the operator's view")
    async def admin_view(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            link = await self.turns.easel.admin_link(
                user_of(interaction.user, interaction.guild_id),
                is_admin(self.settings, interaction))
        except EaselError as error:
            await answer(interaction, error.user_message)
            return
        await answer(interaction, "Queue, failures of the last day (with retry) and credits "
                     f"(link valid 1 hour, only for you): {link}")
