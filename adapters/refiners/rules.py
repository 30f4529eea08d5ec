"""The offline prompt refiner: no network, no model, a table of rules read top to bottom.

A message is first stripped of aspect and size words (`options.read_options`); then
the first rule of `RULES` whose test holds decides the intent and the prompt.
Instructions on an existing image are rewritten by the table in `edits.py`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from adapters.refiners.edits import MODIFIER_PHRASES, STYLES, TIMES, apply_instruction
from adapters.refiners.rule_plan import rule_plan
from core.errors import EmptyPrompt
from core.models import Intent, Refinement, RefineRequest
from core.size_words import RATIO, RESOLUTION_WORDS, Options, read_options, tidy

UPLOAD_SUBJECT = "the uploaded image"

# "draw me a", "can you generate an image of", "imagine" at the start of a description.
DRAWING_REQUEST = re.compile(
    r"^(?:please\s+)?(?:(?:can|could|would)\s+you\s+)?(?:please\s+)?"
    r"(?:draw|make|generate|imagine|create|paint|render|sketch|design|show|give)"
    r"(?:\s+(?:me|us))?"
    r"(?:\s+(?:an?\s+)?(?:picture|image|drawing|photo|illustration|painting|render)\s+of)?\s+"
    r"(?!(?:it|this|that|them)\b)",
    re.I,
)
# A request for a new subject: "make a castle", "draw me two cats" (not "make the fox blue").
NEW_PICTURE_REQUEST = re.compile(
    DRAWING_REQUEST.pattern + r"(?=(?:an?|some|something|one|two|three|four|five|\d+)\b)", re.I
)
VARIATION = re.compile(
    r"^(?:(?:give me|make|do|show me|draw|try)\s+)?(?:it\s+)?"
    r"(?:another(?:\s+one)?|one more|again|(?:some\s+|a few\s+|more\s+)?variations?|vary(?:\s+it)?"
    r"|same again|once more|more like (?:this|that))(?:\s+(?:please|again|one))?[\s.!]*$",
    re.I,
)
# How an instruction on the current image begins.
INSTRUCTION_START = re.compile(
    r"^(?:make|add|remove|delete|erase|change|replace|swap|turn|now|more|less|without|zoom"
    r"|same|put|include|with|no|also|but|and|keep|use|try|give|set|fix|lose|drop|get rid"
    r"|take|plus|in|as|at|during|increase|decrease|reduce|brighten|darken|crop|flip|mirror"
    r"|rotate|move|shift|closer|further|a bit|a little|a lot|slightly|much|way|paint|color"
    r"|colour|recolou?r|redo|can you|could you|please)\b",
    re.I,
)
# A message that names the image ("can you make it pop", "the picture needs a moon");
# "it" counts only near the start, so "a castle with a dragon circling it" stays new.
REFERS_TO_IMAGE = re.compile(
    r"^(?:\S+\s+){0,3}it\b|\b(?:the|this) (?:image|picture|photo|one)\b|\bthe same\b", re.I
)
# A message that is only a style, a time of day or a comparative ("watercolor", "night").
BARE_CHANGE = re.compile(
    rf"^(?:{STYLES}|{TIMES}|{'|'.join(MODIFIER_PHRASES)})(?:\s+(?:style|time|please))?$", re.I
)


@dataclass(frozen=True)
class Context:
    """The request and the message with its aspect and size words taken out."""

    request: RefineRequest
    options: Options

    @property
    def text(self) -> str:
        return self.options.text

    @property
    def last_prompt(self) -> str:
        return self.request.last_prompt or ""

    @property
    def change_intent(self) -> Intent:
        """An instruction edits the last image when there is one, else draws anew."""
        return Intent.EDIT if self.request.has_last_image else Intent.NEW


Decision = tuple[Intent, str]


@dataclass(frozen=True)
class Rule:
    """One row: when `applies`, `decide` gives the intent and the prompt."""

    name: str
    applies: Callable[[Context], bool]
    decide: Callable[[Context], Decision]


def describe(text: str) -> str:
    """A fresh description cleaned of its chat wrapping: "draw me a fox." -> "a fox"."""
    text = tidy(DRAWING_REQUEST.sub("", text.strip(), count=1))
    return text.rstrip(".!")


def is_instruction(text: str) -> bool:
    """True when the message reads as a change to the existing image."""
    if NEW_PICTURE_REQUEST.match(text):
        return False
    return bool(
        INSTRUCTION_START.match(text) or REFERS_TO_IMAGE.search(text) or BARE_CHANGE.match(text)
    )


def _first_message(ctx: Context) -> Decision:
    text = ctx.text
    if ctx.options.is_only_options:
        # Nothing but option words and no earlier prompt: "landscape" is itself a subject.
        text = _without_numeric_options(ctx.request.message)
    prompt = describe(text)
    if not prompt:
        raise EmptyPrompt()
    return Intent.NEW, prompt


def _without_numeric_options(message: str) -> str:
    text = RATIO.sub(" ", message)
    for pattern, _value in RESOLUTION_WORDS:
        text = pattern.sub(" ", text)
    return "" if Options(tidy(text)).is_only_options else tidy(text)


def _upload(ctx: Context) -> Decision:
    if not ctx.text or ctx.options.is_only_options:
        return Intent.EDIT, ctx.request.last_prompt or UPLOAD_SUBJECT
    if is_instruction(ctx.text):
        return Intent.EDIT, apply_instruction(UPLOAD_SUBJECT, ctx.text)
    return Intent.EDIT, describe(ctx.text)


RULES: tuple[Rule, ...] = (
    Rule(
        "a first message is a new picture",
        lambda ctx: ctx.request.last_prompt is None and not ctx.request.has_uploads,
        _first_message,
    ),
    Rule("an uploaded photo is edited", lambda ctx: ctx.request.has_uploads, _upload),
    Rule(
        "only an aspect or size change keeps the prompt",
        lambda ctx: ctx.options.is_only_options,
        lambda ctx: (ctx.change_intent, ctx.last_prompt),
    ),
    Rule(
        "'another one' is a variation",
        lambda ctx: bool(VARIATION.match(ctx.text)),
        lambda ctx: (Intent.VARIATION, ctx.last_prompt),
    ),
    Rule(
        "an instruction changes the last prompt",
        lambda ctx: is_instruction(ctx.text),
        lambda ctx: (ctx.change_intent, apply_instruction(ctx.last_prompt, ctx.text)),
    ),
    Rule(
        "anything else is a fresh description",
        lambda ctx: True,
        lambda ctx: (Intent.NEW, describe(ctx.text)),
    ),
)


def decide(request: RefineRequest) -> tuple[Rule, Refinement]:
    """The rule that applies to `request` and what it decided."""
    options = read_options(request.message)
    ctx = Context(request, options)
    rule = next(rule for rule in RULES if rule.applies(ctx))
    intent, prompt = rule.decide(ctx)
    return rule, Refinement(intent, prompt, options.aspect_ratio, options.resolution)


class RuleRefiner:
    """PromptRefiner that needs no network: the default for `easel chat`."""

    name = "rules"

    async def refine(self, request: RefineRequest) -> Refinement:
        """Decide the intent and the prompt for the new message by the first matching rule."""
        rule, refinement = decide(request)
        plan = rule_plan(request, refinement, refiner=self.name, rule=rule.name)
        return replace(refinement, plan=plan)
