"""Logging: one line per event, plain or JSON, with every configured secret redacted."""

from __future__ import annotations

import json
import logging
import re
import sys
import time

from pydantic import SecretStr

from bot.settings import Settings
from core.logcontext import GenerationContext

# Signed URL query parameters (S3 presigned, Slack files) never reach a log line.
_SIGNED_QUERY = re.compile(r"([?&](?:X-Amz-[A-Za-z-]+|Signature|sig|token)=)[^&\s\"']+")


class RedactSecrets(logging.Filter):
    """Replaces configured secrets and signed-URL parameters in every record."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if len(s) >= 6]

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        return _SIGNED_QUERY.sub(r"\1[redacted]", text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
            record.exc_text = None
        record.msg = self.redact(message)
        record.args = ()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("generation_id", "session_id"):
            if getattr(record, key, None) is not None:
                entry[key] = getattr(record, key)
        return json.dumps(entry, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    """`time level logger: message [generation=… session=…]`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = [f"{name}={getattr(record, key)}"
               for key, name in (("generation_id", "generation"), ("session_id", "session"))
               if getattr(record, key, None) is not None]
        return f"{line} [{' '.join(ids)}]" if ids else line


def settings_secrets(settings: Settings) -> list[str]:
    values = []
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            values.append(value.get_secret_value())
    return values


def configure_logging(settings: Settings, stream: object = None) -> None:
    """Root logging for an Easel process (stderr, so stdout stays the user's)."""
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.addFilter(RedactSecrets(settings_secrets(settings)))
    handler.addFilter(GenerationContext())
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(PlainFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    # openai and google-genai use httpx2 / httpcore2 (a line per provider call at INFO).
    for noisy in ("discord", "botocore", "urllib3", "httpx", "httpcore", "httpx2", "httpcore2",
                  "slack_bolt", "pgserver", "asyncio", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # asyncpg's pool logs a traceback at every reconnect attempt during a database outage;
    # Easel's own loops say once that the database is gone and once that it is back.
    logging.getLogger("asyncpg.pool").setLevel(logging.ERROR)
