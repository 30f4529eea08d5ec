"""`easel models --check` and the check every worker runs at start, against fake model
endpoints (OpenAI GET /v1/models/{id}, Gemini GET models/{id}, Replicate GET
/v1/models/{owner}/{name}) through the real SDKs; one id is missing from the fake."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from bot.app import bootstrap, check_catalog_at_start
from bot.settings import load_settings
from tests.fakes import gemini_server, openai_server, replicate_server
from tests.fakes.gemini_server import FakeGemini
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.replicate_server import FakeReplicate

GONE = "gpt-image-2.6-sunburst"  # the account's models endpoint no longer lists it


@pytest_asyncio.fixture
async def fakes() -> AsyncIterator[tuple[FakeOpenAI, FakeGemini, FakeReplicate]]:
    servers = (FakeOpenAI(), FakeGemini(), FakeReplicate())
    servers[0].models.discard(GONE)
    for server in servers:
        await server.start()
    yield servers
    for server in servers:
        await server.stop()


def _env(fakes: tuple[FakeOpenAI, FakeGemini, FakeReplicate], tmp_path: Path) -> dict[str, str]:
    openai_fake, gemini_fake, replicate_fake = fakes
    return {
        "OPENAI_API_KEY": openai_server.DEFAULT_KEY, "OPENAI_BASE_URL": openai_fake.sdk_base_url,
        "GEMINI_API_KEY": gemini_server.DEFAULT_KEY, "GOOGLE_GEMINI_BASE_URL": gemini_fake.base_url,
        "REPLICATE_API_TOKEN": replicate_server.DEFAULT_TOKEN,
        "REPLICATE_BASE_URL": replicate_fake.base_url, "EASEL_DATA_DIR": str(tmp_path),
    }


async def test_models_check_names_the_missing_id_and_the_retired_one(
    fakes: tuple[FakeOpenAI, FakeGemini, FakeReplicate], tmp_path: Path
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "models", "--check",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **_env(fakes, tmp_path)},
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    text = out.decode()
    print(text)

    assert process.returncode == 1, err.decode()
    missing = [line for line in text.splitlines() if line.strip().startswith("missing")]
    assert missing == [f"  missing   sunburst26 ({GONE}): openai does not serve this id any more"]
    assert "retired   nano (gemini-2.5-flash-image): retired on 2026-10-02" in text
    assert "nano        google     retired 2026-10-02" in text
    openai_fake, gemini_fake, replicate_fake = fakes
    asked = {r.match["model"] for r in openai_fake.requests_to("models.retrieve")}
    assert {"gpt-image-2", GONE, "gpt-5.4-mini"} <= asked
    assert {r.match["model"] for r in gemini_fake.requests_to("models.get")} == {
        "gemini-3.1-flash-image", "gemini-3-pro-image", "gemini-3.5-flash"}
    assert len(replicate_fake.requests_to("models.get")) == 1
    assert openai_server.DEFAULT_KEY not in text + err.decode()


async def test_a_worker_starting_warns_and_the_default_skips_the_missing_model(
    fakes: tuple[FakeOpenAI, FakeGemini, FakeReplicate], tmp_path: Path, database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    env = _env(fakes, tmp_path)
    settings = load_settings(
        database_url=database_url, openai_api_key=env["OPENAI_API_KEY"],
        openai_base_url=env["OPENAI_BASE_URL"], data_dir=tmp_path,
    )
    async with bootstrap(settings) as app:
        assert app.runtime.config.default_model == "sunburst26"  # the best, before the check
        await check_catalog_at_start(app)
        default = app.runtime.config.default_model

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    print("\n".join(warnings))
    assert f"model catalog: sunburst26 ({GONE}): openai does not serve this id any more" in warnings
    assert default == "gpt", "the default skips the missing model"
