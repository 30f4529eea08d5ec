"""The fake Discord's world: users, guilds, channels, messages, and their JSON payloads.

Used by tests/fakes/discord_server.py (FakeDiscord), discord_rest.py and discord_gateway.py.
Everything here is plain data; the payload builders produce the JSON shapes of Discord API v10
that discord.py 2.7 parses.
"""

from __future__ import annotations

import datetime as dt
import io
import mimetypes
from dataclasses import dataclass, field
from typing import Any

DISCORD_EPOCH_MS = 1_420_070_400_000
# Ids and timestamps count up from a fixed instant so that runs are deterministic.
_BASE_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z

# Permission bits (https://discord.com/developers/docs/topics/permissions).
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
USE_APPLICATION_COMMANDS = 1 << 31
MANAGE_THREADS = 1 << 34
CREATE_PUBLIC_THREADS = 1 << 35
SEND_MESSAGES_IN_THREADS = 1 << 38
BOT_PERMISSIONS = (
    ADD_REACTIONS | VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS | ATTACH_FILES
    | READ_MESSAGE_HISTORY | USE_APPLICATION_COMMANDS | MANAGE_THREADS
    | CREATE_PUBLIC_THREADS | SEND_MESSAGES_IN_THREADS
)
EVERYONE_PERMISSIONS = (
    VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS | ATTACH_FILES | READ_MESSAGE_HISTORY
    | USE_APPLICATION_COMMANDS | CREATE_PUBLIC_THREADS | SEND_MESSAGES_IN_THREADS | ADD_REACTIONS
)

# Channel types.
GUILD_TEXT = 0
DM = 1
PUBLIC_THREAD = 11
PRIVATE_THREAD = 12
GUILD_FORUM = 15
THREAD_TYPES = (10, PUBLIC_THREAD, PRIVATE_THREAD)

# Message flags.
EPHEMERAL = 1 << 6
LOADING = 1 << 7

# Upload limit per file by guild boost tier (discord.py Guild._PREMIUM_GUILD_LIMITS).
FILESIZE_LIMIT_BY_TIER = {0: 10 * 1024 * 1024, 1: 10 * 1024 * 1024, 2: 50 * 1024 * 1024,
                          3: 100 * 1024 * 1024}


class Snowflakes:
    """Deterministic, increasing snowflake ids one second apart."""

    def __init__(self) -> None:
        self._count = 0

    def next(self) -> int:
        self._count += 1
        return (_BASE_MS - DISCORD_EPOCH_MS + self._count * 1000) << 22


def iso_time(snowflake: int) -> str:
    """The ISO-8601 time encoded in a snowflake (what Discord puts in `timestamp`)."""
    ms = (snowflake >> 22) + DISCORD_EPOCH_MS
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat()


@dataclass
class FakeUser:
    """A Discord user (a person or the bot)."""

    id: int
    username: str
    bot: bool = False
    global_name: str | None = None

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id), "username": self.username, "discriminator": "0",
            "global_name": self.global_name, "avatar": None, "bot": self.bot,
            "system": False, "public_flags": 0, "flags": 0, "banner": None, "accent_color": None,
            "avatar_decoration_data": None,
        }

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"


@dataclass
class FakeChannel:
    """A guild text/forum channel, a thread (type 11/12) or a DM channel."""

    id: int
    guild_id: int | None
    name: str
    type: int = GUILD_TEXT
    parent_id: int | None = None
    owner_id: int | None = None
    archived: bool = False
    locked: bool = False
    auto_archive_duration: int = 1440
    last_message_id: int | None = None
    message_count: int = 0
    bot_is_member: bool = False

    @property
    def is_thread(self) -> bool:
        return self.type in THREAD_TYPES

    def payload(self, *, bot_id: int | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id), "type": self.type, "name": self.name,
            "last_message_id": str(self.last_message_id) if self.last_message_id else None,
            "rate_limit_per_user": 0, "flags": 0,
        }
        if self.guild_id is not None:
            data["guild_id"] = str(self.guild_id)
        if self.is_thread:
            data.update({
                "parent_id": str(self.parent_id), "owner_id": str(self.owner_id),
                "message_count": self.message_count, "total_message_sent": self.message_count,
                "member_count": 2 if self.bot_is_member else 1,
                "thread_metadata": {
                    "archived": self.archived, "locked": self.locked,
                    "auto_archive_duration": self.auto_archive_duration,
                    "archive_timestamp": iso_time(self.id), "create_timestamp": iso_time(self.id),
                    "invitable": True,
                },
            })
            if self.bot_is_member and bot_id is not None:
                data["member"] = {"id": str(self.id), "user_id": str(bot_id),
                                  "join_timestamp": iso_time(self.id), "flags": 0}
        elif self.type == DM:
            data.pop("name")
            data["recipients"] = []
        else:
            data.update({
                "position": 0, "permission_overwrites": [], "nsfw": False, "topic": None,
                "parent_id": str(self.parent_id) if self.parent_id else None,
                "default_auto_archive_duration": 1440,
            })
            if self.type == GUILD_FORUM:
                data.update({"available_tags": [], "default_reaction_emoji": None,
                             "default_sort_order": None, "default_forum_layout": 0})
        return data


@dataclass
class FakeGuild:
    """A guild (server) with its channels and members."""

    id: int
    name: str
    owner_id: int
    bot_role_id: int
    premium_tier: int = 0
    channel_ids: list[int] = field(default_factory=list)
    member_ids: list[int] = field(default_factory=list)
    filesize_limit_override: int | None = None  # a small limit lets tests hit 413 cheaply

    @property
    def filesize_limit(self) -> int:
        """Bytes per uploaded file: by boost tier, unless overridden."""
        if self.filesize_limit_override is not None:
            return self.filesize_limit_override
        return FILESIZE_LIMIT_BY_TIER.get(self.premium_tier, FILESIZE_LIMIT_BY_TIER[0])


@dataclass
class FakeAttachment:
    """A file on the fake CDN: uploaded by the bot or by a person."""

    id: int
    filename: str
    data: bytes
    content_type: str
    url: str
    description: str | None = None

    @property
    def size(self) -> int:
        return len(self.data)

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id), "filename": self.filename, "size": self.size,
            "url": self.url, "proxy_url": self.url, "content_type": self.content_type,
        }
        if self.description is not None:
            data["description"] = self.description
        width_height = image_size(self.data)
        if width_height is not None:
            data["width"], data["height"] = width_height
        return data


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height when the bytes are an image Pillow can read."""
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            return image.width, image.height
    except Exception:  # not an image: Discord then omits width and height
        return None


def guess_content_type(filename: str) -> str:
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


@dataclass(frozen=True)
class MessageSnapshot:
    """One version of a message, as a user saw it after a post or an edit."""

    content: str
    embeds: tuple[dict[str, Any], ...]
    components: tuple[dict[str, Any], ...]
    attachments: tuple[FakeAttachment, ...]
    flags: int
    via: str  # "bot" (channel REST), "interaction" (callback / webhook) or "user"


@dataclass
class FakeMessage:
    """A message in a channel or thread, with every version it had (`history`)."""

    id: int
    channel_id: int
    guild_id: int | None
    author: FakeUser
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[FakeAttachment] = field(default_factory=list)
    flags: int = 0
    mentions: list[FakeUser] = field(default_factory=list)
    webhook_id: int | None = None
    interaction_metadata: dict[str, Any] | None = None
    message_reference: dict[str, Any] | None = None
    edited: bool = False
    deleted: bool = False
    thread_id: int | None = None
    history: list[MessageSnapshot] = field(default_factory=list)

    @property
    def type(self) -> int:
        """0 default, 19 reply, 20 chat-input command response."""
        if self.interaction_metadata is not None:
            return 20
        return 19 if self.message_reference is not None else 0

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    @property
    def loading(self) -> bool:
        """True while an interaction was deferred and not yet answered ("is thinking")."""
        return bool(self.flags & LOADING)

    def custom_ids(self) -> list[str]:
        """Every component custom_id in the message, in order."""
        found: list[str] = []

        def walk(items: list[dict[str, Any]]) -> None:
            for item in items:
                if "custom_id" in item:
                    found.append(item["custom_id"])
                walk(item.get("components", []))

        walk(self.components)
        return found

    def button_rows(self) -> int:
        """Action rows holding buttons (type 2) in the message now; a select's row is not one."""
        return sum(1 for row in self.components if row.get("type") == 1
                   and any(item.get("type") == 2 for item in row.get("components", [])))

    def record(self, via: str) -> None:
        self.history.append(MessageSnapshot(
            self.content, tuple(self.embeds), tuple(self.components), tuple(self.attachments),
            self.flags, via,
        ))

    def payload(self, *, application_id: int | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id), "channel_id": str(self.channel_id), "type": self.type,
            "author": self.author.payload(),
            "content": self.content, "timestamp": iso_time(self.id),
            "edited_timestamp": iso_time(self.id) if self.edited else None, "tts": False,
            "mention_everyone": False, "mentions": [u.payload() for u in self.mentions],
            "mention_roles": [], "attachments": [a.payload() for a in self.attachments],
            "embeds": self.embeds, "pinned": False, "flags": self.flags,
            "components": self.components,
        }
        if self.webhook_id is not None:
            data["webhook_id"] = str(self.webhook_id)
        if self.interaction_metadata is not None:
            data["interaction_metadata"] = self.interaction_metadata
            data["application_id"] = str(application_id) if application_id else None
        if self.message_reference is not None:
            data["message_reference"] = self.message_reference
        return data


@dataclass
class RecordedRequest:
    """One REST request the fake received (Authorization kept so tests can check it)."""

    method: str
    path: str  # below the API base, e.g. "/channels/123/messages"
    route: str  # the template, e.g. "/channels/{channel_id}/messages"
    query: dict[str, str]
    json: Any
    files: list[tuple[str, bytes]]  # (filename, bytes) of each multipart files[n]
    authorization: str | None
    status: int = 0


@dataclass
class InteractionCallback:
    """One POST /interactions/{id}/{token}/callback."""

    interaction_id: int
    token: str
    type: int  # 4 message, 5 deferred, 6 deferred update, 7 update, 8 autocomplete, 9 modal
    data: dict[str, Any] | None
    files: list[tuple[str, bytes]]
    latency_s: float  # since the fake dispatched INTERACTION_CREATE (Discord allows 3 s)


@dataclass
class SentInteraction:
    """An INTERACTION_CREATE the fake dispatched, and what the bot did with it."""

    id: int
    token: str
    type: int
    payload: dict[str, Any]
    sent_at: float
    channel_id: int
    message_id: int | None = None  # for component interactions: the clicked message
    callbacks: list[InteractionCallback] = field(default_factory=list)
    original_message_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    expired: bool = False

    @property
    def acknowledged(self) -> bool:
        return bool(self.callbacks)
