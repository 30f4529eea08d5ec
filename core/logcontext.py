"""Which generation and session the current task works on, for every log line it writes."""

from __future__ import annotations

import contextvars
import logging

current_generation: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "current_generation", default=None
)
current_session: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "current_session", default=None
)


class GenerationContext(logging.Filter):
    """Adds `generation_id` and `session_id` to records made while a job runs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "generation_id"):
            record.generation_id = current_generation.get()
        if not hasattr(record, "session_id"):
            record.session_id = current_session.get()
        return True
