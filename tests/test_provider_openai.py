"""OpenAIImageProvider through the real `openai` SDK against the fake OpenAI server."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import pytest_asyncio
from PIL import Image

from adapters.providers.openai_images import OpenAIImageProvider
from bot.app import load_catalog
from core.errors import (
    ContentPolicy,
    InvalidRequest,
    OutcomeUnknown,
    ProviderDown,
    RateLimitedByProvider,
    TransientProviderError,
)
from core.models import ImageRequest, Images, InputImage
from tests.fakes.openai_server import (
    DEFAULT_KEY,
    FakeOpenAI,
    moderation_blocked,
    openai_error,
    png_bytes,
    rate_limited,
    server_error,
)
from tests.fakes.scripted import Reply

# The shipped catalog's GPT Image 2 (custom sizes; 1K medium, 2K and 4K high).
MODEL = load_catalog(None).get("gpt")


def image_request(
    aspect_ratio: str = "1:1", resolution: str = "2K", inputs: tuple[InputImage, ...] = ()
) -> ImageRequest:
    return ImageRequest(
        model=MODEL,
        prompt="a lighthouse at dusk",
        aspect_ratio=aspect_ratio,
        resolution=resolution,
        seed=7,
        generation_id=1,
        input_images=inputs,
    )


@pytest_asyncio.fixture(scope="module")
async def server() -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI()
    await fake.start()
    yield fake
    await fake.stop()


@pytest_asyncio.fixture
async def fake(server: FakeOpenAI) -> AsyncIterator[FakeOpenAI]:
    server.reset()
    yield server
    server.reset()


@pytest_asyncio.fixture
async def provider(fake: FakeOpenAI) -> AsyncIterator[OpenAIImageProvider]:
    made = OpenAIImageProvider(DEFAULT_KEY, base_url=fake.sdk_base_url, timeout_s=5)
    yield made
    await made.aclose()


def image_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        return image.size


async def test_generate_returns_png_and_sends_the_right_request(
    provider: OpenAIImageProvider, fake: FakeOpenAI
) -> None:
    result = await provider.generate(image_request())

    assert isinstance(result, Images) and len(result.images) == 1
    assert result.images[0].content_type == "image/png"
    assert result.images[0].data.startswith(b"\x89PNG\r\n\x1a\n")
    assert image_size(result.images[0].data) == (30, 30)
    [sent] = fake.requests_to("images/generations")
    assert sent.headers["authorization"] == f"Bearer {DEFAULT_KEY}"
    assert sent.json == {
        "model": "gpt-image-2",
        "prompt": "a lighthouse at dusk",
        "size": "1920x1920",
        "quality": "high",
        "output_format": "png",
        "n": 1,
    }


@pytest.mark.parametrize(
    ("aspect_ratio", "resolution", "size", "quality"),
    [
        ("1:1", "1K", "1024x1024", "medium"),
        ("16:9", "2K", "2560x1440", "high"),
        ("3:2", "4K", "3232x2160", "high"),
        ("9:16", "1K", "768x1360", "medium"),
        ("4:5", "4K", "2160x2688", "high"),
    ],
)
async def test_size_and_quality_follow_aspect_ratio_and_resolution(
    provider: OpenAIImageProvider,
    fake: FakeOpenAI,
    aspect_ratio: str,
    resolution: str,
    size: str,
    quality: str,
) -> None:
    await provider.generate(image_request(aspect_ratio, resolution))

    [sent] = fake.requests_to("images/generations")
    assert (sent.json["size"], sent.json["quality"]) == (size, quality)


async def test_edit_uploads_the_input_images(
    provider: OpenAIImageProvider, fake: FakeOpenAI
) -> None:
    photo = png_bytes(8, 8, (200, 10, 10))
    inputs = (
        InputImage(photo, "image/png", "photo.png"),
        InputImage(b"\xff\xd8jpeg", "image/jpeg"),
    )

    result = await provider.generate(image_request("16:9", "4K", inputs))

    assert isinstance(result, Images)
    assert image_size(result.images[0].data) == (60, 33)
    assert fake.requests_to("images/generations") == []
    [sent] = fake.requests_to("images/edits")
    assert [(f.field_name, f.content_type, f.data) for f in sent.files] == [
        ("image[]", "image/png", photo),
        ("image[]", "image/jpeg", b"\xff\xd8jpeg"),
    ]
    assert [f.filename for f in sent.files] == ["photo-0.png", "image-1.jpg"]
    assert sent.field("model") == "gpt-image-2"
    assert sent.field("prompt") == "a lighthouse at dusk"
    assert (sent.field("size"), sent.field("quality")) == ("3840x2160", "high")
    assert sent.field("output_format") == "png"


async def test_safety_refusal_is_content_policy(
    provider: OpenAIImageProvider, fake: FakeOpenAI
) -> None:
    fake.script("images/generations", [moderation_blocked()])

    with pytest.raises(ContentPolicy):
        await provider.generate(image_request())


async def test_legacy_content_policy_code_is_content_policy(
    provider: OpenAIImageProvider, fake: FakeOpenAI
) -> None:
    fake.script(
        "images/edits",
        [
            openai_error(
                400,
                "Your request was rejected as a result of our safety system.",
                code="content_policy_violation",
            )
        ],
    )

    with pytest.raises(ContentPolicy):
        await provider.generate(image_request(inputs=(InputImage(png_bytes(), "image/png"),)))


async def test_429_carries_retry_after(provider: OpenAIImageProvider, fake: FakeOpenAI) -> None:
    fake.script("images/generations", [rate_limited("7")])

    with pytest.raises(RateLimitedByProvider) as caught:
        await provider.generate(image_request())

    assert caught.value.retryable and caught.value.retry_after_s == 7.0
    assert len(fake.requests) == 1, "the SDK must not retry on its own"


async def test_500_is_provider_down_and_not_retried_by_the_sdk(
    provider: OpenAIImageProvider, fake: FakeOpenAI
) -> None:
    fake.script("images/generations", [server_error()])

    with pytest.raises(ProviderDown):
        await provider.generate(image_request())

    assert len(fake.requests) == 1


async def test_401_is_invalid_request_without_the_key(fake: FakeOpenAI) -> None:
    wrong_key = "sk-proj-WRONGkey0123456789abcdefABCDEF"
    provider = OpenAIImageProvider(wrong_key, base_url=fake.sdk_base_url, timeout_s=5)
    try:
        with pytest.raises(InvalidRequest) as caught:
            await provider.generate(image_request())
    finally:
        await provider.aclose()

    assert "API key" in caught.value.user_message
    assert wrong_key not in str(caught.value) and wrong_key not in caught.value.user_message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


async def test_other_400_says_what_was_wrong_only_when_safe(
    provider: OpenAIImageProvider, fake: FakeOpenAI
) -> None:
    fake.script(
        "images/generations",
        [
            openai_error(
                400,
                "Invalid value: 'transparent'. Supported values are: 'opaque'.",
                param="background",
                code="invalid_value",
            ),
            openai_error(
                400,
                "Invalid image: see https://platform.openai.com/docs?token=abc",
                code="invalid_image",
            ),
        ],
    )

    with pytest.raises(InvalidRequest) as safe:
        await provider.generate(image_request())
    with pytest.raises(InvalidRequest) as unsafe:
        await provider.generate(image_request())

    assert "Supported values are" in safe.value.user_message
    assert "https" not in unsafe.value.user_message
    assert unsafe.value.user_message == InvalidRequest.default_message


async def test_a_timeout_after_sending_is_outcome_unknown_not_retried(fake: FakeOpenAI) -> None:
    fake.script("images/generations", [Reply(200, {}, delay_s=2.0)])
    provider = OpenAIImageProvider(DEFAULT_KEY, base_url=fake.sdk_base_url, timeout_s=0.2)
    try:
        with pytest.raises(OutcomeUnknown) as caught:
            await provider.generate(image_request())
    finally:
        await provider.aclose()

    assert not caught.value.retryable and "did not answer in time" in caught.value.user_message


async def test_unreachable_server_is_transient() -> None:
    provider = OpenAIImageProvider(DEFAULT_KEY, base_url="http://127.0.0.1:9/v1", timeout_s=2)
    try:
        with pytest.raises(TransientProviderError):
            await provider.generate(image_request())
    finally:
        await provider.aclose()


async def test_resume_is_never_used(provider: OpenAIImageProvider) -> None:
    with pytest.raises(InvalidRequest):
        await provider.resume("anything", image_request())


async def test_retry_after_as_http_date_and_in_milliseconds(
    provider: OpenAIImageProvider, fake: FakeOpenAI
) -> None:
    later = datetime.now(UTC) + timedelta(seconds=30)
    fake.script(
        "images/generations",
        [
            rate_limited(format_datetime(later, usegmt=True)),
            openai_error(
                429, "Slow down.", code="rate_limit_exceeded", headers={"retry-after-ms": "1500"}
            ),
        ],
    )

    with pytest.raises(RateLimitedByProvider) as as_date:
        await provider.generate(image_request())
    with pytest.raises(RateLimitedByProvider) as as_ms:
        await provider.generate(image_request())

    assert as_date.value.retry_after_s is not None and 25 <= as_date.value.retry_after_s <= 30
    assert as_ms.value.retry_after_s == 1.5
