"""The follow-up buttons and the model select under a finished image, as DynamicItems.

Registered in the bot's setup_hook with the templates of `render.CUSTOM_ID_TEMPLATES`, so a
click reaches the core whichever process posted the image and however often the bot has
restarted since. The clicker is the one charged.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import discord

from adapters.discord.commands import answer, is_admin
from adapters.discord.render import CUSTOM_ID_TEMPLATES
from adapters.discord.turns import Ask, Turns, acknowledge, session_of, user_of
from core.errors import DELETED, Refusal
from core.models import Intent

log = logging.getLogger("easel.discord")

INTENTS = {"regen": Intent.REGENERATE, "vary": Intent.VARIATION, "upscale": Intent.UPSCALE}
LABELS = {"regen": "Regenerate", "vary": "Variations", "upscale": "Upscale"}

AnyButton = discord.ui.Button[Any]
AnySelect = discord.ui.Select[Any]


def turns_of(interaction: discord.Interaction[Any]) -> Turns:
    turns = getattr(interaction.client, "turns", None)
    if not isinstance(turns, Turns):
        raise RuntimeError("Easel's Discord components need the Easel bot")
    return turns


async def click(interaction: discord.Interaction[Any], action: str, generation_id: int,
                model: str | None = None) -> None:
    """Acknowledge at once, then submit the follow-up in the clicked message's thread."""
    turns = turns_of(interaction)
    source_event = str(interaction.id)
    if not turns.first_delivery(source_event):
        return
    if not await acknowledge(interaction) or await turns.already_taken(source_event):
        return
    label = (f"Again with {model} (from #{generation_id})" if model
             else f"{LABELS[action]} #{generation_id}")
    outcome = await turns.take(Ask(
        thread=session_of(interaction.channel, interaction.guild_id, interaction.channel_id),
        user=user_of(interaction.user, interaction.guild_id), text="",
        source_event=source_event, label=label, action=INTENTS[action],
        target_generation_id=generation_id, model=model))
    if outcome.error is not None:
        try:  # the status message says it too; this tells the clicker privately
            await interaction.followup.send(outcome.error.user_message, ephemeral=True)
        except discord.HTTPException as exc:
            log.warning("could not tell the clicker why: HTTP %s", exc.status)


class RegenerateButton(discord.ui.DynamicItem[AnyButton], template=CUSTOM_ID_TEMPLATES["regen"]):
    """Regenerate: the same prompt and model, a new seed."""

    def __init__(self, item: AnyButton, generation_id: int) -> None:
        super().__init__(item)
        self.generation_id = generation_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any],
                             match: re.Match[str]) -> RegenerateButton:
        assert isinstance(item, discord.ui.Button)
        return cls(item, int(match["generation_id"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await click(interaction, "regen", self.generation_id)


class VariationButton(discord.ui.DynamicItem[AnyButton], template=CUSTOM_ID_TEMPLATES["vary"]):
    """Variations of the image."""

    def __init__(self, item: AnyButton, generation_id: int) -> None:
        super().__init__(item)
        self.generation_id = generation_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any],
                             match: re.Match[str]) -> VariationButton:
        assert isinstance(item, discord.ui.Button)
        return cls(item, int(match["generation_id"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await click(interaction, "vary", self.generation_id)


class UpscaleButton(discord.ui.DynamicItem[AnyButton], template=CUSTOM_ID_TEMPLATES["upscale"]):
    """The same image at 4K."""

    def __init__(self, item: AnyButton, generation_id: int) -> None:
        super().__init__(item)
        self.generation_id = generation_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any],
                             match: re.Match[str]) -> UpscaleButton:
        assert isinstance(item, discord.ui.Button)
        return cls(item, int(match["generation_id"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await click(interaction, "upscale", self.generation_id)


class ModelSelect(discord.ui.DynamicItem[AnySelect], template=CUSTOM_ID_TEMPLATES["model"]):
    """Again with another model: regenerate the image with the chosen one."""

    def __init__(self, item: AnySelect, generation_id: int) -> None:
        super().__init__(item)
        self.generation_id = generation_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any],
                             match: re.Match[str]) -> ModelSelect:
        assert isinstance(item, discord.ui.Select)
        return cls(item, int(match["generation_id"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        data: Any = interaction.data or {}
        values = self.item.values or data.get("values") or []
        if not values:
            await interaction.response.defer()
            return
        await click(interaction, "regen", self.generation_id, model=str(values[0]))


class ContinueButton(discord.ui.DynamicItem[AnyButton], template=CUSTOM_ID_TEMPLATES["continue"]):
    """After a compare: go on with this model, refining this image."""

    def __init__(self, item: AnyButton, generation_id: int) -> None:
        super().__init__(item)
        self.generation_id = generation_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any],
                             match: re.Match[str]) -> ContinueButton:
        assert isinstance(item, discord.ui.Button)
        return cls(item, int(match["generation_id"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        turns = turns_of(interaction)
        thread = session_of(interaction.channel, interaction.guild_id, interaction.channel_id)
        try:
            model = await turns.easel.continue_with(
                thread, user_of(interaction.user, interaction.guild_id), self.generation_id)
            text = (f"Continuing with {model.display_name}: your next message in this thread "
                    "refines this image.")
        except Refusal as error:
            text = error.user_message
        await interaction.response.send_message(text, ephemeral=True)


class DeleteButton(discord.ui.DynamicItem[AnyButton], template=CUSTOM_ID_TEMPLATES["delete"]):
    """Delete my image: its message and stored object (the requester or an admin)."""

    def __init__(self, item: AnyButton, generation_id: int) -> None:
        super().__init__(item)
        self.generation_id = generation_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any],
                             match: re.Match[str]) -> DeleteButton:
        assert isinstance(item, discord.ui.Button)
        return cls(item, int(match["generation_id"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        turns = turns_of(interaction)
        if not await acknowledge(interaction, ephemeral=True):
            return
        thread = session_of(interaction.channel, interaction.guild_id, interaction.channel_id)
        app: Any = getattr(interaction.client, "app", None)
        try:
            await turns.easel.delete_image(
                thread, user_of(interaction.user, interaction.guild_id), self.generation_id,
                is_admin=app is not None and is_admin(app.settings, interaction))
            text = DELETED
        except Refusal as error:
            text = error.user_message
        await answer(interaction, text)


DYNAMIC_ITEMS = (RegenerateButton, VariationButton, UpscaleButton, ModelSelect, ContinueButton,
                 DeleteButton)
