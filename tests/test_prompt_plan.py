"""Prompt construction made visible: the refiner's plan, per model, recorded and shown.

A compare through the real OpenAI SDK (the fake server answers with a prompt written
for whichever model the request names) records each member's plan as events and shows
each member's prompt beside its image; the offline rules record the same shape.
"""

from __future__ import annotations

import dataclasses
import html
import re
import time
from pathlib import Path

import aiohttp
import asyncpg
from aiohttp import web

from adapters.refiners.llm import OpenAIRefiner
from core.links import GrantKind, sign_link
from core.models import GeneratedImage, Images
from core.worker import Worker
from tests.corekit import ScriptedProvider, make_runtime, request
from tests.fakes import openai_server
from tests.fakes.openai_server import FakeOpenAI, chat_completion
from tests.fakes.provider import tiny_png
from tests.fakes.scripted import RecordedRequest
from tests.flowkit import SECRET, serving

PLAN_STAGES = ["plan_intent", "plan_subjects", "plan_style", "plan_constraints", "plan_prompt"]


class PerModelOpenAI(FakeOpenAI):
    """Answers the refiner with a plan whose prompt names the model it was asked to write for."""

    async def _chat(self, request: web.Request, recorded: RecordedRequest) -> web.StreamResponse:
        last = recorded.json["messages"][-1]["content"]
        found = re.search(r"image model (.+?) \((?:openai|google|replicate|sketch) ", last)
        model = found[1] if found else "no model named"
        return chat_completion({
            "intent": "new", "prompt": f"a fox by the sea, as {model} reads it",
            "aspect_ratio": None, "resolution": None, "subjects": ["a fox", "the sea"],
            "style": f"{model} house style", "constraints": ["no text"],
        }).to_response()


async def _events(pool: asyncpg.Pool, generation_id: int) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT stage, detail FROM generation_events WHERE generation_id = $1 ORDER BY id",
        generation_id)


async def test_a_compare_constructs_and_records_a_prompt_per_model_and_shows_each(
    pool: asyncpg.Pool, images_dir: Path
) -> None:
    fake = PerModelOpenAI()
    await fake.start()
    google = ScriptedProvider("google")
    google.png = tiny_png((40, 170, 70))
    sketch = ScriptedProvider(script=[Images((GeneratedImage(tiny_png((200, 40, 40))),))])
    rt = make_runtime(pool, images_dir, providers={"sketch": sketch, "google": google},
                      default_model="sketch")
    refiner = OpenAIRefiner(openai_server.DEFAULT_KEY, base_url=fake.sdk_base_url,
                            model="gpt-5.4-mini")
    rt = dataclasses.replace(rt, refiner=refiner)
    try:
        from core.service import Easel

        both = await Easel(rt).submit(request("a fox by the sea", compare=("nano2", "sketch")))
        await Worker(rt).run_until_empty()
        left, right = both.generation_ids
        names = {left: "Nano Banana 2", right: "Sketch (offline)"}
        for gid, name in names.items():
            sent = await pool.fetchval("SELECT refined_prompt FROM generations WHERE id = $1", gid)
            assert sent == f"a fox by the sea, as {name} reads it"
            events = await _events(pool, gid)
            stages = [e["stage"] for e in events]
            assert [s for s in stages if s.startswith("plan_")] == PLAN_STAGES
            assert stages.index("plan_prompt") < stages.index("refining_prompt")
            detail = {e["stage"]: e["detail"] for e in events}
            assert detail["plan_prompt"] == {"value": sent, "for": name}
            assert detail["plan_subjects"] == {"value": ["a fox", "the sea"]}
            assert detail["plan_intent"]["refiner"] == "openai-refiner"
        assert len(fake.requests_to("chat/completions")) == 2, "one construction per model"

        user = await pool.fetchval("SELECT user_id FROM generations WHERE id = $1", left)
        token = sign_link(SECRET, GrantKind.PERSON, user, int(time.time()) + 600)
        async with serving(rt) as base, aiohttp.ClientSession() as http:
            async with http.get(f"{base}/api/generations/{left}", params={"token": token}) as r:
                state = await r.json()
            assert state["plan"]["target"] == "Nano Banana 2"
            assert state["plan"]["style"] == "Nano Banana 2 house style"
            assert state["plan"]["constraints"] == ["no text"]
            async with http.get(f"{base}/studio/{token}?g={left}") as r:
                page = html.unescape(await r.text())
        flow = re.sub(r"<[^>]+>", "", page[page.index('id="flow"'):page.index('id="results"')])
        assert "How the prompt was constructed for Nano Banana 2" in flow
        assert "Planning: subjects" in flow and "a fox; the sea" in flow
        assert "Prompt constructed" in flow
        results = re.sub(r"<[^>]+>", "", page[page.index('id="results"'):])
        for name in names.values():  # each model's own prompt beside its image
            assert f"Prompt for {name}: a fox by the sea, as {name} reads it" in results
            assert f"style: {name} house style" in results
    finally:
        await refiner.aclose()
        await fake.stop()


async def test_the_offline_refiner_records_the_same_shape_with_no_keys(
    pool: asyncpg.Pool, images_dir: Path
) -> None:
    rt = make_runtime(pool, images_dir, default_model="sketch")
    from core.service import Easel

    easel = Easel(rt)
    first = await easel.submit(request("draw me a red fox in the snow 16:9"))
    await Worker(rt).run_until_empty()
    edit = await easel.submit(request("make it watercolor style and remove the snow"))
    await Worker(rt).run_until_empty()

    detail = {e["stage"]: e["detail"] for e in await _events(pool, first.generation_id)}
    assert [s for s in detail if s.startswith("plan_")] == PLAN_STAGES
    assert detail["plan_subjects"] == {"value": ["a red fox in the snow"]}
    assert detail["plan_constraints"] == {"value": ["aspect 16:9"]}
    assert detail["plan_intent"] == {"value": "new", "refiner": "rules",
                                     "reasoning": "a first message is a new picture"}
    assert detail["plan_prompt"]["for"] == "Sketch (offline)"
    edited = {e["stage"]: e["detail"] for e in await _events(pool, edit.generation_id)}
    print({k: v["value"] for k, v in edited.items() if k.startswith("plan_")})
    assert edited["plan_intent"]["value"] == "edit"
    assert edited["plan_style"] == {"value": "watercolor style"}
    assert edited["plan_constraints"] == {"value": ["without snow"]}

    token = sign_link(SECRET, GrantKind.SESSION, first.session_id, int(time.time()) + 600)
    async with serving(rt) as base, aiohttp.ClientSession() as http:
        async with http.get(f"{base}/studio/{token}?g={edit.generation_id}") as r:
            page = re.sub(r"<[^>]+>", "", html.unescape(await r.text()))
    assert "How the prompt was constructed for Sketch (offline)" in page
    assert "an instruction changes the last prompt" in page
    assert "Thinking: style" in page and "watercolor style" in page


async def test_a_button_keeps_the_parents_prompt_and_says_so(
    pool: asyncpg.Pool, images_dir: Path
) -> None:
    from core.models import Intent
    from core.service import Easel

    rt = make_runtime(pool, images_dir, default_model="sketch")
    easel = Easel(rt)
    first = await easel.submit(request("a lighthouse"))
    await Worker(rt).run_until_empty()
    again = await easel.submit(request("", action=Intent.REGENERATE,
                                       target_generation_id=first.generation_id))
    await Worker(rt).run_until_empty()

    detail = {e["stage"]: e["detail"] for e in await _events(pool, again.generation_id)}
    assert detail["plan_prompt"]["value"] == "a lighthouse"
    assert detail["plan_intent"]["reasoning"] == f"regenerate: the prompt of #{first.generation_id}, kept"
