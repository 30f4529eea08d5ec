"""The model catalog: the shipped file parses; a wrong file is refused naming the line."""

from __future__ import annotations

from datetime import date

import pytest

from bot.app import load_catalog
from core.catalog import CatalogError, parse_catalog
from core.errors import UnknownModel

GOOD = """
[[model]]
name = "a"
provider = "sketch"
model_id = "x"
display_name = "A"
credits = { "1K" = 1 }
aspect_ratios = ["1:1"]
"""


def test_shipped_catalog_has_honest_tiers_and_current_ids() -> None:
    catalog = load_catalog(None)
    assert [catalog.get("nano2").cost(r) for r in ("1K", "2K", "4K")] == [7, 10, 14]
    assert [catalog.get("pro").cost(r) for r in ("1K", "2K", "4K")] == [10, 14, 20]
    assert catalog.get("sketch").cost("2K") == 0
    flux = catalog.get("flux")
    assert flux.credits == {"1K": 6} and "21:9" not in flux.aspect_ratios
    assert catalog.get("nano").is_retired(date(2026, 12, 1))
    assert {"gpt-image-2.6-flare", "gpt-image-2.6-sunburst"} <= {m.model_id for m in catalog.models}
    assert catalog.refiner("openai").model_id == "gpt-5.4-mini"  # type: ignore[union-attr]
    assert catalog.refiner("google").model_id == "gemini-3.5-flash"  # type: ignore[union-attr]
    ids = {m.model_id for m in catalog.models}
    assert "gpt-image-1" not in ids and not any(i.startswith("imagen") for i in ids)
    with pytest.raises(UnknownModel):
        catalog.get("dall-e-3")


def test_the_default_is_the_best_current_configured_model() -> None:
    catalog = load_catalog(None)
    today = date(2026, 12, 1)
    assert catalog.best_default({"sketch", "google"}, today) == "nano2"
    assert catalog.best_default({"sketch", "openai"}, today) == "sunburst26"
    assert catalog.best_default({"sketch", "replicate"}, today) == "flux"
    assert catalog.best_default({"sketch"}, today) == "sketch"
    # Retired or reported missing by `easel models --check`: skipped.
    only_nano = parse_catalog(GOOGLE.replace('"1K" = 7, "2K" = 10', '"1K" = 5')
                              .replace("resolution_input = true\n", "")
                              + 'retires = 2026-10-02\n' + GOOD, "c.toml")
    assert only_nano.best_default({"sketch", "google"}, today) == "a"
    assert catalog.best_default({"sketch", "google"}, today,
                                missing={"gemini-3.1-flash-image"}) == "pro"


GOOGLE = """
[[model]]
name = "g"
provider = "google"
model_id = "gemini-3.1-flash-image"
display_name = "G"
resolution_input = true
credits = { "1K" = 7, "2K" = 10 }
aspect_ratios = ["1:1", "16:9"]
"""
OPENAI = """
[[model]]
name = "o"
provider = "openai"
model_id = "gpt-image-2"
display_name = "O"
sizes = "custom"
credits = { "1K" = 8, "2K" = 14 }
quality = { "1K" = "medium", "2K" = "high" }
aspect_ratios = ["1:1", "16:9"]
"""
REPLICATE = """
[[model]]
name = "r"
provider = "replicate"
model_id = "black-forest-labs/flux-1.1-pro"
display_name = "R"
credits = { "1K" = 6 }
aspect_ratios = ["1:1"]
"""


@pytest.mark.parametrize(
    ("broken", "says", "line"),
    [
        (REPLICATE.replace('"1K" = 6', '"1K" = 6, "2K" = 9'), "one tier, one price", 7),
        (OPENAI.replace('"custom"', '"standard"'), "tier 1K at 16:9 is no size", 8),
        (OPENAI.replace('"2K" = "high"', '"2K" = "max"'), "tier 2K needs a quality", 9),
        (OPENAI.replace('"2K" = "high"', '"2K" = "medium"').replace('"16:9"', '"3:1"'),
         "aspect ratio '3:1'", 10),
        (OPENAI.replace('sizes = "custom"\n', ""), "sizes must be one of", 2),
        (GOOGLE.replace('["1:1", "16:9"]', '["1:1", "5:4"]'), "Gemini accepts no aspect ratio 5:4",
         9),
        (GOOGLE.replace("resolution_input = true\n", ""), "only 1K", 7),
        (REPLICATE.replace('aspect_ratios', 'quality = { "1K" = "high" }\naspect_ratios'),
         "OpenAI setting", 8),
        (REPLICATE + 'retires = "soon"\n', "retires must be a date", 9),
        (REPLICATE + "timeout_s = 0\n", "timeout_s must be", 9),
        (REPLICATE + "colour = 1\n", "unknown key colour", 9),
    ],
)
def test_a_tier_or_ratio_the_model_cannot_honour_names_its_line(
    broken: str, says: str, line: int
) -> None:
    with pytest.raises(CatalogError) as error:
        parse_catalog("# top\n" + broken, "models.toml")
    assert says in str(error.value)
    assert f"models.toml line {line + 1} " in str(error.value)


@pytest.mark.parametrize(
    ("broken", "says"),
    [
        (GOOD.replace('provider = "sketch"', 'provider = "nope"'), "unknown provider"),
        (GOOD.replace('"1K" = 1', '"8K" = 1'), "credits resolution"),
        (GOOD.replace('["1:1"]', '["7:5"]'), "aspect ratio"),
        (GOOD.replace('model_id = "x"\n', ""), "missing model_id"),
        (GOOD + GOOD, "duplicate name"),
        ("[[model]\nname=", "models.toml"),
    ],
)
def test_a_wrong_catalog_names_the_line(broken: str, says: str) -> None:
    with pytest.raises(CatalogError) as error:
        parse_catalog("# top\n" + broken, "models.toml")
    assert says in str(error.value)
    assert "line" in str(error.value)


def test_one_refusal_per_reason_naming_the_models_that_can_be_used() -> None:
    """What /model, --model, a compare and Discord's options all answer (catalog.usable)."""
    from core.errors import ModelUnavailable

    catalog = load_catalog(None)
    today = date(2026, 12, 2)
    assert catalog.usable("Ink", {"sketch"}, today).name == "ink"
    with pytest.raises(UnknownModel) as unknown:
        catalog.usable("nosuch", {"sketch"}, today)
    assert unknown.value.user_message == (
        "There is no model called 'nosuch'. Models you can use here: sketch, ink.")
    with pytest.raises(ModelUnavailable) as unconfigured:
        catalog.usable("pro", {"sketch"}, today)
    assert unconfigured.value.user_message == (
        "The model 'pro' is not configured on this Easel (its API key is not set). "
        "Models you can use here: sketch, ink.")
