"""Every catalog model x aspect ratio x tier, through the real adapter and SDK.

The request each adapter sends (captured by the local fake servers) must carry values
from the set the installed SDK documents for that model, and two tiers with different
prices must never send the same request. The accepted sets are read from the SDKs'
own source, so a new SDK release that changes them makes this test say so.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from google.genai import types as genai_types
from openai.types import ImageModel, image_generate_params

from adapters.providers.google_images import GoogleImageProvider
from adapters.providers.openai_images import OpenAIImageProvider
from adapters.providers.replicate_images import ReplicateImageProvider
from bot.app import load_catalog
from core.models import ImageRequest, ModelSpec
from tests.fakes import gemini_server, openai_server, replicate_server
from tests.fakes.gemini_server import FakeGemini
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.replicate_server import MODEL_INPUTS, FakeReplicate

CATALOG = load_catalog(None)
PAID = [m.name for m in CATALOG.models if m.provider in ("openai", "google", "replicate")]


def _openai_docs() -> tuple[set[str], set[str], set[str]]:
    """(every quality, models that also take xhigh/max, models that take custom sizes)."""
    source = inspect.getsource(image_generate_params)
    hints = typing.get_type_hints(image_generate_params.ImageGenerateParamsBase)
    qualities = set(typing.get_args(typing.get_args(hints["quality"])[0]))
    xhigh = re.search(r"- (`gpt-image[^\n]*\n[^\n]*?)also support `xhigh` and `max`", source)
    custom = re.search(r"For (`gpt-image-2`.*?), arbitrary resolutions", source, re.DOTALL)
    assert xhigh and custom, "the SDK's size/quality docstrings changed: read them again"
    return (
        qualities - {"auto", "standard", "hd"},
        set(re.findall(r"`(gpt-image[^`]+)`", xhigh.group(1))),
        set(re.findall(r"`(gpt-image[^`]+)`", custom.group(1))),
    )


QUALITIES, XHIGH_MODELS, CUSTOM_SIZE_MODELS = _openai_docs()
STANDARD_SIZES = {"1024x1024", "1536x1024", "1024x1536"}
GEMINI_RATIOS = set(
    re.findall(r'"(\d+:\d+)"', genai_types.ImageConfig.model_fields["aspect_ratio"].description or "")
)
GEMINI_SIZES = set(
    re.findall(r"`(\dK)`", genai_types.ImageConfig.model_fields["image_size"].description or "")
)


def check_openai(model: ModelSpec, body: dict[str, Any]) -> None:
    assert body["model"] in typing.get_args(ImageModel)
    quality = body["quality"]
    assert quality in QUALITIES
    if quality in ("xhigh", "max"):
        assert model.model_id in XHIGH_MODELS, f"{model.model_id} takes no {quality}"
    size = body["size"]
    if model.model_id not in CUSTOM_SIZE_MODELS:
        assert size in STANDARD_SIZES, f"{model.model_id} takes only the standard sizes"
        return
    width, height = (int(side) for side in size.split("x"))
    assert width % 16 == 0 and height % 16 == 0
    assert max(width, height) / min(width, height) <= 3
    assert max(width, height) <= 3840 and min(width, height) <= 2160


def check_google(model: ModelSpec, body: dict[str, Any]) -> None:
    image_config = body["generationConfig"]["imageConfig"]
    assert image_config["aspectRatio"] in GEMINI_RATIOS
    assert image_config.get("imageSize", "1K") in GEMINI_SIZES


def check_replicate(model: ModelSpec, body: dict[str, Any]) -> None:
    schema = MODEL_INPUTS[model.model_id]
    for name, value in body["input"].items():
        if name in schema:
            assert value in schema[name]["enum"]


@pytest_asyncio.fixture(scope="module")
async def fakes() -> AsyncIterator[tuple[FakeOpenAI, FakeGemini, FakeReplicate]]:
    servers = (FakeOpenAI(), FakeGemini(), FakeReplicate(polls_to_finish=1))
    for server in servers:
        await server.start()
    yield servers
    for server in servers:
        await server.stop()


@pytest.mark.parametrize("name", PAID)
async def test_every_tier_sends_values_the_model_accepts_and_differs_by_price(
    name: str, fakes: tuple[FakeOpenAI, FakeGemini, FakeReplicate]
) -> None:
    openai_fake, gemini_fake, replicate_fake = fakes
    model = CATALOG.get(name)
    provider: Any
    if model.provider == "openai":
        provider, fake, route = (
            OpenAIImageProvider(openai_server.DEFAULT_KEY, openai_fake.sdk_base_url, timeout_s=10),
            openai_fake, "images/generations",
        )
        check = check_openai
    elif model.provider == "google":
        provider, fake, route = (
            GoogleImageProvider(gemini_server.DEFAULT_KEY, gemini_fake.base_url, timeout_s=10),
            gemini_fake, gemini_server.ROUTE,
        )
        check = check_google
    else:
        provider, fake, route = (
            ReplicateImageProvider(replicate_server.DEFAULT_TOKEN, replicate_fake.base_url,
                                   poll_interval_s=0.01, timeout_s=10),
            replicate_fake, "models.predictions.create",
        )
        check = check_replicate
    fake.reset()
    sent: dict[tuple[str, str], Any] = {}
    for ratio in model.aspect_ratios:
        for tier in model.resolutions:
            request = ImageRequest(model, "a lighthouse at dusk", ratio, tier, seed=7,
                                   generation_id=1)
            await provider.generate(request)  # the fake refuses what the model would
            body = fake.requests_to(route)[-1].json
            check(model, body)
            sent[(ratio, tier)] = body
        for first in model.resolutions:
            for second in model.resolutions:
                if first < second and model.cost(first) != model.cost(second):
                    assert sent[(ratio, first)] != sent[(ratio, second)], (
                        f"{name} {ratio}: {first} and {second} cost differently, send the same"
                    )
    assert len(sent) == len(model.aspect_ratios) * len(model.resolutions)
    print(f"{name}: {len(sent)} requests, tiers {dict(model.credits)}")
