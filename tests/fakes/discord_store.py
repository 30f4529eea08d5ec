"""How the fake Discord stores messages: create, edit, delete, interaction answers.

A mixin of FakeDiscord (tests/fakes/discord_server.py) used by the REST handlers. Every
accepted change is recorded in the message's history and dispatched on the gateway
(MESSAGE_CREATE / MESSAGE_UPDATE / MESSAGE_DELETE; ephemeral messages are not dispatched).
"""

from __future__ import annotations

import asyncio
import re
import urllib.parse
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from tests.fakes.discord_limits import DiscordError, NewAttachment, compose, validate
from tests.fakes.discord_models import (
    EPHEMERAL,
    FILESIZE_LIMIT_BY_TIER,
    LOADING,
    FakeAttachment,
    FakeChannel,
    FakeMessage,
    FakeUser,
    InteractionCallback,
    SentInteraction,
    Snowflakes,
    guess_content_type,
)
from tests.fakes.discord_payloads import PayloadBuilder

if TYPE_CHECKING:
    from tests.fakes.discord_gateway import Gateway

_MENTION = re.compile(r"<@!?(\d+)>")


def answer_flags(data: dict[str, Any], *, deferred: bool) -> int:
    """Flags of the message created by an interaction callback (ephemeral, loading)."""
    flags = int(data.get("flags") or 0) & EPHEMERAL
    return flags | LOADING if deferred else flags


class MessageStore(PayloadBuilder):
    """Message state changes shared by the REST handlers and the person-side helpers."""

    if TYPE_CHECKING:
        ids: Snowflakes
        base_url: str
        messages: dict[int, FakeMessage]
        attachments: dict[int, FakeAttachment]
        gateway: Gateway

        def _notify(self) -> None: ...

    def _filesize_limit(self, channel: FakeChannel) -> int:
        guild = self.guilds.get(channel.guild_id or 0)
        return guild.filesize_limit if guild else FILESIZE_LIMIT_BY_TIER[0]

    def _make_attachment(self, channel_id: int, filename: str, data: bytes,
                         description: str | None, content_type: str | None = None
                         ) -> FakeAttachment:
        if not self.base_url:
            raise RuntimeError("FakeDiscord.start() first: attachment URLs need the port")
        attachment_id = self.ids.next()
        quoted = urllib.parse.quote(filename)
        url = (f"{self.base_url}/attachments/{channel_id}/{attachment_id}/{quoted}"
               f"?ex={attachment_id % 2**32:08x}&is={attachment_id % 2**31:08x}&hm=fake")
        return FakeAttachment(attachment_id, filename, data,
                              content_type or guess_content_type(filename), url, description)

    def _attachment_maker(self, channel: FakeChannel) -> NewAttachment:
        return lambda name, data, desc: self._make_attachment(channel.id, name, data, desc)

    def _mentions(self, content: str, extra: Iterable[FakeUser] = ()) -> list[FakeUser]:
        found = [self.users[int(i)] for i in _MENTION.findall(content) if int(i) in self.users]
        unique = {u.id: u for u in [*found, *extra]}
        return list(unique.values())

    async def _create_message(self, channel: FakeChannel, payload: dict[str, Any],
                              uploads: dict[int, tuple[str, bytes]], *, via: str,
                              interaction: SentInteraction | None = None) -> FakeMessage:
        draft = compose(None, payload, uploads, self._attachment_maker(channel))
        validate(draft, filesize_limit=self._filesize_limit(channel))
        message = FakeMessage(self.ids.next(), channel.id, channel.guild_id, self.bot_user,
                              draft.content, draft.embeds, draft.components, draft.attachments,
                              draft.flags)
        message.mentions = self._mentions(draft.content)
        if payload.get("message_reference"):
            message.message_reference = payload["message_reference"]
        if interaction is not None:
            message.webhook_id = self.app_id
            message.interaction_metadata = {
                "id": str(interaction.id), "type": interaction.type,
                "user": self._interaction_user(interaction).payload(),
                "authorizing_integration_owners": interaction.payload.get(
                    "authorizing_integration_owners", {})}
        for made in draft.new_uploads:
            self.attachments[made.id] = made
        await self._store(message, channel, via=via)
        return message

    async def _store(self, message: FakeMessage, channel: FakeChannel, *, via: str) -> None:
        if channel.is_thread and channel.archived and not channel.locked:
            channel.archived = False  # sending in an archived thread unarchives it
        message.record(via)
        self.messages[message.id] = message
        channel.last_message_id = message.id
        channel.message_count += 1 if channel.is_thread else 0
        if not message.ephemeral:
            await self.gateway.dispatch("MESSAGE_CREATE", self.gateway_message(message),
                                        message=message)
        self._notify()

    async def _edit_message(self, message: FakeMessage, payload: dict[str, Any],
                            uploads: dict[int, tuple[str, bytes]], *, via: str,
                            clear_loading: bool = False) -> None:
        channel = self.channels[message.channel_id]
        draft = compose(message, payload, uploads, self._attachment_maker(channel))
        if clear_loading:
            draft.flags &= ~LOADING
        validate(draft, filesize_limit=self._filesize_limit(channel))
        for made in draft.new_uploads:
            self.attachments[made.id] = made
        message.content, message.embeds, message.components = (
            draft.content, draft.embeds, draft.components)
        message.attachments, message.flags, message.edited = draft.attachments, draft.flags, True
        message.mentions = self._mentions(draft.content)
        message.record(via)
        if not message.ephemeral:
            await self.gateway.dispatch("MESSAGE_UPDATE", self.gateway_message(message),
                                        message=message)
        self._notify()

    async def _delete_message(self, message: FakeMessage) -> None:
        message.deleted = True
        data = {"id": str(message.id), "channel_id": str(message.channel_id)}
        if message.guild_id is not None:
            data["guild_id"] = str(message.guild_id)
        if not message.ephemeral:
            await self.gateway.dispatch("MESSAGE_DELETE", data)
        self._notify()

    async def _answer_interaction(self, interaction: SentInteraction, kind: int,
                                  data: dict[str, Any],
                                  uploads: dict[int, tuple[str, bytes]]) -> FakeMessage | None:
        """Apply a callback (4 message, 5 defer, 6 deferred update, 7 update, 8, 9 modal)."""
        loop = asyncio.get_running_loop()
        interaction.callbacks.append(InteractionCallback(
            interaction.id, interaction.token, kind, data or None,
            [uploads[i] for i in sorted(uploads)], loop.time() - interaction.sent_at))
        channel = self.channels[interaction.channel_id]
        message: FakeMessage | None = None
        if kind in (4, 5):
            payload = data if kind == 4 else {"flags": answer_flags(data, deferred=True)}
            if kind == 4 and int(data.get("flags") or 0) & EPHEMERAL:
                payload = {**data, "flags": EPHEMERAL}
            try:
                message = await self._create_message(channel, payload, uploads,
                                                     via="interaction", interaction=interaction)
            except DiscordError:
                interaction.callbacks.pop()  # Discord does not acknowledge a refused answer
                raise
            interaction.original_message_id = message.id
        elif kind in (6, 7) and interaction.message_id is not None:
            interaction.original_message_id = interaction.message_id
            message = self.messages[interaction.message_id]
            if kind == 7:
                await self._edit_message(message, data, uploads, via="interaction")
            else:
                message = None
        self._notify()
        return message

    def _interaction_user(self, interaction: SentInteraction) -> FakeUser:
        raw = interaction.payload.get("member", {}).get("user") or interaction.payload["user"]
        return self.users[int(raw["id"])]
