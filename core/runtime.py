"""What the core needs to do its work: the pool, the catalog and the ports.

Built once by bot/app.py (or by a test with fakes) and passed to the worker,
the sweeper and the service the adapters call.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date

import asyncpg

from core.catalog import Catalog
from core.config import CoreConfig
from core.dbhealth import DatabaseHealth
from core.links import sign_image_link
from core.models import Button, ModelSpec, ThreadRef
from core.ports import ChatPlatform, ImageProvider, ObjectStore, PromptRefiner
from core.styles import Styles


@dataclass
class Runtime:
    pool: asyncpg.Pool
    catalog: Catalog
    config: CoreConfig
    providers: dict[str, ImageProvider]
    refiner: PromptRefiner
    store: ObjectStore
    platforms: dict[str, ChatPlatform] = field(default_factory=dict)
    fallback_refiner: PromptRefiner | None = None
    connect: Callable[[], Awaitable[asyncpg.Connection]] | None = None
    # Submits use their own connections, so a busy worker never delays an answer to a
    # person (the platforms' 3-second deadlines); None: they share `pool`.
    intake_pool: asyncpg.Pool | None = None
    # Whether this process reaches its database (shared by every loop; /readyz shows it).
    health: DatabaseHealth = field(default_factory=DatabaseHealth)
    styles: Styles = field(default_factory=Styles)  # `--style NAME` presets
    # Set when this process serves the threads of one channel only (each `easel chat` has
    # a terminal of its own): it claims, finishes and tells only that channel's work.
    only_channel: str | None = None

    async def image_url(self, key: str) -> str | None:
        """A link people can open to a stored image: the store's own (a presigned URL), else
        a signed link to Easel's image route (PUBLIC_URL and EASEL_SECRET_KEY), else None;
        never a path on this machine."""
        url = await self.store.url(key, self.config.url_ttl_s)
        if url and url.startswith(("https://", "http://")):
            return url
        if not (self.config.public_url and self.config.flow_secret):
            return None
        token = sign_image_link(self.config.flow_secret, key,
                                int(time.time()) + self.config.url_ttl_s)
        return f"{self.config.public_url.rstrip('/')}/images/{token}"

    def platform_for(self, thread: ThreadRef) -> ChatPlatform | None:
        """The platform that tells `thread` what happened, if this process serves it."""
        if self.only_channel is not None and thread.channel != self.only_channel:
            return None
        return self.platforms.get(thread.platform)

    @property
    def available_providers(self) -> frozenset[str]:
        return frozenset(self.providers)

    def available_models(self) -> list[ModelSpec]:
        """Catalog models whose provider is configured here and that are not retired."""
        today = date.today()
        return [
            m for m in self.catalog.models
            if m.provider in self.providers and not m.is_retired(today)
        ]

    def webhook_url(self) -> str | None:
        base = self.config.public_url
        return f"{base.rstrip('/')}/webhooks/replicate" if base else None

    def follow_up_buttons(self, model: ModelSpec, generation_id: int, resolution: str) -> tuple[
        Button, ...
    ]:
        """Regenerate, Variations, Upscale (when the model has 4K), Delete and another-model
        choice."""
        buttons = [
            Button("regen", "Regenerate", generation_id),
            Button("vary", "Variations", generation_id),
        ]
        if "4K" in model.credits and resolution != "4K":
            buttons.append(Button("upscale", f"Upscale to 4K ({model.credits['4K']} cr)",
                                  generation_id))
        others = tuple(
            (m.name, f"{m.display_name} · {m.cost(resolution)} cr")
            for m in self.available_models()
            if m.name != model.name
        )[:25]
        buttons.append(Button("delete", "Delete", generation_id))
        if others:
            buttons.append(Button("model", "Again with another model…", generation_id, others))
        return tuple(buttons)
