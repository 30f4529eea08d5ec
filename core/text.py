"""Text made safe at the door, once, for every platform.

What people type reaches Postgres (which refuses NUL and lone surrogates), terminals
(where escape sequences move the cursor, recolour or retitle the window) and chat
messages. `clean_text` is applied where a request enters the core; `shown` to any
value echoed back in a sentence (an option value, a file name), so no echo is long.
"""

from __future__ import annotations

import re
import unicodedata

# ESC-introduced sequences: CSI (ESC [ ... final), OSC (ESC ] ... BEL or ESC \),
# DCS/SOS/PM/APC strings (ESC P|X|^|_ ... ESC \), and two-character escapes.
_ESCAPE_SEQUENCES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"
    r"|\x1b[@-Z\\-_]"
    r"|\x9b[0-?]*[ -/]*[@-~]"
)
# C0 controls but tab and newline, DEL, C1 controls; and UTF-16 surrogates, which in a
# Python string are always unpaired (a valid pair decodes to one code point).
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
# Characters that take no space: format characters (zero-width space and joiners,
# the byte-order mark, bidi controls), and combining marks with nothing to combine with.
_INVISIBLE_CATEGORIES = frozenset({"Cf", "Mn", "Me", "Zs", "Zl", "Zp", "Cc"})
ECHO_MAX_CHARS = 40


# Chat mention syntax left in a prompt (Discord `<@123>` `<@&5>` `<#7>`, Slack `<!channel>`
# `<@U0BOB>`) and the everyone-words: an image prompt is no place to ping anyone.
_MENTIONS = re.compile(r"<(?:@[!&]?|#|!)[\w^|@.-]*>|(?<![\w@])[@!](?:everyone|here|channel)\b")


def without_mentions(text: str) -> str:
    """`text` with mention markup and @everyone/@here/@channel taken out (adapters turn
    people's mentions into names first); the words around them keep their spaces."""
    removed = _MENTIONS.sub(" ", text)
    return removed if removed == text else re.sub(r"[ \t]{2,}", " ", removed).strip()


def clean_text(text: str) -> str:
    """`text` without NUL, lone surrogates, control characters or escape sequences
    (tabs and newlines are kept; a carriage return becomes a newline)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROLS.sub("", _ESCAPE_SEQUENCES.sub("", text))


def is_blank(text: str) -> bool:
    """Whether `text` shows nothing at all (only spaces and invisible characters)."""
    return all(unicodedata.category(ch) in _INVISIBLE_CATEGORIES or ch.isspace() for ch in text)


def shown(value: object, max_chars: int = ECHO_MAX_CHARS) -> str:
    """`value` as it may be echoed in a sentence: cleaned, one line, at most `max_chars`."""
    text = " ".join(clean_text(str(value)).split())
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"
