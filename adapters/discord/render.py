"""How Easel looks in Discord: status embeds, image embeds and follow-up buttons.

Shared by both halves of the Discord adapter: the outbound messenger renders with these, and
the inbound half registers `CUSTOM_ID_TEMPLATES` as `discord.ui.DynamicItem` templates so that
a click on a button posted by any process (even before a restart) reaches the core.
"""

from __future__ import annotations

import re

import discord

from core.models import Button, ImageDelivery, StatusView

# Discord's limits (https://discord.com/developers/docs/resources/message).
CONTENT_MAX = 2000
EMBED_TITLE_MAX = 256
EMBED_DESCRIPTION_MAX = 4096
EMBED_FIELD_VALUE_MAX = 1024
EMBED_FOOTER_MAX = 2048
BUTTON_LABEL_MAX = 80
SELECT_OPTIONS_MAX = 25
SELECT_OPTION_TEXT_MAX = 100
BUTTONS_PER_ROW = 5
ROWS_MAX = 5

COLOUR_WORKING = discord.Colour.blurple()
COLOUR_SUCCESS = discord.Colour.green()
COLOUR_FAILURE = discord.Colour.red()

BUTTON_ACTIONS = ("regen", "vary", "upscale", "continue", "delete")
SELECT_ACTIONS = ("model",)
# `easel:<action>:<generation id>`; the templates are what DynamicItem matches.
CUSTOM_ID_TEMPLATES: dict[str, str] = {
    action: rf"easel:{action}:(?P<generation_id>[0-9]+)"
    for action in (*BUTTON_ACTIONS, *SELECT_ACTIONS)
}
_CUSTOM_ID = re.compile(r"easel:(?P<action>[a-z]+):(?P<generation_id>[0-9]+)")
_BUTTON_STYLES = {"regen": discord.ButtonStyle.primary, "delete": discord.ButtonStyle.danger}
MODEL_SELECT_PLACEHOLDER = "Switch model"


def custom_id(action: str, generation_id: int) -> str:
    """The custom_id of a follow-up component, e.g. `easel:regen:42`."""
    return f"easel:{action}:{generation_id}"


def parse_custom_id(value: str) -> tuple[str, int] | None:
    """(action, generation id) of an Easel custom_id, or None for anything else."""
    match = _CUSTOM_ID.fullmatch(value)
    if match is None or match["action"] not in CUSTOM_ID_TEMPLATES:
        return None
    return match["action"], int(match["generation_id"])


def truncate(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, ending with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def status_colour(view: StatusView) -> discord.Colour:
    if view.succeeded is False:
        return COLOUR_FAILURE
    return COLOUR_SUCCESS if view.is_final else COLOUR_WORKING


def status_embed(view: StatusView) -> discord.Embed:
    """A status message: headline, lines, a colour per state, details when known."""
    description = "\n".join(line for line in view.lines if line)
    embed = discord.Embed(
        title=truncate(view.headline, EMBED_TITLE_MAX) or None,
        description=truncate(description, EMBED_DESCRIPTION_MAX) or None,
        colour=status_colour(view),
    )
    if view.model:
        embed.add_field(name="Model", value=truncate(view.model, EMBED_FIELD_VALUE_MAX))
    if view.cost is not None:
        embed.add_field(name="Cost", value=_credits(view.cost))
    if view.elapsed_s is not None:
        embed.add_field(name="Time", value=_seconds(view.elapsed_s))
    if view.refined_prompt:
        embed.add_field(name="Prompt", value=truncate(view.refined_prompt, EMBED_FIELD_VALUE_MAX),
                        inline=False)
    if view.generation_id is not None:
        embed.set_footer(text=f"Generation #{view.generation_id}")
    return embed


def status_text(view: StatusView) -> str:
    """The same status as plain message content (for places where embeds do not fit)."""
    return truncate(view.as_text(), CONTENT_MAX)


def image_embed(image: ImageDelivery, *, attachment_name: str | None,
                note: str | None = None) -> discord.Embed:
    """The card under a finished image: model, prompt, cost and time; the image itself when
    it is attached (`attachment://name`)."""
    embed = discord.Embed(
        title=truncate(image.model, EMBED_TITLE_MAX) or None,
        description=truncate(image.refined_prompt, EMBED_DESCRIPTION_MAX) or None,
        colour=COLOUR_SUCCESS,
    )
    embed.add_field(name="Cost", value=_credits(image.cost))
    embed.add_field(name="Time", value=_seconds(image.elapsed_s))
    if attachment_name is not None:
        embed.set_image(url=f"attachment://{attachment_name}")
    footer = f"Generation #{image.generation_id}"
    embed.set_footer(text=truncate(f"{footer} · {note}" if note else footer, EMBED_FOOTER_MAX))
    return embed


def components(buttons: tuple[Button, ...]) -> discord.ui.View | None:
    """Buttons and model selects as a persistent view (timeout=None), or None if there are
    none. Rows hold 5 buttons or one select; at most 5 rows; duplicates and unknown actions are
    dropped (Discord refuses a message with a repeated custom_id)."""
    seen: set[str] = set()
    plain: list[Button] = []
    selects: list[Button] = []
    for button in buttons:
        cid = custom_id(button.action, button.generation_id)
        if cid in seen:
            continue
        if button.action in BUTTON_ACTIONS:
            plain.append(button)
        elif button.action in SELECT_ACTIONS and _options(button):
            selects.append(button)
        else:
            continue
        seen.add(cid)
    if not plain and not selects:
        return None
    selects = selects[:ROWS_MAX]
    view = discord.ui.View(timeout=None)
    rows = _rows_by_image(plain, ROWS_MAX - len(selects))
    for row, row_buttons in enumerate(rows):
        for button in row_buttons:
            view.add_item(discord.ui.Button(
                style=_BUTTON_STYLES.get(button.action, discord.ButtonStyle.secondary),
                label=truncate(button.label, BUTTON_LABEL_MAX),
                custom_id=custom_id(button.action, button.generation_id),
                row=row,
            ))
    first_select_row = len(rows)
    for index, button in enumerate(selects):
        view.add_item(discord.ui.Select(
            custom_id=custom_id(button.action, button.generation_id),
            placeholder=truncate(button.label or MODEL_SELECT_PLACEHOLDER, 150),
            options=_options(button),
            row=first_select_row + index,
        ))
    return view


def _rows_by_image(buttons: list[Button], max_rows: int) -> list[list[Button]]:
    """One row per image (a grid's images each get theirs), 5 buttons a row at most."""
    rows: list[list[Button]] = []
    for button in buttons:
        if not rows or len(rows[-1]) == BUTTONS_PER_ROW or (
                button.generation_id != rows[-1][0].generation_id
                and button.action != "delete"):
            rows.append([])
        rows[-1].append(button)
    return rows[:max_rows]


def _options(button: Button) -> list[discord.SelectOption]:
    # A value longer than Discord allows cannot be shortened without changing its meaning.
    fitting = [(v, label) for v, label in button.choices if 0 < len(v) <= SELECT_OPTION_TEXT_MAX]
    return [discord.SelectOption(label=truncate(label or value, SELECT_OPTION_TEXT_MAX),
                                 value=value)
            for value, label in fitting[:SELECT_OPTIONS_MAX]]


def _credits(cost: int) -> str:
    return f"{cost} credit" if cost == 1 else f"{cost} credits"


def _seconds(elapsed_s: float) -> str:
    return f"{elapsed_s:.1f} s"
