"""The model catalog: which models exist, what they cost, what they accept.

Parsed from a TOML file (bot/models.toml by default); model ids live only there, the
prompt refiners' too. Loading checks every tier and aspect ratio against what the
provider's API accepts (core/tiers.py): one it cannot honour is an error naming the line.
"""

from __future__ import annotations

import tomllib
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from core import tiers
from core.errors import ModelRetired, ModelUnavailable, UnknownModel
from core.models import RESOLUTIONS, ModelSpec, RefinerSpec

ASPECT_RATIOS = ("1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3", "21:9", "9:21", "5:4", "4:5")
PROVIDERS = ("sketch", "openai", "google", "replicate", "bench")
REFINER_PROVIDERS = ("openai", "google")
MODEL_KEYS = frozenset({
    "name", "provider", "model_id", "display_name", "credits", "aspect_ratios", "can_edit",
    "best_for", "seeds", "negative_prompt", "quality", "qualities", "sizes", "resolution_input",
    "timeout_s", "retires",
})
REFINER_KEYS = frozenset({"provider", "model_id", "timeout_s", "retires"})
DEFAULT_TIMEOUT_S = 120.0


class CatalogError(ValueError):
    """The catalog file is wrong; the message names the entry and, where known, the line."""


@dataclass(frozen=True)
class Catalog:
    models: tuple[ModelSpec, ...]
    refiners: tuple[RefinerSpec, ...] = ()
    defaults: tuple[str, ...] = ()  # preferred default models, best first

    def get(self, name: str) -> ModelSpec:
        """The model called `name` (case-insensitive), or UnknownModel."""
        for model in self.models:
            if model.name == name.lower().strip():
                return model
        raise UnknownModel(name, self.names())

    def usable(self, name: str, providers: Collection[str], today: date) -> ModelSpec:
        """The model called `name` if this Easel can use it; else the refusal that says why
        (unknown, not configured, retired), naming the models that can be used."""
        usable = [m.name for m in self.models if m.provider in providers and not m.is_retired(today)]
        try:
            model = self.get(name)
        except UnknownModel:
            raise UnknownModel(name, usable) from None
        if model.provider not in providers:
            raise ModelUnavailable(model.name, usable)
        if model.is_retired(today):
            raise ModelRetired(model.display_name, model.retires)
        return model

    def names(self) -> list[str]:
        return [m.name for m in self.models]

    def refiner(self, provider: str) -> RefinerSpec | None:
        """The prompt refiner model for `provider`, if the catalog names one."""
        return next((r for r in self.refiners if r.provider == provider), None)

    def best_default(
        self, providers: Collection[str], today: date, missing: Collection[str] = ()
    ) -> str:
        """The default model for a new thread: the first of `defaults` (then the rest, the
        offline ones last) that is configured, not retired and not reported missing."""
        ranked = [self.get(name) for name in self.defaults]
        ranked += [m for m in self.models if m not in ranked and m.provider != "sketch"]
        ranked += [m for m in self.models if m not in ranked]
        for model in ranked:
            usable = model.provider in providers and not model.is_retired(today)
            if usable and model.model_id not in missing:
                return model.name
        return "sketch"


class _Entry:
    """One [[model]] or [[refiner]] table and where it is, for error messages."""

    def __init__(self, raw: dict[str, Any], text: str, kind: str, index: int, source: str):
        self.raw = raw
        self.lines = text.splitlines()
        self.header = _header_line(self.lines, kind, index)
        self.label = f"{kind} #{index + 1}"
        self.source = source

    def error(self, message: str, key: str | None = None) -> CatalogError:
        line = self._key_line(key) if key else self.header
        return CatalogError(f"{self.source} line {line} ({self.label}): {message}")

    def _key_line(self, key: str) -> int:
        for number in range(self.header, len(self.lines)):
            stripped = self.lines[number].strip()
            if number > self.header and stripped.startswith("[["):
                break
            if stripped.split("=", 1)[0].strip().strip('"') == key:
                return number + 1
        return self.header


def _header_line(lines: list[str], kind: str, index: int) -> int:
    """1-based line of the `index`-th `[[kind]]` header."""
    seen = -1
    for number, line in enumerate(lines, start=1):
        if line.strip() == f"[[{kind}]]":
            seen += 1
            if seen == index:
                return number
    return 0


def _optional_date(entry: _Entry) -> date | None:
    value = entry.raw.get("retires")
    if value is None or (isinstance(value, date) and not hasattr(value, "hour")):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise entry.error(f"retires must be a date like 2027-01-31, not {value!r}",
                          "retires") from None


def _timeout(entry: _Entry, default: float) -> float:
    value = entry.raw.get("timeout_s", default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise entry.error("timeout_s must be a number of seconds > 0", "timeout_s")
    return float(value)


def _parse_model(entry: _Entry) -> ModelSpec:
    raw = entry.raw
    required = ("name", "provider", "model_id", "display_name", "credits", "aspect_ratios")
    missing = [key for key in required if key not in raw]
    if missing:
        raise entry.error(f"missing {', '.join(missing)}")
    if unknown := sorted(set(raw) - MODEL_KEYS):
        raise entry.error(f"unknown key {', '.join(unknown)}", unknown[0])
    if raw["provider"] not in PROVIDERS:
        raise entry.error(f"unknown provider {raw['provider']!r} (one of {PROVIDERS})",
                          "provider")
    credits = raw["credits"]
    if not isinstance(credits, dict) or not credits:
        raise entry.error("credits must be a table like { \"2K\" = 10 }", "credits")
    for resolution, cost in credits.items():
        if resolution not in RESOLUTIONS:
            raise entry.error(f"credits resolution {resolution!r} not in {RESOLUTIONS}",
                              "credits")
        if not isinstance(cost, int) or isinstance(cost, bool) or cost < 0:
            raise entry.error(f"credits for {resolution} must be a whole number >= 0", "credits")
    ratios = raw["aspect_ratios"]
    if not isinstance(ratios, list) or not ratios:
        raise entry.error("aspect_ratios must be a non-empty list", "aspect_ratios")
    for ratio in ratios:
        if ratio not in ASPECT_RATIOS:
            raise entry.error(f"aspect ratio {ratio!r} not in {ASPECT_RATIOS}", "aspect_ratios")
    name = str(raw["name"]).lower()
    if not name.replace("-", "").replace("_", "").isalnum():
        raise entry.error(f"name {name!r} must be letters, digits, '-' or '_'", "name")
    model = ModelSpec(
        name=name,
        provider=str(raw["provider"]),
        model_id=str(raw["model_id"]),
        display_name=str(raw["display_name"]),
        credits={str(k): int(v) for k, v in credits.items()},
        aspect_ratios=tuple(str(r) for r in ratios),
        can_edit=bool(raw.get("can_edit", False)),
        best_for=str(raw.get("best_for", "")),
        seeds=bool(raw.get("seeds", False)),
        negative_prompt=raw.get("negative_prompt") is True,
        quality={str(k): str(v) for k, v in (raw.get("quality") or {}).items()},
        sizes=str(raw.get("sizes", "")),
        resolution_input=raw.get("resolution_input") is True,
        timeout_s=_timeout(entry, DEFAULT_TIMEOUT_S),
        retires=_optional_date(entry),
    )
    _check_provider_accepts(model, entry)
    return model


def _check_provider_accepts(model: ModelSpec, entry: _Entry) -> None:
    """Each tier and ratio must be one the provider's API can honour, with its own request."""
    raw = entry.raw
    if model.provider != "openai":
        for key in ("quality", "qualities", "sizes"):
            if key in raw:
                raise entry.error(f"{key} is an OpenAI setting; {model.provider} has none", key)
    if "resolution_input" in raw and model.provider != "google":
        raise entry.error("resolution_input is a Gemini setting (image_size)", "resolution_input")
    if model.provider == "openai":
        _check_openai(model, entry)
    elif model.provider == "google":
        if bad := [r for r in model.aspect_ratios if r not in tiers.GEMINI_ASPECT_RATIOS]:
            raise entry.error(f"Gemini accepts no aspect ratio {', '.join(bad)} "
                              f"(it takes {', '.join(tiers.GEMINI_ASPECT_RATIOS)})",
                              "aspect_ratios")
        if not model.resolution_input and set(model.credits) != {"1K"}:
            raise entry.error("without resolution_input = true the model makes only 1K "
                              "images: one tier, 1K", "credits")
    elif model.provider == "replicate" and len(model.credits) != 1:
        raise entry.error("Replicate models get no resolution input from Easel: "
                          "one tier, one price", "credits")


def _check_openai(model: ModelSpec, entry: _Entry) -> None:
    if model.sizes not in tiers.OPENAI_SIZES:
        raise entry.error(f"sizes must be one of {tiers.OPENAI_SIZES}", "sizes")
    accepted = entry.raw.get("qualities", ["low", "medium", "high"])
    if not isinstance(accepted, list) or not set(accepted) <= set(tiers.OPENAI_QUALITIES):
        raise entry.error(f"qualities must be a list from {tiers.OPENAI_QUALITIES}", "qualities")
    sent: dict[tuple[str, str | None, str], str] = {}
    for resolution in model.credits:
        quality = model.quality.get(resolution)
        if quality not in accepted:
            raise entry.error(f"tier {resolution} needs a quality from {accepted} "
                              f"(got {quality!r})", "quality")
        for ratio in model.aspect_ratios:
            try:
                width, height = tiers.openai_size(model.sizes, ratio, resolution)
            except (KeyError, ValueError):
                raise entry.error(f"tier {resolution} at {ratio} is no size this model accepts "
                                  f"(sizes = {model.sizes!r})", "credits") from None
            request = (f"{width}x{height}", quality, ratio)
            if request in sent and model.credits[sent[request]] != model.credits[resolution]:
                raise entry.error(f"tiers {sent[request]} and {resolution} send the same "
                                  "request at different prices", "credits")
            sent[request] = resolution


def _parse_refiner(entry: _Entry) -> RefinerSpec:
    raw = entry.raw
    if unknown := sorted(set(raw) - REFINER_KEYS):
        raise entry.error(f"unknown key {', '.join(unknown)}", unknown[0])
    if raw.get("provider") not in REFINER_PROVIDERS or not raw.get("model_id"):
        raise entry.error(f"a refiner needs provider (one of {REFINER_PROVIDERS}) and model_id")
    return RefinerSpec(str(raw["provider"]), str(raw["model_id"]), _timeout(entry, 30.0),
                       _optional_date(entry))


def _entries(data: dict[str, Any], text: str, kind: str, source: str) -> Iterable[_Entry]:
    raws = data.get(kind, [])
    if not isinstance(raws, list):
        raise CatalogError(f"{source}: {kind} must be [[{kind}]] tables")
    return [_Entry(raw, text, kind, index, source) for index, raw in enumerate(raws)]


def parse_catalog(text: str, source: str = "catalog") -> Catalog:
    """Parse and check a catalog file's text; CatalogError names what is wrong and where."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{source}: {exc}") from None
    if not data.get("model"):
        raise CatalogError(f"{source}: no [[model]] entries")
    models: list[ModelSpec] = []
    for entry in _entries(data, text, "model", source):
        model = _parse_model(entry)
        if any(m.name == model.name for m in models):
            raise entry.error(f"duplicate name {model.name!r}", "name")
        models.append(model)
    refiners = [_parse_refiner(entry) for entry in _entries(data, text, "refiner", source)]
    defaults = data.get("defaults", [])
    names = {m.name for m in models}
    if not isinstance(defaults, list) or any(d not in names for d in defaults):
        raise CatalogError(f"{source}: defaults must list names of [[model]] entries")
    return Catalog(tuple(models), tuple(refiners), tuple(str(d) for d in defaults))
