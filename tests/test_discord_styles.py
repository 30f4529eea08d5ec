"""Styles, `--no`, /settings and mentions on the fake Discord, end to end (the real
discord.py bot logged in to FakeDiscord → core → worker → a provider fake)."""

from __future__ import annotations

from pathlib import Path

from core.ports import ImageProvider
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.provider import ScriptedProvider
from tests.test_discord_e2e import fake, running_easel  # noqa: F401 (the fake fixture)


async def test_settings_apply_to_a_new_thread_and_a_threads_model_wins(
        database_url: str, tmp_path: Path, fake: FakeDiscord) -> None:  # noqa: F811
    async with running_easel(database_url, tmp_path, fake) as rig:
        typed = await fake.send_interaction("settings", {"style": "wat"}, focused="style")
        choices = (await fake.wait_for_callback(typed)).data or {}
        assert [c["value"] for c in choices["choices"]] == ["watercolor"]

        answer = await rig.answer(await fake.send_interaction(
            "settings", {"model": "ink", "style": "watercolor", "aspect": "4:3"}))
        assert answer.ephemeral and "model: ink" in answer.content
        assert "style: watercolor" in answer.content and "aspect: 4:3" in answer.content

        await rig.answer(await rig.imagine({"prompt": "a harbour at dawn"}))
        await rig.work()
        row = await rig.app.runtime.pool.fetchrow(
            "SELECT model, params, refined_prompt FROM generations")
        assert row["model"] == "ink" and row["params"]["aspect_ratio"] == "4:3"
        assert "watercolor painting" in row["refined_prompt"]

        [thread] = fake.threads_of(fake.channel.id)
        await rig.answer(await fake.send_interaction("model", {"name": "sketch"},
                                                     channel_id=thread.id))
        await fake.send_message(thread.id, fake.user, "make it night")
        await rig.until_generations(2)
        await rig.work()
        await rig.answer(await rig.imagine({"prompt": "a lighthouse"}))  # a new thread
        await rig.until_generations(3)
        await rig.work()
        models = [r["model"] for r in await rig.app.runtime.pool.fetch(
            "SELECT model FROM generations ORDER BY id")]
        assert models == ["ink", "sketch", "ink"]


async def test_imagine_with_a_style_and_no_reaches_the_provider(
        database_url: str, tmp_path: Path, fake: FakeDiscord) -> None:  # noqa: F811
    sketch = ScriptedProvider("sketch")
    providers: dict[str, ImageProvider] = {"sketch": sketch}
    async with running_easel(database_url, tmp_path, fake, providers=providers) as rig:
        typed = await fake.send_interaction("imagine", {"prompt": "x", "style": "no"},
                                            focused="style")
        choices = (await fake.wait_for_callback(typed)).data or {}
        assert "noir" in [c["value"] for c in choices["choices"]]
        await rig.answer(await rig.imagine(
            {"prompt": "a detective", "style": "noir", "no": "hats, rain"}))
        await rig.work()
        [sent] = sketch.requests
        print("sent:", sent.prompt, "| negative:", sent.negative_prompt)
        assert sent.negative_prompt == "hats, rain" and "film noir" in sent.prompt
        [thread] = fake.threads_of(fake.channel.id)
        status = rig.status_of(thread.id)
        shown = " ".join(str(e) for e in status.embeds)
        assert "film noir" in shown  # the refined prompt on the status shows the style


async def test_a_mention_in_a_reply_becomes_the_name_in_the_prompt(
        database_url: str, tmp_path: Path, fake: FakeDiscord) -> None:  # noqa: F811
    bob = fake.add_user("bob", global_name="Bob")
    async with running_easel(database_url, tmp_path, fake) as rig:
        await rig.answer(await rig.imagine({"prompt": "a garden"}))
        await rig.work()
        [thread] = fake.threads_of(fake.channel.id)
        await fake.send_message(thread.id, fake.user, f"add <@{bob.id}> waving @everyone",
                                mentions=[bob])
        await rig.until_generations(2)
        await rig.work()
        prompt = await rig.val("SELECT user_prompt FROM generations ORDER BY id DESC LIMIT 1")
        print("user prompt:", prompt)
        assert prompt == "add Bob waving"
