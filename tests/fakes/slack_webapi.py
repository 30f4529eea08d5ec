"""The Slack Web API methods of the fake workspace, without HTTP.

`SlackWorkspace.call(method, args)` answers like Slack: a dict with `ok: true`, or
raises `ApiError(code)`, which the server turns into `{"ok": false, "error": code}`.
`args` are the request's fields merged from the query string, a form body or a JSON
body, with JSON-in-a-string fields (blocks, files, view) already decoded.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.fakes.slack_payloads import SlackIdentity
from tests.fakes.slack_state import (
    MAX_TEXT_CHARS,
    MAX_VIEW_BLOCKS,
    EphemeralMessage,
    FakeChannel,
    FakeFile,
    FakeMessage,
    FakeUser,
    MessageVersion,
    TsClock,
    block_errors,
)

JSON_FIELDS = ("blocks", "files", "view", "attachments", "metadata")


class ApiError(Exception):
    """A Slack error code (`channel_not_found`, `invalid_blocks`, ...) and extra fields."""

    def __init__(self, code: str, **extra: Any) -> None:
        super().__init__(code)
        self.code = code
        self.extra = extra


def decode_json_fields(args: dict[str, Any]) -> dict[str, Any]:
    """Form-encoded callers send blocks/files/view as JSON strings; Slack accepts both."""
    decoded = dict(args)
    for key in JSON_FIELDS:
        if isinstance(decoded.get(key), str) and decoded[key].strip()[:1] in ("[", "{"):
            try:
                decoded[key] = json.loads(decoded[key])
            except ValueError as err:
                raise ApiError("invalid_arguments") from err
    return decoded


class SlackWorkspace:
    """One workspace's state and the Web API methods over it."""

    def __init__(self, ident: SlackIdentity) -> None:
        self.ident = ident
        self.root_url = ""  # set by the server once it listens
        self.clock = TsClock()
        self.channels: dict[str, FakeChannel] = {}
        self.users: dict[str, FakeUser] = {
            ident.bot_user_id: FakeUser(ident.bot_user_id, ident.bot_name, is_bot=True,
                                        bot_id=ident.bot_id)}
        self.messages: list[FakeMessage] = []
        self.files: dict[str, FakeFile] = {}
        self.ephemeral: list[EphemeralMessage] = []
        self.home_views: dict[str, dict[str, Any]] = {}
        self.shares_in_complete = True  # False: like Slack when sharing is still in progress
        self._next_id = 1
        self.methods: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "auth.test": self.auth_test,
            "chat.postMessage": self.chat_post_message,
            "chat.update": self.chat_update,
            "chat.postEphemeral": self.chat_post_ephemeral,
            "chat.delete": self.chat_delete,
            "conversations.info": self.conversations_info,
            "conversations.replies": self.conversations_replies,
            "conversations.history": self.conversations_history,
            "users.info": self.users_info,
            "files.getUploadURLExternal": self.files_get_upload_url,
            "files.completeUploadExternal": self.files_complete_upload,
            "files.info": self.files_info,
            "views.publish": self.views_publish,
        }

    # --- state helpers ------------------------------------------------------

    def new_id(self, prefix: str) -> str:
        self._next_id += 1
        return f"{prefix}0FAKE{self._next_id:06d}"

    def channel(self, channel_id: str) -> FakeChannel:
        """The channel with this id, created on first use (D... is a DM, G... private)."""
        if not channel_id:
            raise ApiError("channel_not_found")
        if channel_id not in self.channels:
            self.channels[channel_id] = FakeChannel(
                channel_id, channel_id.lower(), is_im=channel_id.startswith("D"),
                is_private=channel_id.startswith("G"))
        return self.channels[channel_id]

    def user(self, user_id: str) -> FakeUser:
        if user_id not in self.users:
            self.users[user_id] = FakeUser(user_id, user_id.lower())
        return self.users[user_id]

    def add_message(self, channel: str, user: str, text: str, *, blocks: list[Any] | None = None,
                    thread_ts: str | None = None, files: list[FakeFile] | None = None,
                    bot_id: str | None = None, subtype: str | None = None) -> FakeMessage:
        message = FakeMessage(channel, self.clock.next(), user,
                              [MessageVersion(text, tuple(blocks or ()))], thread_ts=thread_ts,
                              bot_id=bot_id, files=list(files or ()), subtype=subtype)
        self.messages.append(message)
        return message

    def find_message(self, channel: str, ts: str) -> FakeMessage | None:
        return next((m for m in self.messages
                     if m.channel == channel and m.ts == ts and not m.deleted), None)

    def thread(self, channel: str, thread_ts: str) -> list[FakeMessage]:
        """The thread's root (if any) and its replies, oldest first."""
        return [m for m in self.messages if m.channel == channel and not m.deleted
                and (m.ts == thread_ts or m.thread_ts == thread_ts)]

    def new_file(self, name: str, user: str, *, title: str | None = None,
                 length: int | None = None, alt_txt: str | None = None) -> FakeFile:
        file_id = self.new_id("F")
        base = f"{self.root_url}/files-pri/{self.ident.team_id}-{file_id}"
        file = FakeFile(file_id, name, title or name, user, 1_700_000_000 + len(self.files),
                        f"{base}/{name}", f"{base}/download/{name}", length, alt_txt=alt_txt)
        self.files[file_id] = file
        return file

    def _bot_message_api(self, message: FakeMessage) -> dict[str, Any]:
        data = message.to_api(self.ident.team_id)
        data["app_id"] = self.ident.api_app_id
        return data

    def _check_postable(self, channel_id: str, text: str, blocks: Any) -> FakeChannel:
        channel = self.channel(channel_id)
        if not channel.is_member:
            raise ApiError("not_in_channel")
        if blocks is not None:
            errors = block_errors(blocks)
            if errors:
                raise ApiError("invalid_blocks", errors=errors,
                               response_metadata={"messages": [f"[ERROR] {e}" for e in errors]})
        if len(text) > MAX_TEXT_CHARS:
            raise ApiError("msg_too_long")
        return channel

    # --- methods --------------------------------------------------------------

    def call(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        handler = self.methods.get(method)
        if handler is None:
            raise ApiError("unknown_method")
        return {"ok": True, **handler(decode_json_fields(args))}

    def auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        i = self.ident
        return {"url": f"{self.root_url}/", "team": i.team_domain, "user": i.bot_name,
                "team_id": i.team_id, "user_id": i.bot_user_id, "bot_id": i.bot_id,
                "is_enterprise_install": False}

    def chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        text, blocks = str(args.get("text") or ""), args.get("blocks")
        if not text and not blocks and not args.get("attachments"):
            raise ApiError("no_text")
        channel = self._check_postable(str(args.get("channel", "")), text, blocks)
        message = self.add_message(channel.id, self.ident.bot_user_id, text, blocks=blocks,
                                   thread_ts=args.get("thread_ts") or None,
                                   bot_id=self.ident.bot_id)
        return {"channel": channel.id, "ts": message.ts, "message": self._bot_message_api(message)}

    def chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel_id = str(args.get("channel", ""))
        message = self.find_message(channel_id, str(args.get("ts", "")))
        if message is None:
            raise ApiError("message_not_found")
        if message.user != self.ident.bot_user_id:
            raise ApiError("cant_update_message")
        # Slack keeps the previous text / blocks when a field is left out.
        text = str(args["text"]) if "text" in args else message.text
        blocks = args["blocks"] if "blocks" in args else message.blocks
        self._check_postable(channel_id, text, blocks)
        message.versions.append(MessageVersion(text, tuple(blocks or ())))
        return {"channel": channel_id, "ts": message.ts, "text": text,
                "message": self._bot_message_api(message)}

    def chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        text, blocks = str(args.get("text") or ""), args.get("blocks")
        if not args.get("user"):
            raise ApiError("user_not_found")
        channel = self._check_postable(str(args.get("channel", "")), text, blocks)
        ts = self.clock.next()
        self.ephemeral.append(EphemeralMessage(channel.id, str(args["user"]), text,
                                               list(blocks or ()), args.get("thread_ts"), ts))
        return {"message_ts": ts}

    def chat_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        message = self.find_message(str(args.get("channel", "")), str(args.get("ts", "")))
        if message is None:
            raise ApiError("message_not_found")
        if message.user != self.ident.bot_user_id:
            raise ApiError("cant_delete_message")
        message.deleted = True
        return {"channel": message.channel, "ts": message.ts}

    def conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"channel": self.channel(str(args.get("channel", ""))).to_api()}

    def conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self.channel(str(args.get("channel", "")))
        thread_ts = str(args.get("ts", ""))
        replies = self.thread(channel.id, thread_ts)
        if not replies:
            raise ApiError("thread_not_found")
        start, limit = int(args.get("cursor") or 0), int(args.get("limit") or 1000)
        page = replies[start:start + limit]
        next_cursor = str(start + limit) if start + limit < len(replies) else ""
        count = sum(1 for m in replies if m.ts != thread_ts)
        return {"messages": [m.to_api(self.ident.team_id, count if m.ts == thread_ts else 0)
                             for m in page],
                "has_more": bool(next_cursor), "response_metadata": {"next_cursor": next_cursor}}

    def conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        """The channel's top-level messages (thread roots included, replies not), newest
        first, `limit` per page with an offset cursor."""
        channel = self.channel(str(args.get("channel", "")))
        if not channel.is_member:
            raise ApiError("not_in_channel")
        top = [m for m in reversed(self.messages) if m.channel == channel.id and not m.deleted
               and (m.thread_ts is None or m.thread_ts == m.ts)]
        start, limit = int(args.get("cursor") or 0), int(args.get("limit") or 100)
        page = top[start:start + limit]
        next_cursor = str(start + limit) if start + limit < len(top) else ""
        replies = {m.ts: sum(1 for r in self.messages if r.channel == channel.id
                             and not r.deleted and r.thread_ts == m.ts and r.ts != m.ts)
                   for m in page}
        return {"messages": [m.to_api(self.ident.team_id, replies[m.ts]) for m in page],
                "has_more": bool(next_cursor), "pin_count": 0,
                "response_metadata": {"next_cursor": next_cursor}}

    def users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user_id = str(args.get("user", ""))
        if not user_id:
            raise ApiError("user_not_found")
        return {"user": self.user(user_id).to_api(self.ident.team_id)}

    def files_get_upload_url(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("filename") or not str(args.get("length", "")).isdigit():
            raise ApiError("invalid_arguments")
        file = self.new_file(str(args["filename"]), self.ident.bot_user_id,
                             length=int(args["length"]), alt_txt=args.get("alt_txt"))
        return {"upload_url": f"{self.root_url}/upload/v1/{file.id}", "file_id": file.id}

    def files_complete_upload(self, args: dict[str, Any]) -> dict[str, Any]:
        entries = args.get("files")
        if not isinstance(entries, list) or not entries:
            raise ApiError("invalid_arguments")
        files = []
        for entry in entries:
            file = self.files.get(str(entry.get("id")))
            if file is None or file.data is None:
                raise ApiError("file_not_found")
            file.title = entry.get("title") or file.title
            file.is_completed = True
            files.append(file)
        channel_ids = ([args["channel_id"]] if args.get("channel_id") else []) + [
            c for c in str(args.get("channels") or "").split(",") if c]
        for channel_id in channel_ids:
            self._share(files, channel_id, args)
        return {"files": [{"id": f.id, "title": f.title,
                           **f.to_api(with_shares=self.shares_in_complete)} for f in files]}

    def _share(self, files: list[FakeFile], channel_id: str, args: dict[str, Any]) -> None:
        text = str(args.get("initial_comment") or "")
        channel = self._check_postable(channel_id, text, args.get("blocks"))
        thread_ts = args.get("thread_ts") or None
        message = self.add_message(channel.id, self.ident.bot_user_id, text,
                                   blocks=args.get("blocks"), thread_ts=thread_ts, files=files,
                                   bot_id=self.ident.bot_id, subtype="file_share")
        kind = "private" if channel.is_im or channel.is_private else "public"
        share = {"ts": message.ts, "channel_name": channel.name, "reply_users": [],
                 "reply_count": 0, "team_id": self.ident.team_id,
                 **({"thread_ts": thread_ts} if thread_ts else {})}
        for file in files:
            file.shares.setdefault(kind, {}).setdefault(channel.id, []).append(share)

    def files_info(self, args: dict[str, Any]) -> dict[str, Any]:
        file = self.files.get(str(args.get("file", "")))
        if file is None or not file.is_completed:
            raise ApiError("file_not_found")
        return {"file": file.to_api(), "comments": [], "response_metadata": {"next_cursor": ""}}

    def views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        view, user_id = args.get("view"), str(args.get("user_id", ""))
        if not user_id:
            raise ApiError("user_not_found")
        if not isinstance(view, dict) or view.get("type") != "home":
            raise ApiError("invalid_arguments")
        errors = block_errors(view.get("blocks", []), limit=MAX_VIEW_BLOCKS)
        if errors:
            raise ApiError("invalid_arguments", response_metadata={"messages": errors})
        self.home_views[user_id] = view
        return {"view": {"id": self.new_id("V"), "team_id": self.ident.team_id,
                         "app_id": self.ident.api_app_id, "bot_id": self.ident.bot_id,
                         "hash": self.clock.next(), **view}}
