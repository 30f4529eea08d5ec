"""Bolt listeners, one `register_*` per kind: mentions, messages, commands, buttons, Home.

Bolt acknowledges Events API deliveries before a listener runs (the app is built
with `process_before_response=False`); commands and buttons `await ack()` first
thing. The slow part (status message, downloads, submit) happens after, in
`adapters.slack.turns.Turns.take`.

A thread reply that mentions the bot arrives twice (`app_mention` and `message`):
the mention listener takes it and the message listener skips it. In DMs there is
no `app_mention`, so the message listener takes every DM.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from adapters.slack.render import (
    ACTION_IDS,
    escape_mrkdwn,
    parse_button_value,
    parse_model_choice,
)
from adapters.slack.turns import PLATFORM, Ask, Turns, files_of, mentions, strip_mentions
from core.errors import DELETED, EaselError, Refusal
from core.models import Intent, MessageRef, ThreadRef, UserRef

log = logging.getLogger("easel.slack")

# Message subtypes a person makes; edits, deletions, joins and bots' posts are not turns.
PERSON_SUBTYPES = frozenset({None, "file_share", "thread_broadcast"})
BUTTON_INTENTS = {
    ACTION_IDS["regen"]: Intent.REGENERATE,
    ACTION_IDS["vary"]: Intent.VARIATION,
    ACTION_IDS["upscale"]: Intent.UPSCALE,
}
CREDITS_TIMEOUT_S = 2.0  # the answer rides on the ack, which Slack wants within 3 s
NOT_IN_CHANNEL = "Easel is not in this channel yet: invite it with `/invite @Easel`, then try again."
HOME_HINT = "Mention Easel in a channel, or send it a DM, to make an image. Reply in the thread to refine it."


def is_from_person(event: Mapping[str, Any], bot_user_id: str | None) -> bool:
    """A message a person wrote (not a bot's, not an edit or deletion, not Easel's own)."""
    user = event.get("user")
    return (not event.get("bot_id") and event.get("subtype") in PERSON_SUBTYPES
            and bool(user) and user != bot_user_id)


def register_mentions(bolt_app: AsyncApp, turns: Turns) -> None:
    """`@Easel draw …` in a channel starts (or, inside a session's thread, refines) a session."""

    async def on_mention(body: dict[str, Any], event: dict[str, Any], context: Any) -> None:
        channel = str(event.get("channel", ""))
        if channel.startswith("D") or not is_from_person(event, context.bot_user_id):
            return  # DMs are taken by the message listener
        team = str(body.get("team_id") or event.get("team") or "")
        await turns.take(Ask(
            thread=ThreadRef(PLATFORM, team, channel, event.get("thread_ts") or event["ts"]),
            user_id=event["user"], text=strip_mentions(event.get("text", ""),
                                                      context.bot_user_id),
            source_event=body["event_id"], platform_message_id=event["ts"],
            files=files_of(event)))

    bolt_app.event("app_mention")(on_mention)


def register_messages(bolt_app: AsyncApp, turns: Turns) -> None:
    """Replies in a session's thread refine it; every DM thread is a session."""

    async def on_message(body: dict[str, Any], event: dict[str, Any], context: Any) -> None:
        bot_user_id = context.bot_user_id
        if not is_from_person(event, bot_user_id):
            return
        is_dm = event.get("channel_type") == "im"
        thread_ts = event.get("thread_ts")
        text = str(event.get("text") or "")
        if not is_dm and (not thread_ts or mentions(text, bot_user_id)):
            return  # top-level channel chatter, or a mention the mention listener takes
        team = str(body.get("team_id") or event.get("team") or "")
        thread = ThreadRef(PLATFORM, team, str(event["channel"]), thread_ts or event["ts"])
        if not is_dm and not await turns.easel.is_session(thread):
            return
        await turns.take(Ask(
            thread=thread, user_id=event["user"], text=strip_mentions(text, bot_user_id),
            source_event=body["event_id"], platform_message_id=event["ts"],
            files=files_of(event)))

    bolt_app.event("message")(on_message)


def register_commands(bolt_app: AsyncApp, turns: Turns) -> None:
    """`/imagine TEXT` opens a session under its status message; `/credits` answers privately."""

    async def on_imagine(ack: Any, command: dict[str, Any], respond: Any) -> None:
        await ack()
        ask = Ask(
            thread=ThreadRef(PLATFORM, command["team_id"], command["channel_id"], ""),
            user_id=command["user_id"], user_name=command.get("user_name", ""),
            text=strip_mentions(command.get("text", ""), None),
            source_event=f"command:{command['trigger_id']}")
        try:
            await turns.take(ask)
        except SlackApiError as exc:
            log.warning("/imagine could not post in %s: %s", command["channel_id"],
                        exc.response.get("error"))
            await respond(text=NOT_IN_CHANNEL if exc.response.get("error") == "not_in_channel"
                          else EaselError().user_message, response_type="ephemeral")

    async def on_credits(ack: Any, command: dict[str, Any]) -> None:
        user = UserRef(PLATFORM, command["team_id"], command["user_id"],
                       command.get("user_name", ""))
        try:
            view = await asyncio.wait_for(turns.easel.credits(user), CREDITS_TIMEOUT_S)
            text = view.as_text()
        except Exception:  # the ack must still go out in time, with a reason
            log.exception("/credits failed")
            text = EaselError().user_message
        await ack(text=text, response_type="ephemeral")

    bolt_app.command("/imagine")(on_imagine)
    bolt_app.command("/credits")(on_credits)


def register_actions(bolt_app: AsyncApp, turns: Turns) -> None:
    """Regenerate / Variations / Upscale buttons and the other-model menu under an image."""

    async def on_button(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        try:
            generation_id = parse_button_value(str(action.get("value", "")))
        except ValueError:
            log.warning("ignoring %s with value %r", action.get("action_id"), action.get("value"))
            return
        label = str((action.get("text") or {}).get("text") or "")
        await turns.take(_click(body, action, BUTTON_INTENTS[action["action_id"]],
                                generation_id, label))

    async def on_model(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        option = action.get("selected_option") or {}
        try:
            generation_id, model = parse_model_choice(str(option.get("value", "")))
        except ValueError:
            log.warning("ignoring a model choice with value %r", option.get("value"))
            return
        label = str((option.get("text") or {}).get("text") or model)
        await turns.take(_click(body, action, Intent.REGENERATE, generation_id, label, model))

    async def on_continue(ack: Any, body: dict[str, Any], action: dict[str, Any],
                          respond: Any) -> None:
        await ack()
        try:
            generation_id = parse_button_value(str(action.get("value", "")))
        except ValueError:
            return
        ask = _click(body, action, Intent.EDIT, generation_id, "")
        user = await turns.user(ask.thread.workspace, ask.user_id, ask.user_name)
        try:
            model = await turns.easel.continue_with(ask.thread, user, generation_id)
            text = (f"Continuing with {model.display_name}: your next message in this thread "
                    "refines this image.")
        except Refusal as error:
            text = error.user_message
        await respond(text=text, response_type="ephemeral", replace_original=False)

    async def on_delete(ack: Any, body: dict[str, Any], action: dict[str, Any],
                        respond: Any) -> None:
        await ack()
        try:
            generation_id = parse_button_value(str(action.get("value", "")))
        except ValueError:
            return
        ask = _click(body, action, Intent.EDIT, generation_id, "")
        user = await turns.user(ask.thread.workspace, ask.user_id, ask.user_name)
        clicked = (body.get("container") or {}).get("message_ts")
        try:  # the image, and the message its buttons were on
            await turns.easel.delete_image(
                ask.thread, user, generation_id,
                is_admin=bool({ask.user_id, f"slack:{ask.user_id}"} & turns.admins),
                also=MessageRef(ask.thread.channel, str(clicked), ask.thread.thread)
                if clicked else None)
            text = DELETED
        except Refusal as error:
            text = error.user_message
        await respond(text=text, response_type="ephemeral", replace_original=False)

    for action_id in BUTTON_INTENTS:
        bolt_app.action(action_id)(on_button)
    bolt_app.action(ACTION_IDS["delete"])(on_delete)
    bolt_app.action(ACTION_IDS["model"])(on_model)
    bolt_app.action(ACTION_IDS["continue"])(on_continue)


def _click(body: dict[str, Any], action: dict[str, Any], intent: Intent, generation_id: int,
           label: str, model: str | None = None) -> Ask:
    """The Ask of one click, charged to whoever clicked, answered in the image's thread."""
    container = body.get("container") or {}
    message = body.get("message") or {}
    channel = str(container.get("channel_id") or (body.get("channel") or {}).get("id") or "")
    thread_ts = (container.get("thread_ts") or message.get("thread_ts")
                 or container.get("message_ts") or message.get("ts"))
    clicker = body["user"]
    team = str((body.get("team") or {}).get("id") or clicker.get("team_id") or "")
    return Ask(
        thread=ThreadRef(PLATFORM, team, channel, str(thread_ts)), user_id=clicker["id"],
        user_name=str(clicker.get("name") or clicker.get("username") or ""), text="",
        label=label, source_event=f"action:{action['action_ts']}:{clicker['id']}",
        action=intent, target_generation_id=generation_id, model=model)


def register_home(bolt_app: AsyncApp, turns: Turns) -> None:
    """The app's Home tab shows the person's credits."""

    async def on_home_opened(body: dict[str, Any], event: dict[str, Any]) -> None:
        if event.get("tab", "home") != "home":
            return
        user = await turns.user(str(body.get("team_id") or ""), event["user"])
        credits = await turns.easel.credits(user)
        defaults = await turns.easel.settings(user)
        await turns.messenger.client.views_publish(user_id=event["user"], view={
            "type": "home",
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "Easel"}},
                {"type": "section",
                 "text": {"type": "mrkdwn", "text": escape_mrkdwn(credits.as_text())}},
                {"type": "section",
                 "text": {"type": "mrkdwn", "text": escape_mrkdwn(defaults.as_text())}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": HOME_HINT}]},
            ]})

    bolt_app.event("app_home_opened")(on_home_opened)


def register_all(bolt_app: AsyncApp, turns: Turns) -> None:
    """Every listener Easel has."""
    register_mentions(bolt_app, turns)
    register_messages(bolt_app, turns)
    register_commands(bolt_app, turns)
    register_actions(bolt_app, turns)
    register_home(bolt_app, turns)
