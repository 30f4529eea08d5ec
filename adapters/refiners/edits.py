"""Applying a chat instruction ("make it night", "remove the snow") to an earlier prompt.

`apply_instruction` splits the message into clauses and runs each through `EDITS`,
a table read top to bottom: the first pattern that matches a clause rewrites the prompt.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from core.size_words import tidy

TIMES = (
    "night|nighttime|midnight|dusk|dawn|sunset|sunrise|twilight|noon|midday|daytime|day"
    "|golden hour|blue hour|morning|evening|winter|summer|autumn|fall|spring"
)
STYLES = (
    "watercolou?r|oil painting|oil|pixel art|anime|manga|cartoon|comic|sketch|pencil sketch"
    "|pencil|charcoal|ink|line art|photo|photograph|photorealistic|realistic|3d render|3d"
    "|low poly|cyberpunk|steampunk|impressionist|art deco|art nouveau|ukiyo-e|claymation"
    "|vaporwave|noir|film noir|minimalist|vintage|retro|studio ghibli|ghibli|pastel|neon"
)
COLOURS = (
    "red|orange|yellow|green|blue|purple|violet|pink|white|black|grey|gray|brown|gold"
    "|golden|silver|teal|cyan|magenta"
)
# Instructions that mean a rephrasing image models understand better.
MODIFIER_PHRASES = {
    "darker": "darker lighting",
    "brighter": "brighter lighting",
    "lighter": "lighter tones",
    "bigger": "subject larger in the frame",
    "larger": "subject larger in the frame",
    "smaller": "subject smaller in the frame",
    "more colorful": "more vivid colors",
    "more colourful": "more vivid colors",
}
# "now", "please", "can you", "same but" at the edges add nothing to a prompt.
_LEADING = re.compile(
    r"^(?:(?:now|ok(?:ay)?|please|pls|also|and|but|then|so|can you|could you|would you"
    r"|let'?s|i want|(?:the\s+)?same(?: thing| image| picture)?(?:,)?(?: but)?)[\s,]+)+",
    re.I,
)
_TRAILING = re.compile(r"(?:[\s,]+(?:please|pls|instead|too|as well|now|thanks))+[.!?]*$", re.I)
# Clauses begin where an instruction verb does: "darker and add a moon".
_VERB = (
    r"make|add|remove|delete|erase|change|replace|swap|turn|put|include|zoom|without"
    r"|give|get rid of|take out|drop|lose|more|less"
)
_CLAUSE_BREAK = re.compile(rf"\s*(?:,|;|\band\b|\bthen\b)\s*(?=(?:{_VERB})\b)", re.I)
_ARTICLE = re.compile(r"^(?:the|a|an|some|any|all(?: the)?|that|this|those|these)\s+", re.I)
_WHOLE_IMAGE = re.compile(
    r"^(?:it|this|that|them|everything|the (?:whole )?(?:image|picture|photo|scene))$", re.I
)


@dataclass(frozen=True)
class Edit:
    """One row of the table: a clause pattern and how it rewrites the prompt."""

    pattern: re.Pattern[str]
    rewrite: Callable[[str, re.Match[str]], str]


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(rf"^(?:{pattern})$", re.I)


def _bare(thing: str) -> str:
    return _ARTICLE.sub("", thing.strip()).strip()


def _without(base: str, thing: str) -> str:
    """`base` with any phrase naming `thing` cut out ("a fox in snow" - snow = "a fox")."""
    phrase = (
        r"\s*,?\s*\b(?:(?:in|on|with|without|and|under|near|by|at|of|over|plus)\s+)?"
        rf"(?:(?:the|a|an|some)\s+)?{re.escape(thing)}\b"
    )
    return tidy(re.sub(phrase, "", base, flags=re.I))


def _append(base: str, phrase: str) -> str:
    if re.search(rf"(?:^|,\s*){re.escape(phrase)}(?:,|$)", base, re.I):
        return base  # already asked for
    return f"{base}, {phrase}" if base else phrase


def _remove(base: str, m: re.Match[str]) -> str:
    thing = _bare(m["thing"])
    return _append(_without(base, thing), f"without {thing}")


def _add(base: str, m: re.Match[str]) -> str:
    thing = m["thing"].strip()
    base = re.sub(rf",?\s*without\s+(?:the\s+)?{re.escape(_bare(thing))}\b", "", base, flags=re.I)
    return _append(tidy(base), f"with {thing}")


def _replace(base: str, m: re.Match[str]) -> str:
    old, new = _bare(m["old"]), _bare(m["new"])
    if _WHOLE_IMAGE.match(m["old"].strip()):  # "turn it into a poster"
        if re.fullmatch(STYLES, new, re.I):
            return _restyle(base, new)
        return _append(base, f"as {m['new'].strip()}")
    if re.search(rf"\b{re.escape(old)}\b", base, re.I):
        return re.sub(rf"\b{re.escape(old)}\b", new, base, count=1, flags=re.I)
    return _append(base, f"{new} {old}")  # "change the sky to purple" -> "purple sky"


def _recolour(base: str, m: re.Match[str]) -> str:
    thing, colour = _bare(m["thing"]), m["colour"].lower()
    if not re.search(rf"\b{re.escape(thing)}\b", base, re.I):
        return _append(base, f"{colour} {thing}")
    base = re.sub(rf"\b(?:{COLOURS})\s+(?={re.escape(thing)}\b)", "", base, flags=re.I)
    return re.sub(rf"\b{re.escape(thing)}\b", f"{colour} {thing}", base, count=1, flags=re.I)


def _retime(base: str, m: re.Match[str]) -> str:
    when = m["time"].lower()
    base = tidy(re.sub(rf",?\s*\b(?:at|during|in the|in)\s+(?:{TIMES})\b", "", base, flags=re.I))
    if when in ("winter", "summer", "autumn", "fall", "spring"):
        return _append(base, f"in {when}")
    return _append(base, "in daylight" if when in ("day", "daytime") else f"at {when}")


def _restyle(base: str, style: str) -> str:
    base = re.sub(r",\s*[^,]+ style\b|,?\s*in the style of [^,]+", "", base, flags=re.I)
    return _append(tidy(base), f"{style.strip()} style")


def _style(base: str, m: re.Match[str]) -> str:
    return _restyle(base, m["style"])


def _modify(base: str, m: re.Match[str]) -> str:
    change = m["change"].strip()
    return _append(base, MODIFIER_PHRASES.get(change.lower(), change))


def _constant(phrase: str) -> Callable[[str, re.Match[str]], str]:
    return lambda base, _m: _append(base, phrase)


_IT = r"(?:it|this|that|them|the (?:image|picture|photo|scene))"
_STYLE_TAIL = r"(?:\s+style)?"

# The table, first match wins. Each comment is a message the row is for.
EDITS: tuple[Edit, ...] = (
    # "remove the snow", "without the boat", "no people"
    Edit(
        _rx(
            r"(?:remove|delete|erase|get rid of|take out|take away|drop|lose|no more|no"
            r"|without|minus)\s+(?P<thing>.+)"
        ),
        _remove,
    ),
    # "zoom in", "closer"
    Edit(_rx(r"(?:zoom in|closer|close[- ]up|get closer)(?: on it)?"), _constant("close-up")),
    # "zoom out", "further away"
    Edit(_rx(r"zoom out|further away|farther away|pull back|wider view"), _constant("wide view")),
    # "make it watercolor", "turn it into an oil painting"
    Edit(
        _rx(
            rf"(?:make|turn|paint|render|redo|do)\s+{_IT}\s+(?:in\s+|as\s+|into\s+)?"
            rf"(?:an?\s+)?(?P<style>{STYLES}){_STYLE_TAIL}"
        ),
        _style,
    ),
    # "in the style of Monet"
    Edit(
        _rx(r"(?:in|as)\s+(?:the\s+)?style\s+of\s+(?P<artist>.+)"),
        lambda base, m: _restyle(base, f"{m['artist']}'s"),
    ),
    # "in watercolor style", "as a pixel art", "in anime"
    Edit(_rx(r"(?:in|as)\s+(?:an?\s+)?(?P<style>.+?)\s+style"), _style),
    Edit(_rx(rf"(?:in|as)\s+(?:an?\s+)?(?P<style>{STYLES})"), _style),
    # "watercolor", "pixel art style"
    Edit(_rx(rf"(?P<style>{STYLES}){_STYLE_TAIL}"), _style),
    # "make it night", "at dusk", "in winter", "sunset"
    Edit(
        _rx(
            rf"(?:make\s+{_IT}\s+|turn\s+{_IT}\s+(?:into\s+)?)?(?:at\s+|during\s+|in\s+the\s+|in\s+)?"
            rf"(?P<time>{TIMES})(?:\s*time)?(?:\s+scene)?"
        ),
        _retime,
    ),
    # "change the fox to a cat", "replace the boat with a swan", "turn it into a poster"
    Edit(
        _rx(
            r"(?:change|replace|swap|turn|make)\s+(?P<old>.+?)\s+(?:to|into|with|for)\s+(?P<new>.+)"
        ),
        _replace,
    ),
    # "make the fox blue"
    Edit(
        _rx(rf"(?:make|paint|color|colour)\s+(?P<thing>(?!{_IT}\b).+?)\s+(?P<colour>{COLOURS})"),
        _recolour,
    ),
    # "add a moon", "put a hat on the fox", "with more stars"
    Edit(_rx(r"(?:add|put|include|plus|with|give it|also add)\s+(?P<thing>.+)"), _add),
    # "make it darker", "more red", "bigger", anything else: said as it was
    Edit(_rx(rf"(?:make|turn|render)\s+{_IT}\s+(?P<change>.+)"), _modify),
    Edit(_rx(r"(?P<change>.+)"), _modify),
)


def apply_instruction(base: str, instruction: str) -> str:
    """`base` (the earlier prompt) rewritten by each clause of `instruction` in turn."""
    for clause in _CLAUSE_BREAK.split(instruction):
        clause = _TRAILING.sub("", _LEADING.sub("", clause.strip(" ,.;!?"))).strip(" ,.;!?")
        if not clause:
            continue
        for edit in EDITS:
            match = edit.pattern.match(clause)
            if match:
                base = edit.rewrite(base, match)
                break
    return tidy(base)
