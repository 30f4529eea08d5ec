"""Errors raised by the object stores.

Their text names the operation, bucket or folder and key, never a credential or a
signed URL, so they are safe to log and to show an operator.
"""

from __future__ import annotations


class ObjectStoreError(Exception):
    """The store could not do what was asked (unreachable, refused, misconfigured)."""


class ObjectNotFound(ObjectStoreError, KeyError):
    """Nothing is stored under the key."""

    def __str__(self) -> str:
        # KeyError's __str__ would quote the message like a dict key.
        return str(self.args[0]) if self.args else "object not found"


class InvalidObjectKey(ObjectStoreError, ValueError):
    """The key is not a safe relative path ('..', absolute, empty segments)."""
