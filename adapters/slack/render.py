"""Block Kit rendering of Easel's status views, image captions and follow-up buttons.

Shared by both halves of the Slack adapter: the outbound messenger renders with it,
the inbound listeners match `ACTION_IDS` and parse values with `parse_button_value`
and `parse_model_choice`. Everything here respects Slack's Block Kit limits, so a
long prompt is shortened rather than refused with `invalid_blocks`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from core.models import Button, ImageDelivery, StatusView

log = logging.getLogger("easel.slack")

HEADER_MAX_CHARS = 150
SECTION_MAX_CHARS = 3000
MAX_BLOCKS = 50
MAX_ACTION_ELEMENTS = 25
BUTTON_TEXT_MAX_CHARS = 75
BUTTON_VALUE_MAX_CHARS = 2000
MAX_SELECT_OPTIONS = 100
OPTION_TEXT_MAX_CHARS = 75
OPTION_VALUE_MAX_CHARS = 150
FALLBACK_TEXT_MAX_CHARS = 3000  # the notification text; Slack's own cap is 40,000
MESSAGE_TEXT_MAX_CHARS = 39_000

# The inbound half registers listeners for exactly these ids.
ACTION_IDS: dict[str, str] = {
    "regen": "easel_regen",
    "vary": "easel_vary",
    "upscale": "easel_upscale",
    "continue": "easel_continue",
    "delete": "easel_delete",
    "model": "easel_model",
}
ACTIONS_BLOCK_ID = "easel_actions"

_ESCAPED_QUOTE = re.compile(r"^&gt; ?", re.MULTILINE)


def truncate(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, with an ellipsis when something was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def escape_mrkdwn(text: str) -> str:
    """Escape &, < and > so user text cannot ping (`<!channel>`) or forge links."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_line(line: str) -> str:
    """Escape a core status line, keeping a leading "> " (the core quotes prompts so)."""
    return _ESCAPED_QUOTE.sub("> ", escape_mrkdwn(line))


def quote(text: str, limit: int = SECTION_MAX_CHARS) -> str:
    """`text` as a Slack block quote (every line marked), within `limit` characters."""
    # Cut before escaping so an entity is not split; leave room for the "> " markers.
    lines = escape_mrkdwn(truncate(text, limit * 3 // 4)).splitlines() or [""]
    return truncate("\n".join("> " + line for line in lines), limit)


def _mrkdwn_section(text: str) -> dict[str, Any]:
    return {"type": "section",
            "text": {"type": "mrkdwn", "text": truncate(text, SECTION_MAX_CHARS)}}


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": truncate(text, limit), "emoji": True}


def status_text(view: StatusView) -> str:
    """The `text` fallback shown in notifications and by clients without Block Kit."""
    # Escaped like every mrkdwn text: the fallback is what a notification shows, and a
    # person's literal <!channel> must not ping there either.
    return escape_line(truncate(view.as_text(), FALLBACK_TEXT_MAX_CHARS)) or " "


def status_blocks(view: StatusView) -> list[dict[str, Any]]:
    """The status message: headline, progress lines, refined prompt quoted, buttons."""
    blocks: list[dict[str, Any]] = []
    if len(view.headline) <= HEADER_MAX_CHARS and view.headline.strip():
        blocks.append({"type": "header", "text": _plain(view.headline, HEADER_MAX_CHARS)})
    elif view.headline.strip():  # a long sentence (a refusal) reads better whole than cut
        blocks.append(_mrkdwn_section(f"*{escape_mrkdwn(view.headline)}*"))
    prompt = view.refined_prompt
    # A line that only repeats the refined prompt is replaced by the quote below.
    lines = [line for line in view.lines if not (prompt and prompt in line)]
    if lines:
        blocks.append(_mrkdwn_section("\n".join(escape_line(line) for line in lines)))
    if prompt:
        blocks.append(_mrkdwn_section(quote(prompt)))
    blocks.extend(button_blocks(view.buttons))
    return blocks[:MAX_BLOCKS]


def image_caption(image: ImageDelivery) -> str:
    """The comment posted with an image: model, cost and time, then the refined prompt."""
    details = image.caption or (
        f"{image.model} · {image.cost} credit{'s' if image.cost != 1 else ''}"
        f" · {image.elapsed_s:.1f}s"
    )
    parts = [escape_mrkdwn(details)]
    if image.refined_prompt:
        parts.append(quote(image.refined_prompt))
    return truncate("\n".join(parts), MESSAGE_TEXT_MAX_CHARS)


def button_blocks(buttons: Sequence[Button]) -> list[dict[str, Any]]:
    """An actions block per image (one for a single image, one per image of a grid), each
    with a button per action and the model menu; nothing when there are no buttons."""
    blocks: list[dict[str, Any]] = []
    elements: list[dict[str, Any]] = []
    seen: set[str] = set()
    image: int | None = None

    def close() -> None:
        if elements:
            block_id = ACTIONS_BLOCK_ID if not blocks else f"{ACTIONS_BLOCK_ID}_{len(blocks)}"
            blocks.append({"type": "actions", "block_id": block_id,
                           "elements": elements[:MAX_ACTION_ELEMENTS]})

    for button in buttons:
        if image is not None and button.generation_id != image:
            close()
            elements, seen = [], set()
        image = button.generation_id
        action_id = ACTION_IDS.get(button.action)
        if action_id is None or action_id in seen:  # Slack refuses repeated ids in a block
            log.warning("skipping Slack button %r (unknown or repeated action)", button.action)
            continue
        element = _model_select(button) if button.action == "model" else _button(button)
        if element is not None:
            seen.add(action_id)
            elements.append(element)
    close()
    return blocks


def _button(button: Button) -> dict[str, Any]:
    return {"type": "button", "action_id": ACTION_IDS[button.action],
            "text": _plain(button.label, BUTTON_TEXT_MAX_CHARS),
            "value": str(button.generation_id)}


def _model_select(button: Button) -> dict[str, Any] | None:
    options = []
    for model, label in button.choices:
        value = f"{button.generation_id}:{model}"
        if len(value) > OPTION_VALUE_MAX_CHARS:  # a cut value would name another model
            continue
        options.append({"text": _plain(label or model, OPTION_TEXT_MAX_CHARS), "value": value})
    if not options:
        return None
    return {"type": "static_select", "action_id": ACTION_IDS["model"],
            "placeholder": _plain(button.label, OPTION_TEXT_MAX_CHARS),
            "options": options[:MAX_SELECT_OPTIONS]}


def parse_button_value(value: str) -> int:
    """The generation id a button carries (ValueError if it is not one)."""
    return int(value)


def parse_model_choice(value: str) -> tuple[int, str]:
    """(generation id, model name) from a model menu option's value "<id>:<model>"."""
    generation_id, _, model = value.partition(":")
    if not model:
        raise ValueError(f"not a model choice: {value!r}")
    return int(generation_id), model
