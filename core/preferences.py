"""A person's own defaults (`/settings`): model, aspect ratio, resolution and style.

Stored per person in Postgres; a new thread starts on the preferred model, and a request
that names no aspect, resolution or style takes the person's. A thread's own `/model`
still wins: the preferred model is only where a new thread starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from datetime import date

import asyncpg

from core.catalog import Catalog
from core.models import UserRef
from core.options import Options, parse_inline_options
from core.styles import NO_STYLE

PREFERENCES_OF = """
SELECT p.model, p.aspect_ratio, p.resolution, p.style FROM user_preferences p
JOIN users u ON u.id = p.user_id
WHERE u.platform = $1 AND u.workspace = $2 AND u.external_id = $3
"""

SAVE_PREFERENCES = """
INSERT INTO user_preferences (user_id, model, aspect_ratio, resolution, style)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (user_id) DO UPDATE SET model = $2, aspect_ratio = $3, resolution = $4,
    style = $5, updated_at = now()
"""

_OPTION_FIELDS = {"--model": "model", "-m": "model", "--ar": "aspect_ratio",
                  "--aspect": "aspect_ratio", "--res": "resolution", "--resolution": "resolution",
                  "--style": "style"}
_CLEARED = re.compile(
    r"(?P<option>--model|-m|--ar|--aspect|--res|--resolution|--style)[\s=]+"
    rf"(?:{'|'.join(NO_STYLE)})\b", re.I,
)
SETTINGS_HELP = ("Set yours with `settings --model NAME --ar 16:9 --res 2K --style NAME` "
                 "(`none` clears one).")


@dataclass(frozen=True)
class Preferences:
    model: str | None = None
    aspect_ratio: str | None = None
    resolution: str | None = None
    style: str | None = None

    def as_text(self) -> str:
        """The person's defaults as one short reply."""
        shown = [f"{label}: {value or 'not set'}" for label, value in (
            ("model", self.model), ("aspect", self.aspect_ratio),
            ("resolution", self.resolution), ("style", self.style))]
        return "Your defaults for new threads — " + " · ".join(shown) + "\n" + SETTINGS_HELP


@dataclass(frozen=True)
class PreferenceChange:
    """What a `settings` message asks: values to set and fields to clear."""

    given: Options
    cleared: frozenset[str]

    @property
    def is_empty(self) -> bool:
        return not self.cleared and self.given == Options()

    def applied_to(self, current: Preferences) -> Preferences:
        updated = current
        for name in (f.name for f in fields(Preferences)):
            if name in self.cleared:
                updated = replace(updated, **{name: None})
            elif (value := getattr(self.given, name)) is not None:
                updated = replace(updated, **{name: value})
        return updated


def read_change(text: str) -> PreferenceChange:
    """`--model gpt --style none` → set the model, clear the style (BadOption if wrong)."""
    cleared = frozenset(_OPTION_FIELDS[m["option"].lower()] for m in _CLEARED.finditer(text))
    _, given = parse_inline_options(_CLEARED.sub(" ", text))
    return PreferenceChange(given, cleared)


def new_thread_model(prefs: Preferences, catalog: Catalog, providers: frozenset[str],
                     default_model: str) -> str:
    """Where a new thread starts: the person's model while it is offered here, else the
    default (an existing thread keeps its own model)."""
    if prefs.model not in catalog.names():
        return default_model
    model = catalog.get(prefs.model)
    if model.provider not in providers or model.is_retired(date.today()):
        return default_model
    return model.name


async def preferences_of(conn: asyncpg.Connection | asyncpg.Pool, user: UserRef) -> Preferences:
    """The person's defaults (all None when they set none)."""
    row = await conn.fetchrow(PREFERENCES_OF, user.platform, user.workspace, user.external_id)
    return Preferences(**dict(row)) if row else Preferences()


async def save_preferences(conn: asyncpg.Connection, user_id: int, prefs: Preferences) -> None:
    """Store the person's defaults (replacing what was there)."""
    await conn.execute(SAVE_PREFERENCES, user_id, prefs.model, prefs.aspect_ratio,
                       prefs.resolution, prefs.style)
