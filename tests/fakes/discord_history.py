"""How the fake Discord pages a channel's history (GET /channels/{id}/messages).

Discord answers newest first whatever the direction: `before` gives the `limit` messages just
older than an id, `after` the `limit` messages just newer (still listed newest first, which is
why discord.py pages on with the first id), `around` about half on each side of an id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tests.fakes.discord_limits import DiscordError
from tests.fakes.discord_models import FakeMessage

LIMIT_DEFAULT = 50
LIMIT_MAX = 100


def history_limit(query: Mapping[str, str]) -> int:
    """The `limit` query parameter, refused like Discord when it is outside 1-100."""
    limit = int(query.get("limit", str(LIMIT_DEFAULT)))
    if not 1 <= limit <= LIMIT_MAX:
        raise DiscordError(400, 50035, "Invalid Form Body", {"limit": {"_errors": [{
            "code": "NUMBER_TYPE_MAX", "message": "int value should be <= 100 and >= 1."}]}})
    return limit


def history_page(oldest_first: Sequence[FakeMessage], query: Mapping[str, str],
                 limit: int) -> list[FakeMessage]:
    """The messages Discord returns for this query, newest first."""
    if "after" in query:
        after = int(query["after"])
        found = [m for m in oldest_first if m.id > after][:limit]
    elif "around" in query:
        around = int(query["around"])
        older = [m for m in oldest_first if m.id < around]
        older = older[len(older) - limit // 2:] if limit // 2 else []
        newer = [m for m in oldest_first if m.id >= around]
        found = older + newer[:limit - len(older)]
    else:
        before = int(query["before"]) if "before" in query else None
        found = [m for m in oldest_first if before is None or m.id < before][-limit:]
    return found[::-1]
