"""GoogleImageProvider through the real `google-genai` SDK against the fake Gemini API."""

from __future__ import annotations

import base64
import dataclasses
import io
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from PIL import Image

from adapters.providers.google_images import GoogleImageProvider
from core.errors import (
    ContentPolicy,
    InvalidRequest,
    OutcomeUnknown,
    ProviderDown,
    RateLimitedByProvider,
    TransientProviderError,
)
from core.models import ImageRequest, Images, InputImage, ModelSpec
from tests.fakes.gemini_server import (
    DEFAULT_KEY,
    ROUTE,
    FakeGemini,
    finish_blocked,
    google_error,
    image_response,
    prompt_blocked,
    rate_limited,
    server_error,
    text_response,
)
from tests.fakes.openai_server import png_bytes
from tests.fakes.scripted import Reply

MODEL = ModelSpec(
    name="nano-banana-2",
    provider="google",
    model_id="gemini-3.1-flash-image",
    display_name="Nano Banana 2",
    credits={"1K": 2, "2K": 4, "4K": 8},
    aspect_ratios=("1:1", "16:9", "9:16"),
    can_edit=True,
    resolution_input=True,
)


def image_request(
    aspect_ratio: str = "1:1", resolution: str = "1K", inputs: tuple[InputImage, ...] = ()
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
async def server() -> AsyncIterator[FakeGemini]:
    fake = FakeGemini()
    await fake.start()
    yield fake
    await fake.stop()


@pytest_asyncio.fixture
async def fake(server: FakeGemini) -> AsyncIterator[FakeGemini]:
    server.reset()
    yield server
    server.reset()


@pytest_asyncio.fixture
async def provider(fake: FakeGemini) -> AsyncIterator[GoogleImageProvider]:
    made = GoogleImageProvider(DEFAULT_KEY, base_url=fake.base_url, timeout_s=5)
    yield made
    await made.aclose()


def image_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        return image.size


async def test_generate_returns_png_and_sends_the_real_wire_format(
    provider: GoogleImageProvider, fake: FakeGemini
) -> None:
    result = await provider.generate(image_request("16:9", "1K"))

    assert isinstance(result, Images) and len(result.images) == 1
    assert result.images[0].data.startswith(b"\x89PNG\r\n\x1a\n")
    assert result.images[0].content_type == "image/png"
    assert image_size(result.images[0].data) == (16, 9)
    [sent] = fake.requests_to(ROUTE)
    assert sent.path == "/v1/models/gemini-3.1-flash-image:generateContent"
    assert sent.headers["x-goog-api-key"] == DEFAULT_KEY
    assert sent.json["contents"] == [{"role": "user", "parts": [{"text": "a lighthouse at dusk"}]}]
    config = sent.json["generationConfig"]
    assert config["responseModalities"] == ["IMAGE"]
    assert config["imageConfig"] == {"aspectRatio": "16:9", "imageSize": "1K"}
    assert config["seed"] == 7


async def test_a_model_without_image_size_is_sent_none(
    provider: GoogleImageProvider, fake: FakeGemini
) -> None:
    # gemini-2.5-flash-image made 1K only and rejected imageSize altogether.
    older = dataclasses.replace(MODEL, model_id="gemini-2.5-flash-image", resolution_input=False)
    await provider.generate(dataclasses.replace(image_request("16:9"), model=older))

    [sent] = fake.requests_to(ROUTE)
    assert sent.json["generationConfig"]["imageConfig"] == {"aspectRatio": "16:9"}


@pytest.mark.parametrize(("aspect_ratio", "resolution"), [("9:16", "2K"), ("1:1", "4K")])
async def test_aspect_ratio_and_resolution_are_sent(
    provider: GoogleImageProvider, fake: FakeGemini, aspect_ratio: str, resolution: str
) -> None:
    await provider.generate(image_request(aspect_ratio, resolution))

    [sent] = fake.requests_to(ROUTE)
    assert sent.json["generationConfig"]["imageConfig"] == {
        "aspectRatio": aspect_ratio,
        "imageSize": resolution,
    }


async def test_edit_sends_input_images_as_inline_parts(
    provider: GoogleImageProvider, fake: FakeGemini
) -> None:
    photo = png_bytes(8, 8, (200, 10, 10))
    inputs = (InputImage(photo, "image/png"), InputImage(b"\xff\xd8jpeg", "image/jpeg"))

    result = await provider.generate(image_request(inputs=inputs))

    assert isinstance(result, Images)
    [sent] = fake.requests_to(ROUTE)
    text, *images = sent.json["contents"][0]["parts"]
    assert text == {"text": "a lighthouse at dusk"}
    # The SDK sends URL-safe base64 (the API accepts both alphabets).
    assert [
        (base64.urlsafe_b64decode(p["inlineData"]["data"]), p["inlineData"]["mime_type"])
        for p in images
    ] == [(photo, "image/png"), (b"\xff\xd8jpeg", "image/jpeg")]


async def test_thought_images_and_text_parts_are_skipped(
    provider: GoogleImageProvider, fake: FakeGemini
) -> None:
    final = png_bytes(4, 4, (1, 2, 3))
    fake.script(ROUTE, [image_response(final, text="Here you go", thought_image=png_bytes(2, 2))])

    result = await provider.generate(image_request())

    assert isinstance(result, Images)
    assert [image.data for image in result.images] == [final]


@pytest.mark.parametrize(
    "reason", ["IMAGE_SAFETY", "SAFETY", "PROHIBITED_CONTENT", "IMAGE_PROHIBITED_CONTENT"]
)
async def test_safety_finish_reason_is_content_policy(
    provider: GoogleImageProvider, fake: FakeGemini, reason: str
) -> None:
    fake.script(ROUTE, [finish_blocked(reason)])

    with pytest.raises(ContentPolicy):
        await provider.generate(image_request())


async def test_blocked_prompt_is_content_policy(
    provider: GoogleImageProvider, fake: FakeGemini
) -> None:
    fake.script(ROUTE, [prompt_blocked("PROHIBITED_CONTENT")])

    with pytest.raises(ContentPolicy):
        await provider.generate(image_request())


async def test_no_image_at_all_is_invalid_request(
    provider: GoogleImageProvider, fake: FakeGemini
) -> None:
    fake.script(
        ROUTE, [text_response("I can only describe lighthouses."), finish_blocked("NO_IMAGE")]
    )

    for _ in range(2):
        with pytest.raises(InvalidRequest):
            await provider.generate(image_request())


async def test_429_carries_retry_after_header(
    provider: GoogleImageProvider, fake: FakeGemini
) -> None:
    fake.script(ROUTE, [rate_limited(retry_after="3")])

    with pytest.raises(RateLimitedByProvider) as caught:
        await provider.generate(image_request())

    assert caught.value.retry_after_s == 3.0
    assert len(fake.requests) == 1, "the SDK must not retry on its own"


async def test_429_without_header_uses_retry_info(
    provider: GoogleImageProvider, fake: FakeGemini
) -> None:
    fake.script(ROUTE, [rate_limited(retry_after=None, retry_delay="27s")])

    with pytest.raises(RateLimitedByProvider) as caught:
        await provider.generate(image_request())

    assert caught.value.retry_after_s == 27.0


@pytest.mark.parametrize("status", [500, 503])
async def test_5xx_is_provider_down(
    provider: GoogleImageProvider, fake: FakeGemini, status: int
) -> None:
    fake.script(ROUTE, [server_error(status)])

    with pytest.raises(ProviderDown):
        await provider.generate(image_request())

    assert len(fake.requests) == 1


async def test_bad_key_is_invalid_request_without_the_key(fake: FakeGemini) -> None:
    wrong_key = "AIzaWRONGkey0123456789abcdefABCDEF"
    provider = GoogleImageProvider(wrong_key, base_url=fake.base_url, timeout_s=5)
    try:
        # Gemini's real answer to a bad key is 400 API_KEY_INVALID; a proxy may say 401.
        with pytest.raises(InvalidRequest) as as_400:
            await provider.generate(image_request())
        fake.script(ROUTE, [google_error(401, f"Key {wrong_key} is not valid", "UNAUTHENTICATED")])
        with pytest.raises(InvalidRequest) as as_401:
            await provider.generate(image_request())
    finally:
        await provider.aclose()

    for caught in (as_400, as_401):
        assert "API key" in caught.value.user_message
        assert wrong_key not in str(caught.value)


async def test_other_400_is_invalid_request(
    provider: GoogleImageProvider, fake: FakeGemini
) -> None:
    fake.script(ROUTE, [google_error(400, "Unsupported aspect ratio 7:3.", "INVALID_ARGUMENT")])

    with pytest.raises(InvalidRequest) as caught:
        await provider.generate(image_request())

    assert "Unsupported aspect ratio 7:3" in caught.value.user_message


async def test_400_safety_message_is_content_policy(
    provider: GoogleImageProvider, fake: FakeGemini
) -> None:
    fake.script(
        ROUTE,
        [
            google_error(
                400,
                "The input image was blocked by safety filters (prohibited content).",
                "INVALID_ARGUMENT",
            )
        ],
    )

    with pytest.raises(ContentPolicy):
        await provider.generate(image_request())


async def test_a_timeout_after_sending_is_outcome_unknown_not_retried(fake: FakeGemini) -> None:
    fake.script(ROUTE, [Reply(200, {}, delay_s=3.0)])
    provider = GoogleImageProvider(DEFAULT_KEY, base_url=fake.base_url, timeout_s=0.3)
    try:
        with pytest.raises(OutcomeUnknown) as caught:
            await provider.generate(image_request())
    finally:
        await provider.aclose()

    assert not caught.value.retryable and "did not answer in time" in caught.value.user_message


async def test_unreachable_server_is_transient_without_sdk_retry_sleep() -> None:
    provider = GoogleImageProvider(DEFAULT_KEY, base_url="http://127.0.0.1:9", timeout_s=2)
    try:
        with pytest.raises(TransientProviderError):
            await provider.generate(image_request())
    finally:
        await provider.aclose()


async def test_resume_is_never_used(provider: GoogleImageProvider) -> None:
    with pytest.raises(InvalidRequest):
        await provider.resume("anything", image_request())
