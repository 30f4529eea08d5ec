"""The model catalog: which models exist, what they cost, what they accept.

Parsed from a TOML file (bot/models.toml by default); model ids live only there.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from typing import Any

from core.errors import UnknownModel
from core.models import RESOLUTIONS, ModelSpec

ASPECT_RATIOS = ("1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3", "21:9", "9:21", "5:4", "4:5")
PROVIDERS = ("sketch", "openai", "google", "replicate", "bench")


class CatalogError(ValueError):
    """The catalog file is wrong; the message names the entry and, where known, the line."""


@dataclass(frozen=True)
class Catalog:
    models: tuple[ModelSpec, ...]

    def get(self, name: str) -> ModelSpec:
        """The model called `name` (case-insensitive), or UnknownModel."""
        for model in self.models:
            if model.name == name.lower().strip():
                return model
        raise UnknownModel(name, self.names())

    def names(self) -> list[str]:
        return [m.name for m in self.models]


def _line_of(text: str, index: int) -> int:
    """1-based line of the `index`-th `[[model]]` header in `text`."""
    seen = -1
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip() == "[[model]]":
            seen += 1
            if seen == index:
                return number
    return 0


def _parse_entry(raw: dict[str, Any], where: str) -> ModelSpec:
    required = ("name", "provider", "model_id", "display_name", "credits", "aspect_ratios")
    missing = [key for key in required if key not in raw]
    if missing:
        raise CatalogError(f"{where}: missing {', '.join(missing)}")
    if raw["provider"] not in PROVIDERS:
        raise CatalogError(f"{where}: unknown provider {raw['provider']!r} (one of {PROVIDERS})")
    credits = raw["credits"]
    if not isinstance(credits, dict) or not credits:
        raise CatalogError(f"{where}: credits must be a table like {{ \"2K\" = 10 }}")
    for resolution, cost in credits.items():
        if resolution not in RESOLUTIONS:
            raise CatalogError(f"{where}: credits resolution {resolution!r} not in {RESOLUTIONS}")
        if not isinstance(cost, int) or isinstance(cost, bool) or cost < 0:
            raise CatalogError(f"{where}: credits for {resolution} must be a whole number >= 0")
    ratios = raw["aspect_ratios"]
    if not isinstance(ratios, list) or not ratios:
        raise CatalogError(f"{where}: aspect_ratios must be a non-empty list")
    for ratio in ratios:
        if ratio not in ASPECT_RATIOS:
            raise CatalogError(f"{where}: aspect ratio {ratio!r} not in {ASPECT_RATIOS}")
    name = str(raw["name"]).lower()
    if not name.replace("-", "").replace("_", "").isalnum():
        raise CatalogError(f"{where}: name {name!r} must be letters, digits, '-' or '_'")
    return ModelSpec(
        name=name,
        provider=str(raw["provider"]),
        model_id=str(raw["model_id"]),
        display_name=str(raw["display_name"]),
        credits={str(k): int(v) for k, v in credits.items()},
        aspect_ratios=tuple(str(r) for r in ratios),
        can_edit=bool(raw.get("can_edit", False)),
        best_for=str(raw.get("best_for", "")),
        seeds=bool(raw.get("seeds", False)),
    )


def parse_catalog(text: str, source: str = "catalog") -> Catalog:
    """Parse and check a catalog file's text; CatalogError names what is wrong and where."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{source}: {exc}") from None
    entries = data.get("model")
    if not isinstance(entries, list) or not entries:
        raise CatalogError(f"{source}: no [[model]] entries")
    models: list[ModelSpec] = []
    for index, raw in enumerate(entries):
        where = f"{source} line {_line_of(text, index)} (model #{index + 1})"
        model = _parse_entry(raw, where)
        if any(m.name == model.name for m in models):
            raise CatalogError(f"{where}: duplicate name {model.name!r}")
        models.append(model)
    return Catalog(tuple(models))
