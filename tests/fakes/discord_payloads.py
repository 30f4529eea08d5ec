"""JSON payloads of the fake Discord's world (guilds, members, application, gateway messages).

A mixin of FakeDiscord (tests/fakes/discord_server.py); the shapes are Discord API v10's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.fakes.discord_models import (
    EVERYONE_PERMISSIONS,
    FakeChannel,
    FakeGuild,
    FakeMessage,
    FakeUser,
    iso_time,
)


class PayloadBuilder:
    """Builds the JSON Discord sends about the fake's world."""

    if TYPE_CHECKING:
        app_id: int
        bot_user: FakeUser
        user: FakeUser
        users: dict[int, FakeUser]
        guilds: dict[int, FakeGuild]
        channels: dict[int, FakeChannel]
        bot_permissions: int
        application_flags: int

    def gateway_message(self, message: FakeMessage) -> dict[str, Any]:
        """A message as MESSAGE_CREATE / MESSAGE_UPDATE carry it (guild_id and member added)."""
        data = message.payload(application_id=self.app_id)
        if message.guild_id is not None:
            data["guild_id"] = str(message.guild_id)
            if message.webhook_id is None:
                member = self.member_payload(message.guild_id, message.author)
                member.pop("user")
                data["member"] = member
        return data

    def application_payload(self) -> dict[str, Any]:
        return {
            "id": str(self.app_id), "name": self.bot_user.username, "icon": None,
            "description": "Easel test application", "summary": "", "type": None,
            "bot_public": True, "bot_require_code_grant": False, "verify_key": "00" * 32,
            "owner": self.user.payload(), "team": None, "flags": self.application_flags,
            "bot": self.bot_user.payload(), "redirect_uris": [], "tags": [],
            "interactions_endpoint_url": None, "approximate_guild_count": len(self.guilds),
            "integration_types_config": {"0": {}},
        }

    def member_payload(self, guild_id: int, user: FakeUser) -> dict[str, Any]:
        guild = self.guilds[guild_id]
        roles = [str(guild.bot_role_id)] if user.id == self.bot_user.id else []
        return {"user": user.payload(), "roles": roles, "joined_at": iso_time(guild.id),
                "deaf": False, "mute": False, "flags": 0, "pending": False, "nick": None,
                "avatar": None, "banner": None, "premium_since": None,
                "communication_disabled_until": None}

    def member_payloads(self, guild_id: int) -> list[dict[str, Any]]:
        guild = self.guilds[guild_id]
        return [self.member_payload(guild_id, self.users[u]) for u in guild.member_ids]

    def guild_payload(self, guild_id: int) -> dict[str, Any]:
        """The guild object (GET /guilds/{id}); premium_tier decides the upload limit."""
        guild = self.guilds[guild_id]

        def role(role_id: int, name: str, permissions: int, managed: bool) -> dict[str, Any]:
            made = {"id": str(role_id), "name": name, "color": 0, "colors": {
                "primary_color": 0, "secondary_color": None, "tertiary_color": None},
                "hoist": False, "icon": None, "unicode_emoji": None, "position": int(managed),
                "permissions": str(permissions), "managed": managed, "mentionable": False,
                "flags": 0}
            if managed:
                made["tags"] = {"bot_id": str(self.bot_user.id)}
            return made

        return {
            "id": str(guild.id), "name": guild.name, "icon": None, "splash": None,
            "discovery_splash": None, "banner": None, "description": None,
            "owner_id": str(guild.owner_id), "afk_channel_id": None, "afk_timeout": 300,
            "verification_level": 0, "default_message_notifications": 0,
            "explicit_content_filter": 0, "features": [], "mfa_level": 0, "nsfw_level": 0,
            "roles": [role(guild.id, "@everyone", EVERYONE_PERMISSIONS, False),
                      role(guild.bot_role_id, self.bot_user.username, self.bot_permissions,
                           True)],
            "emojis": [], "stickers": [], "application_id": None, "system_channel_id": None,
            "system_channel_flags": 0, "rules_channel_id": None, "vanity_url_code": None,
            "premium_tier": guild.premium_tier, "premium_subscription_count": 0,
            "preferred_locale": "en-US", "public_updates_channel_id": None,
            "max_members": 500_000, "premium_progress_bar_enabled": False,
            "safety_alerts_channel_id": None, "max_video_channel_users": 25,
            "approximate_member_count": len(guild.member_ids),
        }

    def guild_create_payload(self, guild_id: int, *, with_members: bool) -> dict[str, Any]:
        """GUILD_CREATE: the guild plus channels, active threads and members."""
        guild = self.guilds[guild_id]
        channels = [self.channels[c] for c in guild.channel_ids]
        bot_member = self.member_payload(guild_id, self.bot_user)
        return {
            **self.guild_payload(guild_id), "joined_at": iso_time(guild.id), "large": False,
            "unavailable": False, "member_count": len(guild.member_ids), "lazy": True,
            "voice_states": [], "presences": [], "stage_instances": [],
            "guild_scheduled_events": [], "soundboard_sounds": [], "embedded_activities": [],
            "members": self.member_payloads(guild_id) if with_members else [bot_member],
            "channels": [c.payload() for c in channels if not c.is_thread],
            "threads": [c.payload(bot_id=self.bot_user.id) for c in channels
                        if c.is_thread and not c.archived],
        }
