"""Who `easel credits grant/show USER` means: the ids people have, resolved against `users`.

People copy a platform user id (`slack:U0XDAVE001`, `discord:1234`); Easel keys an
account by platform, workspace (Slack team, Discord guild) and id. A bare id is
looked up in `users`: one match is that person; several are listed and refused;
none is refused too (crediting a guessed workspace would make an account nobody
can use) — except on the console, whose only workspace is ''.
"""

from __future__ import annotations

import getpass

import asyncpg

from core.models import UserRef

FULL_FORM = "PLATFORM:WORKSPACE:ID (e.g. slack:T0TEAM:U0USER, discord:GUILD:USER)"
PLATFORMS = ("discord", "slack", "console")


class UserIdError(Exception):
    """The user id given on the command line names nobody, or several people."""


def _split(text: str) -> tuple[str, str | None, str]:
    platform, _, rest = text.partition(":")
    if platform not in PLATFORMS or not rest:
        raise UserIdError(
            f"give the user as PLATFORM:ID or {FULL_FORM}; PLATFORM is one of "
            f"{', '.join(PLATFORMS)} (got {text[:60]!r})"
        )
    workspace, colon, external = rest.rpartition(":")
    return platform, (workspace if colon else None), external


async def resolve_user(conn: asyncpg.Connection, text: str | None, *, create: bool) -> UserRef | None:
    """The person `text` names; None when the full form names someone with no account yet
    and `create` is false."""
    if not text:
        return UserRef("console", "", getpass.getuser())
    platform, workspace, external = _split(text)
    if workspace is not None:
        return UserRef(platform, workspace, external)
    if platform == "console":
        return UserRef("console", "", external)
    rows = await conn.fetch(
        "SELECT workspace FROM users WHERE platform = $1 AND external_id = $2 ORDER BY workspace",
        platform, external,
    )
    if len(rows) == 1:
        return UserRef(platform, rows[0]["workspace"], external)
    if not rows:
        hint = "" if not create else " (to credit someone before their first use, give the full form)"
        raise UserIdError(f"{text} has not used Easel yet: no such user{hint}; the full form is "
                          f"{FULL_FORM}")
    matches = ", ".join(f"{platform}:{r['workspace']}:{external}" for r in rows)
    raise UserIdError(f"{text} is ambiguous: {len(rows)} workspaces have this id ({matches}); "
                      "give one of them")
