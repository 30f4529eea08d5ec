"""Signed, expiring links: what a token grants (a session, a person, or the operator).

A token is `<kind prefix><subject>.<expiry>.<mac>`: the MAC is HMAC-SHA256 over the
kind's context, the subject and the expiry with EASEL_SECRET_KEY, so a token can be
neither guessed nor bent to another subject or kind. Verification accepts any of the
keys it is given (the current one first): rotating the key keeps old links working
for as long as the previous key stays listed.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass


class LinkInvalid(Exception):
    """A token that is malformed, forged, expired or of another kind (the page answers 403)."""


class GrantKind(enum.Enum):
    """What a token opens; each has its own MAC context (domain separation)."""

    SESSION = ("", b"easel-flow-v1")  # one thread's flow (the original /flow links)
    PERSON = ("u", b"easel-person-v1")  # one person's sessions and generations
    ADMIN = ("a", b"easel-admin-v1")  # the operator's view; subject: who asked (0: the CLI)

    @property
    def prefix(self) -> str:
        return self.value[0]

    @property
    def context(self) -> bytes:
        return self.value[1]


TOKEN_PATTERN = re.compile(r"([ua]?)(0|[1-9][0-9]{0,18})\.([0-9]{1,12})\.([A-Za-z0-9_-]{43})")
KIND_OF_PREFIX = {kind.prefix: kind for kind in GrantKind}


@dataclass(frozen=True)
class Grant:
    """What a verified token allows: `kind` for `subject` until unix time `expires_at`."""

    kind: GrantKind
    subject: int
    expires_at: int


def _mac(secret: bytes, kind: GrantKind, subject: int, expires_at: int) -> str:
    message = b"\x00".join((kind.context, str(subject).encode(), str(expires_at).encode()))
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign_link(secret: bytes, kind: GrantKind, subject: int, expires_at: int) -> str:
    """A URL-safe token granting `kind` for `subject`, valid until unix time `expires_at`."""
    if not secret:
        raise ValueError("a signed link needs a non-empty secret key")
    if subject < (0 if kind is GrantKind.ADMIN else 1) or expires_at < 0:
        raise ValueError("subject and expiry must be positive")
    return f"{kind.prefix}{subject}.{expires_at}.{_mac(secret, kind, subject, expires_at)}"


def verify_link(secrets: Sequence[bytes], token: str, now: float) -> Grant:
    """The grant a token carries, or LinkInvalid (forged, altered, expired)."""
    match = TOKEN_PATTERN.fullmatch(token)
    keys = [s for s in secrets if s]
    if not keys or match is None:
        raise LinkInvalid("malformed token")
    kind = KIND_OF_PREFIX[match[1]]
    subject, expires_at = int(match[2]), int(match[3])
    if subject == 0 and kind is not GrantKind.ADMIN:
        raise LinkInvalid("malformed token")
    if not any(hmac.compare_digest(_mac(k, kind, subject, expires_at), match[4]) for k in keys):
        raise LinkInvalid("bad token signature")
    if now >= expires_at:
        raise LinkInvalid("expired token")
    return Grant(kind, subject, expires_at)


# --- links to one stored image (Discord's link for an image too large to attach) --------

IMAGE_CONTEXT = b"easel-image-v1"
IMAGE_TOKEN_PATTERN = re.compile(r"([A-Za-z0-9_-]{1,700})\.([0-9]{1,12})\.([A-Za-z0-9_-]{43})")


def _image_mac(secret: bytes, key: str, expires_at: int) -> str:
    message = b"\x00".join((IMAGE_CONTEXT, key.encode(), str(expires_at).encode()))
    return base64.urlsafe_b64encode(hmac.new(secret, message, hashlib.sha256).digest()) \
        .rstrip(b"=").decode()


def sign_image_link(secret: bytes, key: str, expires_at: int) -> str:
    """A URL-safe token for the stored object `key` until unix time `expires_at`."""
    if not secret:
        raise ValueError("a signed link needs a non-empty secret key")
    name = base64.urlsafe_b64encode(key.encode()).rstrip(b"=").decode()
    return f"{name}.{expires_at}.{_image_mac(secret, key, expires_at)}"


def verify_image_link(secrets: Sequence[bytes], token: str, now: float) -> str:
    """The object key a token opens, or LinkInvalid (forged, altered, expired)."""
    match = IMAGE_TOKEN_PATTERN.fullmatch(token)
    keys = [s for s in secrets if s]
    if not keys or match is None:
        raise LinkInvalid("malformed token")
    try:
        key = base64.urlsafe_b64decode(match[1] + "=" * (-len(match[1]) % 4)).decode()
    except ValueError:
        raise LinkInvalid("malformed token") from None
    expires_at = int(match[2])
    if not any(hmac.compare_digest(_image_mac(k, key, expires_at), match[3]) for k in keys):
        raise LinkInvalid("bad token signature")
    if now >= expires_at:
        raise LinkInvalid("expired token")
    return key
