"""Log lines carry the generation and session they are about, and never a secret."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import asyncpg

from bot.logs import configure_logging
from bot.settings import Settings
from core.errors import RateLimitedByProvider
from core.service import Easel
from core.worker import Worker
from tests.corekit import ScriptedProvider, make_runtime, request


async def test_json_log_lines_carry_generation_and_session_ids(
    pool: asyncpg.Pool, images_dir: Path
) -> None:
    out = io.StringIO()
    settings = Settings.model_validate({"EASEL_LOG_FORMAT": "json",
                                        "OPENAI_API_KEY": "sk-very-secret-key-123"})
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging(settings, out)
    try:
        provider = ScriptedProvider(script=[RateLimitedByProvider(
            "rate limited for key sk-very-secret-key-123", retry_after_s=0.01)])
        rt = make_runtime(pool, images_dir, providers={"sketch": provider})
        submitted = await Easel(rt).submit(request("a fox"))
        logging.getLogger("easel.test").warning("token sk-very-secret-key-123 in a message")
        await Worker(rt).run_until_empty()
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines and all("sk-very-secret-key-123" not in json.dumps(line) for line in lines)
    about_job = [line for line in lines if line.get("generation_id") == submitted.generation_id]
    assert about_job, lines
    assert all(line["session_id"] == submitted.session_id for line in about_job)
