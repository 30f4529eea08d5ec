"""One person's request from Slack, taken to the core: status message, uploads, submit.

Every listener (mention, thread reply, DM, /imagine, a button) ends here, after it
has acknowledged Slack. Each request gets a visible answer in its thread: the
status message the worker edits until the image arrives, or the reason it was
refused. A repeated platform event makes nothing new.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from slack_sdk.errors import SlackApiError

from adapters.slack.downloads import SlackFiles
from adapters.slack.messenger import SlackMessenger
from adapters.slack.render import escape_mrkdwn
from core.errors import InternalError, Refusal
from core.models import Intent, MessageRef, Stage, StatusView, ThreadRef, UserRef
from core.options import parse_inline_options
from core.service import Easel
from core.status import received_view, refusal_view, with_asker
from core.submit import SubmitRequest

log = logging.getLogger("easel.slack")

PLATFORM = "slack"
ALREADY_WORKING = "Already working on this one (see the message above)."
MAX_CACHED_NAMES = 10_000
_LINK = re.compile(r"<([^<>|]+)\|([^<>]+)>")
_NAMED_PERSON = re.compile(r"<@[UW][A-Z0-9]+\|([^<>]+)>")
_PERSON = re.compile(r"(<@[UW][A-Z0-9]+>)")
_SPECIAL = re.compile(r"<![^<>]*>")
SETTINGS_WORD = "settings"


@dataclass(frozen=True)
class Ask:
    """A request as Slack gave it; `thread.thread == ""` starts a thread at the status."""

    thread: ThreadRef
    user_id: str
    text: str
    source_event: str
    user_name: str = ""
    label: str | None = None  # what the received status quotes when there is no text
    platform_message_id: str | None = None
    files: tuple[Mapping[str, Any], ...] = ()
    action: Intent | None = None
    target_generation_id: int | None = None
    model: str | None = None


FLOW_WORDS = ("flow", "/flow")


def strip_mentions(text: str, bot_user_id: str | None) -> str:
    """The text without mentions of the bot, with Slack's escaping undone."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>", " ", text)
    text = _NAMED_PERSON.sub(lambda m: m.group(1), text)  # <@U…|bob> -> bob
    text = _SPECIAL.sub(" ", text)  # <!channel>, <!here>, <!subteam^S1|@team>: no pings
    text = _LINK.sub(lambda m: m.group(2), text)  # <https://x|label> -> label
    # A bare <@U…> stays for `Turns` to name; any other markup loses its brackets.
    parts = _PERSON.split(text)
    text = "".join(part if _PERSON.fullmatch(part) else
                   html.unescape(part.replace("<", "").replace(">", "")) for part in parts)
    return re.sub(r"[ \t]{2,}", " ", text).strip()


def mentions(text: str, user_id: str | None) -> bool:
    """Whether `text` mentions `user_id` (`<@U…>` or `<@U…|name>`)."""
    return bool(user_id) and re.search(rf"<@{re.escape(str(user_id))}(\|[^>]*)?>", text) is not None


class Turns:
    """Takes Asks to the core; shared by all the listeners of one Bolt app."""

    def __init__(self, easel: Easel, messenger: SlackMessenger, files: SlackFiles, *,
                 admins: frozenset[str] = frozenset()) -> None:
        self.easel = easel
        self.messenger = messenger
        self.files = files
        self.admins = admins  # EASEL_ADMINS: `U123` or `slack:U123`
        self._names: dict[str, str] = {}

    async def take(self, ask: Ask) -> None:
        """Answer one request in its thread, once per platform event."""
        if ask.text.strip().lower() in FLOW_WORDS and ask.action is None:
            await self.flow(ask)
            return
        if ask.text.strip().lower().split(" ", 1)[0] == SETTINGS_WORD and ask.action is None:
            await self.settings(ask)
            return
        ask = replace(ask, text=await self.named(ask.text))
        try:
            text, options = parse_inline_options(ask.text)
        except Refusal as error:
            if not await self._is_known(ask.source_event):
                await self._post(ask.thread, refusal_view(error))
            return
        # `--compare a,b` is one request: the core makes a generation per model, one status.
        first_event = (f"{ask.source_event}#{options.compare[0]}" if options.compare
                       else ask.source_event)
        if await self._is_known(first_event):
            return
        user = await self.user(ask.thread.workspace, ask.user_id, ask.user_name)
        request = SubmitRequest(
            thread=ask.thread, user=user, text=ask.text, source_event=ask.source_event,
            model=ask.model, action=ask.action, target_generation_id=ask.target_generation_id,
            platform_message_id=ask.platform_message_id)
        await self._submit(request, ask.files, received_view(ask.label or text))

    async def _submit(self, request: SubmitRequest, files: tuple[Mapping[str, Any], ...],
                      received: StatusView) -> ThreadRef:
        """Post the status, fetch the files, submit; returns the thread (it may start here)."""
        asker = request.user.display_name or request.user.external_id
        thread, status = await self._post(request.thread, received, asked_by=asker)
        try:
            uploads = await self.files.fetch(files)
            submitted = await self.easel.submit(replace(
                request, thread=thread, status_message=status, uploads=uploads))
        except Refusal as error:
            await self.messenger.edit_status(thread, status, refusal_view(error))
            return thread
        except Exception:  # the database or Slack failed: still tell the person
            log.exception("slack request %s could not be submitted", request.source_event)
            await self.messenger.edit_status(thread, status, refusal_view(InternalError()))
            return thread
        if submitted.duplicate:  # a retry raced the first attempt; one status is enough
            log.info("slack event %s raced its repeat; dropping the extra status",
                     request.source_event)
            await self._drop(thread, status)
        else:
            log.info("slack event %s queued generation %s", request.source_event,
                     submitted.generation_id)
        return thread

    async def flow(self, ask: Ask) -> None:
        """"flow" in a session thread: post the signed link to its prompt-flow page."""
        try:
            text = f"Prompt flow of this thread (link valid 7 days): {await self.easel.flow_link(ask.thread)}"
        except Refusal as error:
            text = error.user_message
        await self.messenger.post_text(ask.thread, text)

    async def settings(self, ask: Ask) -> None:
        """"settings [--model M --ar 16:9 --res 2K --style S]" in a thread: the person's
        defaults for new threads, answered to them alone."""
        user = await self.user(ask.thread.workspace, ask.user_id, ask.user_name)
        try:
            text = (await self.easel.settings(user, ask.text.strip()[len(SETTINGS_WORD):])).as_text()
        except Refusal as error:
            text = error.user_message
        await self.messenger.client.chat_postEphemeral(
            channel=ask.thread.channel, thread_ts=ask.thread.thread or None, user=ask.user_id,
            text=escape_mrkdwn(text))

    async def named(self, text: str) -> str:
        """`<@U…>` mentions as the people's names (looked up once), so no id reaches a prompt."""
        people = set(_PERSON.findall(text))
        for mention in people:
            user_id = mention[2:-1]
            name = self._names.get(user_id) or await self._look_up_name(user_id)
            text = text.replace(mention, name)
        return text

    async def _is_known(self, source_event: str) -> bool:
        if await self.easel.is_known_event(PLATFORM, source_event):
            log.info("slack event %s was already taken; ignoring the repeat", source_event)
            return True
        return False

    async def user(self, workspace: str, user_id: str, name: str = "") -> UserRef:
        """The person, with a display name (looked up once per process when not given)."""
        if not name:
            name = self._names.get(user_id) or await self._look_up_name(user_id)
        return UserRef(PLATFORM, workspace, user_id, name)

    async def _post(self, thread: ThreadRef, view: StatusView,
                    asked_by: str = "") -> tuple[ThreadRef, MessageRef]:
        if thread.thread:
            return thread, await self.messenger.post_status(thread, view)
        # A top-level status (from /imagine) is where the session's thread starts; seen in
        # the channel, it says who asked, on every edit.
        status = await self.messenger.post_status(
            thread, with_asker(view, asked_by) if asked_by else view)
        return replace(thread, thread=status.message_id), replace(
            status, thread=status.message_id, asked_by=asked_by)

    async def _drop(self, thread: ThreadRef, status: MessageRef) -> None:
        try:
            await self.messenger.client.chat_delete(channel=status.channel, ts=status.message_id)
        except SlackApiError as exc:
            log.warning("could not delete a duplicate status message: %s",
                        exc.response.get("error"))
            await self.messenger.edit_status(thread, status, StatusView(
                Stage.DONE, ALREADY_WORKING, is_final=True, succeeded=False))

    async def _look_up_name(self, user_id: str) -> str:
        try:
            answer = await self.messenger.client.users_info(user=user_id)
        except SlackApiError as exc:  # users:read missing: the id is enough to charge
            log.warning("users.info failed for %s: %s", user_id, exc.response.get("error"))
            return ""
        person: dict[str, Any] = answer.get("user") or {}
        profile: dict[str, Any] = person.get("profile") or {}
        name = str(profile.get("display_name") or person.get("real_name")
                   or person.get("name") or "")
        if len(self._names) >= MAX_CACHED_NAMES:
            self._names.clear()
        self._names[user_id] = name
        return name


def files_of(event: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...]:
    """The files attached to a message event."""
    files: Sequence[Mapping[str, Any]] = event.get("files") or ()
    return tuple(files)
