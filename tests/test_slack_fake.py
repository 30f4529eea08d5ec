"""The fake Slack against the real slack_sdk and slack_bolt: wire format, uploads, 429s, signing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import Clock, SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack_payloads import slack_signature
from tests.fakes.slack_server import DEFAULT_CHANNEL, DEFAULT_USER, FakeSlack

CHANNEL = "C0IMAGES"


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    server = FakeSlack()
    await server.start()
    yield server
    await server.stop()


def web_client(fake: FakeSlack, *, token: str | None = None, retries: int = 0) -> AsyncWebClient:
    client = AsyncWebClient(token=token or fake.bot_token, base_url=fake.api_url)
    if retries:
        client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=retries))
    return client


async def test_auth_test_names_the_bot_and_checks_the_token(fake: FakeSlack) -> None:
    answer = await web_client(fake).auth_test()
    assert (answer["user_id"], answer["bot_id"], answer["team_id"]) == (
        fake.ident.bot_user_id, fake.ident.bot_id, fake.ident.team_id)
    with pytest.raises(SlackApiError) as wrong:
        await web_client(fake, token="xoxb-not-the-right-one").auth_test()
    assert wrong.value.response["error"] == "invalid_auth"
    with pytest.raises(SlackApiError) as missing:
        await AsyncWebClient(base_url=fake.api_url).auth_test()
    assert missing.value.response["error"] == "not_authed"


async def test_thread_replies_and_increasing_ts(fake: FakeSlack) -> None:
    client = web_client(fake)
    root = await client.chat_postMessage(channel=CHANNEL, text="root")
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*reply*"}}]
    reply = await client.chat_postMessage(channel=CHANNEL, thread_ts=root["ts"], text="reply",
                                          blocks=blocks)
    assert float(reply["ts"]) > float(root["ts"])
    assert reply["message"]["thread_ts"] == root["ts"]
    replies = await client.conversations_replies(channel=CHANNEL, ts=root["ts"])
    assert [m["text"] for m in replies["messages"]] == ["root", "reply"]
    assert replies["messages"][0]["reply_count"] == 1
    thread = fake.thread_messages(CHANNEL, root["ts"])
    assert [(m.text, m.blocks) for m in thread] == [("root", []), ("reply", blocks)]
    assert fake.calls("chat.postMessage")[1].args["thread_ts"] == root["ts"]


async def test_update_history_and_block_limits(fake: FakeSlack) -> None:
    client = web_client(fake)
    posted = await client.chat_postMessage(channel=CHANNEL, text="queued")
    await client.chat_update(channel=CHANNEL, ts=posted["ts"], text="generating")
    await client.chat_update(channel=CHANNEL, ts=posted["ts"], text="done")
    message = fake.message(CHANNEL, posted["ts"])
    assert message is not None and message.texts == ["queued", "generating", "done"]
    too_long = [{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}]
    with pytest.raises(SlackApiError) as refused:
        await client.chat_update(channel=CHANNEL, ts=posted["ts"], text="x", blocks=too_long)
    assert refused.value.response["error"] == "invalid_blocks"
    with pytest.raises(SlackApiError) as missing:
        await client.chat_update(channel=CHANNEL, ts="1.000000", text="x")
    assert missing.value.response["error"] == "message_not_found"
    await client.chat_delete(channel=CHANNEL, ts=posted["ts"])
    assert fake.message(CHANNEL, posted["ts"]) is None


async def test_files_upload_v2_lands_the_bytes_in_the_thread(fake: FakeSlack) -> None:
    client = web_client(fake)
    root = await client.chat_postMessage(channel=CHANNEL, text="root")
    data = bytes(range(256)) * 40
    upload = await client.files_upload_v2(channel=CHANNEL, thread_ts=root["ts"], content=data,
                                          filename="cat.png", title="A cat",
                                          initial_comment="here it is")
    thread = fake.thread_messages(CHANNEL, root["ts"])
    assert [m.text for m in thread] == ["root", "here it is"]
    [file] = thread[1].files
    assert (file.name, file.title, file.mimetype) == ("cat.png", "A cat", "image/png")
    assert file.data == data
    share = upload["file"]["shares"]["public"][CHANNEL][0]
    assert share["ts"] == thread[1].ts and share["thread_ts"] == root["ts"]
    info = await client.files_info(file=upload["file"]["id"])
    assert info["file"]["size"] == len(data)
    async with aiohttp.ClientSession() as session:
        auth = {"Authorization": f"Bearer {fake.bot_token}"}
        async with session.get(info["file"]["url_private"], headers=auth) as resp:
            assert (resp.status, await resp.read()) == (200, data)
        async with session.get(info["file"]["url_private_download"]) as resp:
            # Like Slack: no token, no file, but a sign-in page with status 200.
            assert (resp.status, resp.content_type) == (200, "text/html")
    assert fake.downloads == [(file.id, True), (file.id, False)]


async def test_upload_url_accepts_multipart(fake: FakeSlack) -> None:
    client = web_client(fake)
    ticket = await client.files_getUploadURLExternal(filename="a.jpg", length=3)
    form = aiohttp.FormData()
    form.add_field("file", b"abc", filename="a.jpg")
    async with aiohttp.ClientSession() as session, \
            session.post(ticket["upload_url"], data=form) as resp:
        assert resp.status == 200
    await client.files_completeUploadExternal(files=[{"id": ticket["file_id"]}], channel_id=CHANNEL)
    [message] = fake.channel_messages(CHANNEL)
    assert message.files[0].data == b"abc"


async def test_rate_limit_is_waited_out_by_the_retry_handler(fake: FakeSlack) -> None:
    fake.rate_limit("chat.postMessage", times=2, retry_after_s=0)
    posted = await web_client(fake, retries=5).chat_postMessage(channel=CHANNEL, text="hi")
    assert [c.http_status for c in fake.calls("chat.postMessage")] == [429, 429, 200]
    assert [m.ts for m in fake.channel_messages(CHANNEL)] == [posted["ts"]]
    fake.rate_limit("chat.postMessage", times=1)
    with pytest.raises(SlackApiError) as limited:
        await web_client(fake).chat_postMessage(channel=CHANNEL, text="no handler")
    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["Retry-After"] == "0"


async def test_fail_next_and_not_in_channel(fake: FakeSlack) -> None:
    client = web_client(fake)
    fake.fail_next("chat.postMessage", "channel_not_found")
    with pytest.raises(SlackApiError, match="channel_not_found"):
        await client.chat_postMessage(channel=CHANNEL, text="x")
    fake.add_channel("C0PRIVATE", "secret", is_private=True, is_member=False)
    with pytest.raises(SlackApiError, match="not_in_channel"):
        await client.chat_postMessage(channel="C0PRIVATE", text="x")
    info = await client.conversations_info(channel="C0PRIVATE")
    assert info["channel"]["is_private"] and info["channel"]["name"] == "secret"
    fake.add_user("U0BOB", "bob", "Bob Builder")
    user = await client.users_info(user="U0BOB")
    assert user["user"]["profile"]["real_name"] == "Bob Builder"


async def test_ephemeral_and_home_tab(fake: FakeSlack) -> None:
    client = web_client(fake)
    await client.chat_postEphemeral(channel=CHANNEL, user=DEFAULT_USER, text="only you")
    view = {"type": "home", "blocks": [{"type": "section",
                                        "text": {"type": "mrkdwn", "text": "credits: 5"}}]}
    published = await client.views_publish(user_id=DEFAULT_USER, view=view)
    assert published["view"]["type"] == "home"
    assert [e.text for e in fake.ephemeral] == ["only you"]
    assert fake.home_views[DEFAULT_USER]["blocks"] == view["blocks"]


# --- delivery to an app ----------------------------------------------------------------


async def start_bolt(fake: FakeSlack) -> tuple[AsyncApp, web.AppRunner, str]:
    app = AsyncApp(client=web_client(fake), signing_secret=fake.signing_secret)
    runner = web.AppRunner(app.web_app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return app, runner, f"http://127.0.0.1:{port}"


async def test_signature_is_what_slack_sdk_verifies(fake: FakeSlack) -> None:
    body = json.dumps(fake.event_body(fake.app_mention("hi"))).encode()
    signature = slack_signature(fake.signing_secret, "1700000000", body)
    verifier = SignatureVerifier(fake.signing_secret, clock=_Clock(1_700_000_000))
    assert verifier.is_valid(body, "1700000000", signature)
    assert not verifier.is_valid(body, "1700000000", slack_signature("other", "1700000000", body))


class _Clock(Clock):
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


async def test_bolt_accepts_signed_events_and_rejects_bad_ones(fake: FakeSlack) -> None:
    app, runner, app_url = await start_bolt(fake)
    seen: list[tuple[dict[str, Any], str | None]] = []

    @app.event("app_mention")
    async def on_mention(body: dict[str, Any], event: dict[str, Any], context: Any) -> None:
        seen.append((event, body["event_id"]))

    @app.event("message")
    async def on_message(event: dict[str, Any]) -> None:
        seen.append((event, None))

    try:
        mention = fake.app_mention("a red fox")
        delivered = await fake.deliver_event(app_url, mention, event_id="Ev0001")
        assert delivered.status == 200 and delivered.elapsed_s < 3
        forged = await fake.deliver_event(app_url, mention, bad_signature=True)
        assert forged.status == 401
        stale = await fake.deliver_event(app_url, mention, timestamp=1_600_000_000)
        assert stale.status == 401
        upload = fake.upload_user_file("photo.jpg", b"\xff\xd8jpeg")
        reply = fake.message_event("make it blue", thread_ts=mention["ts"], files=[upload])
        retried = await fake.deliver_event(app_url, reply, retry_num=1, retry_reason="http_timeout")
        assert retried.status == 200
        own = await web_client(fake).chat_postMessage(channel=DEFAULT_CHANNEL, text="status",
                                                      thread_ts=mention["ts"])
        own_message = fake.message(DEFAULT_CHANNEL, own["ts"])
        assert own_message is not None
        own_event = fake.event_for(own_message)
        assert own_event["bot_id"] == fake.ident.bot_id
        assert (await fake.deliver_event(app_url, own_event)).status == 200
        await _until(lambda: len(seen) == 2)
        await asyncio.sleep(0.1)
        assert len(seen) == 2  # Bolt drops the bot's own message
        assert seen[0] == (mention, "Ev0001")
        assert seen[0][0]["text"].startswith(f"<@{fake.ident.bot_user_id}>")
        event = seen[1][0]
        assert event["thread_ts"] == mention["ts"] != event["ts"]
        assert event["subtype"] == "file_share"
        assert event["files"][0]["url_private"].startswith(fake.root_url)
        assert [m.text for m in fake.thread_messages(DEFAULT_CHANNEL, mention["ts"])] == [
            mention["text"], "make it blue", "status"]
    finally:
        await runner.cleanup()


async def test_bolt_commands_actions_and_response_url(fake: FakeSlack) -> None:
    app, runner, app_url = await start_bolt(fake)
    clicks: list[dict[str, Any]] = []

    @app.command("/imagine")
    async def on_imagine(ack: Any, command: dict[str, Any], respond: Any) -> None:
        await ack()
        await respond(f"drawing {command['text']}")

    @app.action("easel_regen")
    @app.action("easel_model")
    async def on_click(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        clicks.append({"action": action, "container": body["container"]})

    try:
        command = await fake.deliver_command(app_url, "/imagine", "a boat", user="U0BOB")
        assert command.status == 200
        await _until(lambda: len(fake.ephemeral) == 1)
        assert (fake.ephemeral[0].user, fake.ephemeral[0].text) == ("U0BOB", "drawing a boat")

        client = web_client(fake)
        root = await client.chat_postMessage(channel=CHANNEL, text="root")
        select = {"type": "static_select", "action_id": "easel_model",
                  "placeholder": {"type": "plain_text", "text": "Model"},
                  "options": [{"text": {"type": "plain_text", "text": "Sketch"},
                               "value": "7:sketch"}]}
        button = {"type": "button", "action_id": "easel_regen", "value": "7",
                  "text": {"type": "plain_text", "text": "Again"}}
        posted = await client.chat_postMessage(
            channel=CHANNEL, thread_ts=root["ts"], text="options",
            blocks=[{"type": "actions", "block_id": "b1", "elements": [button, select]}])
        for action_id, value in (("easel_regen", "7"), ("easel_model", "7:sketch")):
            clicked = await fake.deliver_action(app_url, action_id, value, "U0BOB", CHANNEL,
                                                posted["ts"])
            assert clicked.status == 200
        await _until(lambda: len(clicks) == 2)
        assert clicks[0]["action"]["value"] == "7" and clicks[0]["action"]["block_id"] == "b1"
        assert clicks[1]["action"]["selected_option"]["value"] == "7:sketch"
        assert clicks[0]["container"]["thread_ts"] == root["ts"]
    finally:
        await runner.cleanup()


async def test_socket_mode_delivers_envelopes_and_reads_acks(fake: FakeSlack) -> None:
    app = AsyncApp(client=web_client(fake))
    mentions: list[dict[str, Any]] = []

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any]) -> None:
        mentions.append(event)

    @app.command("/imagine")
    async def on_imagine(ack: Any) -> None:
        await ack("on it")

    handler = AsyncSocketModeHandler(app, fake.app_token)
    await handler.connect_async()  # type: ignore[no-untyped-call]
    try:
        event = fake.app_mention("over the socket")
        ack = await fake.socket_event(event, retry_attempt=1, retry_reason="timeout")
        assert ack.envelope_id == fake.socket.envelopes[-1]["envelope_id"]
        command_ack = await fake.socket_command("/imagine", "a tree")
        assert command_ack.payload == {"text": "on it"}
        await _until(lambda: len(mentions) == 1)
        assert mentions[0]["ts"] == event["ts"]
        assert fake.calls("apps.connections.open")[0].ok
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]


async def _until(condition: Any, timeout_s: float = 3.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 - polls state the fake and Bolt change
            await asyncio.sleep(0.01)
