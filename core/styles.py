"""Style presets: `--style noir` adds a named prompt addition (and may suggest a model and
an aspect ratio). Parsed from a TOML file next to the catalog (bot/styles.toml by default).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from typing import Any

from core.catalog import ASPECT_RATIOS, CatalogError
from core.errors import BadOption
from core.models import ModelSpec
from core.text import shown

STYLE_KEYS = frozenset({"name", "adds", "description", "model", "aspect_ratio"})
# The words that clear a preference or a style ("--style none").
NO_STYLE = frozenset({"none", "off", "default", "clear"})


@dataclass(frozen=True)
class Style:
    """A named preset: the words it adds to the prompt, and optional defaults."""

    name: str
    adds: str
    description: str = ""
    model: str | None = None
    aspect_ratio: str | None = None


@dataclass(frozen=True)
class Styles:
    styles: tuple[Style, ...] = ()

    def get(self, name: str) -> Style:
        """The style called `name` (case-insensitive), or BadOption naming the ones there are."""
        wanted = name.strip().lower()
        for style in self.styles:
            if style.name == wanted:
                return style
        known = ", ".join(s.name for s in self.styles) or "none are set up"
        raise BadOption(f"There is no style called '{shown(name)}'. Styles: {known}.")

    def style_for(self, asked: str | None, carried: str | None,
                  preferred: str | None) -> Style | None:
        """The style asked for (`none`: none); else the parent image's, else the person's.
        A carried or preferred style since removed from the file is quietly dropped."""
        if asked:
            return None if asked in NO_STYLE else self.get(asked)
        name = carried or preferred
        return next((s for s in self.styles if s.name == name), None)

    def matching(self, typed: str, limit: int = 25) -> list[Style]:
        """Styles whose name starts with (then contains) what was typed, for autocomplete."""
        typed = typed.strip().lower()
        first = [s for s in self.styles if s.name.startswith(typed)]
        then = [s for s in self.styles if typed in s.name and s not in first]
        return (first + then)[:limit]


def look_params(style: Style | None, negative: str | None) -> dict[str, str]:
    """The style and negative prompt a generation carries in its params."""
    look = {"style": style.name, "style_adds": style.adds} if style else {}
    return look | ({"negative": negative} if negative else {})


def with_look(prompt: str, params: dict[str, Any], model: ModelSpec) -> tuple[str, str | None]:
    """The prompt with the style's words added, and the negative prompt for a model whose
    API takes one; for any other model the negative prompt is folded into the text. What
    was already there (a refinement of a styled image) is not added twice."""
    adds, negative = params.get("style_adds"), params.get("negative")
    if adds and adds.lower() not in prompt.lower():
        prompt = f"{prompt.rstrip(' .,')}, {adds}"
    if not negative or model.negative_prompt:
        return prompt, negative or None
    avoid = f"Avoid: {negative}"
    if avoid.lower() not in prompt.lower():
        prompt = f"{prompt.rstrip(' .,')}. {avoid}."
    return prompt, None


def parse_styles(text: str, source: str = "styles.toml") -> Styles:
    """Styles from TOML `[[style]]` tables; a wrong entry is a CatalogError naming it."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise CatalogError(f"{source}: {error}") from error
    styles = []
    for index, raw in enumerate(data.get("style", []), start=1):
        where = f"{source}: style #{index} ({raw.get('name', '?')})"
        unknown = set(raw) - STYLE_KEYS
        if unknown:
            raise CatalogError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        if not raw.get("name") or not raw.get("adds"):
            raise CatalogError(f"{where}: needs a name and the words it adds (adds = \"...\")")
        aspect = raw.get("aspect_ratio")
        if aspect is not None and aspect not in ASPECT_RATIOS:
            raise CatalogError(f"{where}: aspect_ratio {aspect!r} is not one of {ASPECT_RATIOS}")
        styles.append(Style(
            name=str(raw["name"]).strip().lower(), adds=str(raw["adds"]).strip(),
            description=str(raw.get("description", "")),
            model=str(raw["model"]).lower() if raw.get("model") else None, aspect_ratio=aspect,
        ))
    return Styles(tuple(styles))
