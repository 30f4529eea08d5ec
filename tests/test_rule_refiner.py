"""The offline rule-based refiner: a table of conversations and what it decides."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from adapters.refiners.rules import RuleRefiner
from core.errors import EmptyPrompt
from core.models import Intent, Refinement, RefineRequest, Turn

FOX = "a red fox in snow"


@dataclass(frozen=True)
class Case:
    last_prompt: str | None
    message: str
    has_last_image: bool
    intent: Intent
    prompt: str
    aspect_ratio: str | None = None
    resolution: str | None = None
    has_uploads: bool = False


NEW, EDIT, VARY = Intent.NEW, Intent.EDIT, Intent.VARIATION

CASES = (
    # first messages: cleaned, verb phrase stripped
    Case(None, "draw me a fox in the snow", False, NEW, "a fox in the snow"),
    Case(None, "  a   lighthouse  at dusk. ", False, NEW, "a lighthouse at dusk"),
    Case(None, "generate an image of a cat, 16:9", False, NEW, "a cat", "16:9"),
    Case(None, "imagine a castle in 4K", False, NEW, "a castle", None, "4K"),
    Case(None, "Make me a robot in portrait mode", False, NEW, "a robot", "9:16"),
    Case(None, "landscape", False, NEW, "landscape", "16:9"),
    # instructions on the existing image
    Case(FOX, "make it night", True, EDIT, "a red fox in snow, at night"),
    Case(FOX, "now at night", True, EDIT, "a red fox in snow, at night"),
    Case(FOX, "remove the snow", True, EDIT, "a red fox, without snow"),
    Case(FOX, "without the boat", True, EDIT, "a red fox in snow, without boat"),
    Case(FOX, "in watercolor style", True, EDIT, "a red fox in snow, watercolor style"),
    Case(FOX, "make it darker", True, EDIT, "a red fox in snow, darker lighting"),
    Case(FOX, "add a moon", True, EDIT, "a red fox in snow, with a moon"),
    Case(FOX, "more red", True, EDIT, "a red fox in snow, more red"),
    Case(FOX, "bigger", True, EDIT, "a red fox in snow, subject larger in the frame"),
    Case(FOX, "zoom in please", True, EDIT, "a red fox in snow, close-up"),
    Case(FOX, "zoom out", True, EDIT, "a red fox in snow, wide view"),
    Case(FOX, "change the fox to a cat", True, EDIT, "a red cat in snow"),
    Case(FOX, "make the fox blue", True, EDIT, "a blue fox in snow"),
    Case(
        FOX,
        "make it darker and add a moon",
        True,
        EDIT,
        "a red fox in snow, darker lighting, with a moon",
    ),
    Case(FOX, "same but at dusk, widescreen", True, EDIT, "a red fox in snow, at dusk", "16:9"),
    Case(FOX, "can you add a moon?", True, EDIT, "a red fox in snow, with a moon"),
    Case(FOX, "watercolor", True, EDIT, "a red fox in snow, watercolor style"),
    # the same instruction with no image to edit draws anew
    Case(FOX, "make it night", False, NEW, "a red fox in snow, at night"),
    # a later style or time replaces the earlier one instead of piling up
    Case(
        "a fox, watercolor style", "in oil painting style", True, EDIT, "a fox, oil painting style"
    ),
    Case("a fox at night", "at dawn", True, EDIT, "a fox, at dawn"),
    # only aspect or size: the prompt is kept
    Case(FOX, "16:9 please", True, EDIT, FOX, "16:9"),
    Case(FOX, "now in 4K", True, EDIT, FOX, None, "4K"),
    Case(FOX, "make it square", True, EDIT, FOX, "1:1"),
    Case(FOX, "portrait orientation, 2k", False, NEW, FOX, "9:16", "2K"),
    Case(FOX, "as a quick draft", True, EDIT, FOX, None, "1K"),
    Case(FOX, "21:9", True, EDIT, FOX, "21:9"),
    # fresh descriptions start over
    Case(FOX, "a castle on a hill", True, NEW, "a castle on a hill"),
    Case(FOX, "draw me two cats", True, NEW, "two cats"),
    Case(FOX, "a portrait of a queen", True, NEW, "a portrait of a queen"),
    Case(FOX, "a wide river under a tall tower", True, NEW, "a wide river under a tall tower"),
    Case(
        FOX,
        "a castle with a dragon circling it, 3:2",
        True,
        NEW,
        "a castle with a dragon circling it",
        "3:2",
    ),
    # variations keep the last prompt
    Case(FOX, "another one", True, VARY, FOX),
    Case(FOX, "again", True, VARY, FOX),
    Case(FOX, "variations please", True, VARY, FOX),
    Case(FOX, "vary it", True, VARY, FOX),
    Case(FOX, "another one in 9:16", True, VARY, FOX, "9:16"),
    # an uploaded photo is the input of an edit
    Case(
        None,
        "make it watercolor",
        False,
        EDIT,
        "the uploaded image, watercolor style",
        has_uploads=True,
    ),
    Case(None, "a knight in armour", False, EDIT, "a knight in armour", has_uploads=True),
    Case(FOX, "add a hat", True, EDIT, "the uploaded image, with a hat", has_uploads=True),
)


def _request(case: Case) -> RefineRequest:
    turns = () if case.last_prompt is None else (Turn("user", "earlier", case.last_prompt, True),)
    return RefineRequest(
        message=case.message,
        turns=turns,
        last_prompt=case.last_prompt,
        has_last_image=case.has_last_image,
        has_uploads=case.has_uploads,
        aspect_ratio="1:1",
        resolution="1K",
    )


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 20


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.message.strip() or "<empty>")
async def test_refinement(case: Case) -> None:
    refined = await RuleRefiner().refine(_request(case))
    expected = Refinement(case.intent, case.prompt, case.aspect_ratio, case.resolution)
    assert refined == expected


@pytest.mark.parametrize("message", ["16:9 please", "", "   ", "now in 4K"])
async def test_nothing_to_draw_on_a_first_message_is_refused(message: str) -> None:
    with pytest.raises(EmptyPrompt):
        await RuleRefiner().refine(_request(Case(None, message, False, NEW, "")))


async def test_a_repeated_instruction_does_not_repeat_itself() -> None:
    once = await RuleRefiner().refine(_request(Case(FOX, "add a moon", True, EDIT, "")))
    twice = await RuleRefiner().refine(_request(Case(once.prompt, "add a moon", True, EDIT, "")))
    assert twice.prompt == once.prompt == "a red fox in snow, with a moon"


async def test_adding_back_what_was_removed_drops_the_without() -> None:
    removed = await RuleRefiner().refine(_request(Case(FOX, "remove the snow", True, EDIT, "")))
    added = await RuleRefiner().refine(_request(Case(removed.prompt, "add snow", True, EDIT, "")))
    assert added.prompt == "a red fox, with snow"


def test_the_refiner_is_named_rules() -> None:
    assert RuleRefiner.name == "rules"
