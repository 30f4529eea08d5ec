"""INTERACTION_CREATE payloads as Discord builds them, for FakeDiscord (a mixin).

Slash commands (type 2, or 4 for autocomplete), component clicks (type 3) and modal submits
(type 5). Option types come from the command the bot synced when there is one, so a test writes
`options={"prompt": "a fox", "image": attachment}` and the payload carries the right types and
`resolved` data.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from tests.fakes.discord_models import (
    EVERYONE_PERMISSIONS,
    FakeAttachment,
    FakeChannel,
    FakeMessage,
    FakeUser,
    SentInteraction,
)

if TYPE_CHECKING:
    from tests.fakes.discord_gateway import Gateway
    from tests.fakes.discord_models import FakeGuild, Snowflakes

# Application command option types.
STRING, INTEGER, BOOLEAN, USER, CHANNEL, NUMBER, ATTACHMENT = 3, 4, 5, 6, 7, 10, 11
_BUTTON, _STRING_SELECT = 2, 3


class InteractionBuilder:
    """Mixed into FakeDiscord: builds and dispatches interactions."""

    if TYPE_CHECKING:
        ids: Snowflakes
        app_id: int
        user: FakeUser
        channel: FakeChannel
        bot_permissions: int
        channels: dict[int, FakeChannel]
        guilds: dict[int, FakeGuild]
        commands: dict[int | None, list[dict[str, Any]]]
        interactions: dict[int, SentInteraction]
        gateway: Gateway

        def member_payload(self, guild_id: int, user: FakeUser) -> dict[str, Any]: ...
        def _filesize_limit(self, channel: FakeChannel) -> int: ...
        def _notify(self) -> None: ...

    async def send_interaction(self, name: str, options: dict[str, Any] | list[Any] | None = None,
                               *, user: FakeUser | None = None, channel_id: int | None = None,
                               focused: str | None = None) -> SentInteraction:
        """A person runs slash command `name` (type 2; type 4 autocomplete if `focused`).

        `options` maps option names to values: str, int, float, bool, FakeAttachment (made with
        `add_attachment`, served by the CDN), FakeUser or FakeChannel; a list is sent as is.
        """
        channel = self.channels[channel_id or self.channel.id]
        command = self._find_command(name, channel.guild_id)
        resolved: dict[str, dict[str, Any]] = {}
        if isinstance(options, list):
            built = options
        else:
            defs = {o["name"]: o for o in (command or {}).get("options", [])}
            built = [self._option(k, v, defs.get(k), resolved, channel.guild_id, k == focused)
                     for k, v in (options or {}).items()]
        data: dict[str, Any] = {"id": (command or {}).get("id") or str(self.ids.next()),
                                "name": name, "type": 1, "options": built}
        if resolved:
            data["resolved"] = resolved
        if command and command.get("guild_id"):
            data["guild_id"] = command["guild_id"]
        return await self._dispatch_interaction(4 if focused else 2, data, user, channel)

    async def send_component(self, message: FakeMessage, custom_id: str, *,
                             values: list[str] | None = None,
                             user: FakeUser | None = None) -> SentInteraction:
        """A person clicks a button or picks in a select of `message` (type 3)."""
        component = _find_component(message.components, custom_id)
        if component is None:
            raise ValueError(f"message {message.id} has no component {custom_id!r}")
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component["type"]}
        if component["type"] != _BUTTON:
            data["values"] = list(values or [])
        channel = self.channels[message.channel_id]
        return await self._dispatch_interaction(3, data, user, channel, message)

    async def send_modal_submit(self, custom_id: str, fields: dict[str, str], *,
                                user: FakeUser | None = None, channel_id: int | None = None,
                                message: FakeMessage | None = None) -> SentInteraction:
        """A person submits a modal (type 5) with text inputs `fields` (custom_id -> value)."""
        rows = [{"type": 1, "components": [{"type": 4, "custom_id": k, "value": v}]}
                for k, v in fields.items()]
        channel = self.channels[channel_id or (message.channel_id if message else self.channel.id)]
        return await self._dispatch_interaction(
            5, {"custom_id": custom_id, "components": rows}, user, channel, message)

    def _find_command(self, name: str, guild_id: int | None) -> dict[str, Any] | None:
        for scope in (guild_id, None):
            for command in self.commands.get(scope, []):
                if command["name"] == name:
                    return command
        return None

    def _option(self, name: str, value: Any, definition: dict[str, Any] | None,
                resolved: dict[str, dict[str, Any]], guild_id: int | None,
                is_focused: bool) -> dict[str, Any]:
        kind = (definition or {}).get("type")
        if isinstance(value, FakeAttachment):
            resolved.setdefault("attachments", {})[str(value.id)] = value.payload()
            kind, value = ATTACHMENT, str(value.id)
        elif isinstance(value, FakeUser):
            resolved.setdefault("users", {})[str(value.id)] = value.payload()
            if guild_id is not None:
                member = self.member_payload(guild_id, value)
                member.pop("user")
                resolved.setdefault("members", {})[str(value.id)] = member
            kind, value = USER, str(value.id)
        elif isinstance(value, FakeChannel):
            resolved.setdefault("channels", {})[str(value.id)] = {
                **value.payload(), "permissions": str(EVERYONE_PERMISSIONS)}
            kind, value = CHANNEL, str(value.id)
        elif kind is None:
            kind = (BOOLEAN if isinstance(value, bool) else INTEGER if isinstance(value, int)
                    else NUMBER if isinstance(value, float) else STRING)
        option = {"name": name, "type": kind, "value": value}
        if is_focused:
            option["focused"] = True
        return option

    async def _dispatch_interaction(self, kind: int, data: dict[str, Any],
                                    user: FakeUser | None, channel: FakeChannel,
                                    message: FakeMessage | None = None) -> SentInteraction:
        user = user or self.user
        interaction_id = self.ids.next()
        token = f"fake-interaction-token-{interaction_id}"
        payload: dict[str, Any] = {
            "id": str(interaction_id), "application_id": str(self.app_id), "type": kind,
            "data": data, "token": token, "version": 1, "channel_id": str(channel.id),
            "channel": channel.payload(), "app_permissions": str(self.bot_permissions),
            "locale": "en-US", "entitlements": [],
            "attachment_size_limit": self._filesize_limit(channel),
        }
        if channel.guild_id is not None:
            member = self.member_payload(channel.guild_id, user)
            payload.update({
                "guild_id": str(channel.guild_id), "guild_locale": "en-US", "context": 0,
                "guild": {"id": str(channel.guild_id), "locale": "en-US", "features": []},
                "member": {**member, "permissions": str(EVERYONE_PERMISSIONS)},
                "authorizing_integration_owners": {"0": str(channel.guild_id)}})
        else:
            payload.update({"user": user.payload(), "context": 1,
                            "authorizing_integration_owners": {"1": str(user.id)}})
        if message is not None:
            payload["message"] = message.payload(application_id=self.app_id)
        sent = SentInteraction(interaction_id, token, kind, payload,
                               asyncio.get_running_loop().time(), channel.id,
                               message.id if message else None)
        self.interactions[interaction_id] = sent
        await self.gateway.dispatch("INTERACTION_CREATE", payload)
        self._notify()
        return sent


def _find_component(items: list[dict[str, Any]], custom_id: str) -> dict[str, Any] | None:
    for item in items:
        if item.get("custom_id") == custom_id:
            return item
        found = _find_component(item.get("components", []), custom_id)
        if found is not None:
            return found
    return None
