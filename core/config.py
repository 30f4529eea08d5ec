"""The core's knobs, given to it by bot/app.py (the core never reads the environment)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CoreConfig:
    starter_credits: int = 50
    max_active: int = 3
    rate_per_minute: int = 10
    default_model: str = "sketch"
    default_resolution: str = "2K"
    default_aspect_ratio: str = "1:1"
    lease_s: float = 10.0  # heartbeats every lease_s / 3; see the README for the trade-off
    sweep_interval_s: float = 5.0
    max_attempts: int = 3
    generation_timeout_s: float = 600.0
    reservation_ttl_s: float = 3600.0
    status_edit_interval_s: float = 1.0
    worker_concurrency: int = 8
    shutdown_grace_s: float = 20.0
    max_upload_bytes: int = 20_000_000
    url_ttl_s: int = 86_400
    backoff_base_s: float = 2.0
    backoff_max_s: float = 60.0
    webhook_grace_s: float = 60.0
    context_turns: int = 8
    public_url: str | None = None
    flow_secret: bytes | None = None  # signs prompt-flow links (EASEL_SECRET_KEY)
