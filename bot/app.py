"""bootstrap(): settings → adapters → core. The one place that wires Easel together.

Each part is built only when its settings are present; with none at all, Easel
runs on embedded defaults: a private PostgreSQL, a local image folder, the
offline `sketch` provider and the rule-based refiner.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import asyncpg

from bot.checks import check_default_model, check_s3_credentials
from bot.db import connect, create_pool, resolve_database_url
from bot.migrate import migrate
from bot.settings import Settings
from core.catalog import Catalog, parse_catalog
from core.config import CoreConfig
from core.ports import ChatPlatform, ImageProvider, ObjectStore, PromptRefiner
from core.runtime import Runtime
from core.service import Easel
from core.styles import Styles, parse_styles

log = logging.getLogger("easel.app")

INTAKE_POOL_SIZE = 4  # connections reserved for submitting what people ask


def load_catalog(path: Path | None) -> Catalog:
    """The catalog at `path`, or the one shipped with Easel."""
    if path is not None:
        return parse_catalog(path.read_text("utf-8"), str(path))
    text = importlib.resources.files("bot").joinpath("models.toml").read_text("utf-8")
    return parse_catalog(text, "models.toml")


def load_styles(path: Path | None, models_file: Path | None = None) -> Styles:
    """The styles at `path`, else a styles.toml next to the models file, else Easel's own."""
    if path is None and models_file is not None and (models_file.parent / "styles.toml").exists():
        path = models_file.parent / "styles.toml"
    if path is not None:
        return parse_styles(path.read_text("utf-8"), str(path))
    text = importlib.resources.files("bot").joinpath("styles.toml").read_text("utf-8")
    return parse_styles(text, "styles.toml")


def core_config(settings: Settings, catalog: Catalog, providers: set[str]) -> CoreConfig:
    """The core's knobs from settings; the default model is the best one configured."""
    default_model = settings.default_model or catalog.best_default(providers, date.today())
    return CoreConfig(
        starter_credits=settings.starter_credits,
        max_active=settings.max_active,
        rate_per_minute=settings.rate_per_minute,
        default_model=default_model,
        default_resolution=settings.default_resolution,
        lease_s=settings.lease_s,
        sweep_interval_s=settings.sweep_interval_s,
        max_attempts=settings.max_attempts,
        generation_timeout_s=settings.generation_timeout_s,
        status_edit_interval_s=settings.status_edit_interval_s,
        worker_concurrency=settings.worker_concurrency,
        shutdown_grace_s=settings.shutdown_grace_s,
        max_upload_bytes=settings.max_upload_bytes,
        url_ttl_s=settings.url_ttl_s,
        public_url=settings.public_url,
        flow_secret=settings.secret_key.get_secret_value().encode() if settings.secret_key else None,
    )


def build_providers(settings: Settings) -> dict[str, ImageProvider]:
    """One provider per configured key, and always the offline `sketch`."""
    from adapters.providers.sketch import SketchProvider

    providers: dict[str, ImageProvider] = {"sketch": SketchProvider()}
    if settings.openai_api_key:
        from adapters.providers.openai_images import OpenAIImageProvider

        providers["openai"] = OpenAIImageProvider(
            settings.openai_api_key.get_secret_value(), settings.openai_base_url
        )
    if settings.gemini_api_key:
        from adapters.providers.google_images import GoogleImageProvider

        providers["google"] = GoogleImageProvider(
            settings.gemini_api_key.get_secret_value(), settings.gemini_base_url
        )
    if settings.replicate_api_token:
        from adapters.providers.replicate_images import ReplicateImageProvider

        providers["replicate"] = ReplicateImageProvider(
            settings.replicate_api_token.get_secret_value(), settings.replicate_base_url
        )
    return providers


async def close_providers(providers: dict[str, ImageProvider]) -> None:
    """Close the SDK clients of providers that hold connections."""
    for provider in providers.values():
        close = getattr(provider, "aclose", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()


async def check_catalog_at_start(app: App) -> None:
    """Ask the providers whether every catalog id exists; warn per problem, and move the
    default model off an id found missing (unless EASEL_DEFAULT_MODEL names one)."""
    from core.model_check import check_models, log_problems, missing_ids

    runtime = app.runtime
    problems = await check_models(runtime.catalog, runtime.providers, date.today())
    log_problems(problems)
    if not app.settings.default_model and (missing := missing_ids(problems)):
        default = runtime.catalog.best_default(set(runtime.providers), date.today(), missing)
        if default != runtime.config.default_model:
            log.warning("default model: %s (%s is not served)", default,
                        runtime.config.default_model)
            runtime.config = replace(runtime.config, default_model=default)


def build_refiner(settings: Settings, catalog: Catalog) -> PromptRefiner:
    """An LLM refiner (the catalog's model) when a key is set, else the offline rule-based one."""
    from adapters.refiners.rules import RuleRefiner

    openai_spec, google_spec = catalog.refiner("openai"), catalog.refiner("google")
    if settings.openai_api_key and openai_spec is not None:
        from adapters.refiners.llm import OpenAIRefiner

        return OpenAIRefiner(settings.openai_api_key.get_secret_value(), settings.openai_base_url,
                             model=openai_spec.model_id, timeout_s=openai_spec.timeout_s)
    if settings.gemini_api_key and google_spec is not None:
        from adapters.refiners.llm import GeminiRefiner

        return GeminiRefiner(settings.gemini_api_key.get_secret_value(), settings.gemini_base_url,
                             model=google_spec.model_id, timeout_s=google_spec.timeout_s)
    return RuleRefiner()


def build_store(settings: Settings) -> ObjectStore:
    """S3 when S3_BUCKET is set, else the local image folder."""
    if settings.s3_bucket:
        from adapters.storage.s3 import S3ObjectStore

        return S3ObjectStore(
            settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            path_style=settings.s3_path_style,
            public_url=settings.s3_public_url,
        )
    from adapters.storage.local import LocalObjectStore

    return LocalObjectStore(settings.local_images_dir)


def offline_parts(settings: Settings) -> list[str]:
    """Which parts run on embedded defaults (for the warning line newcomers see)."""
    parts = []
    if not settings.database_url:
        parts.append(f"embedded PostgreSQL in {settings.data_dir / 'postgres'}")
    if not settings.s3_bucket:
        parts.append(f"local images in {settings.local_images_dir}")
    if not (settings.openai_api_key or settings.gemini_api_key or settings.replicate_api_token):
        parts.append("the offline sketch provider")
    if not (settings.openai_api_key or settings.gemini_api_key):
        parts.append("the rule-based prompt refiner")
    return parts


@dataclass
class App:
    settings: Settings
    database_url: str
    runtime: Runtime
    easel: Easel
    closers: list[object] = field(default_factory=list)


async def open_database(settings: Settings, *, pool_size: int | None = None) -> tuple[
    str, asyncpg.Pool
]:
    """Resolve the database (embedded when unset), migrate it, and open the pool."""
    url = await resolve_database_url(
        settings.database_url.get_secret_value() if settings.database_url else None,
        settings.data_dir,
    )
    applied = await migrate_database(url, configured=settings.database_url is not None)
    if applied:
        log.info("applied migrations: %s", ", ".join(applied))
    return url, await create_pool(url, max_size=pool_size or settings.db_pool_size)


async def migrate_database(url: str, *, configured: bool) -> list[str]:
    """Apply pending migrations over one connection; return the versions applied."""
    conn = await connect(url, configured=configured)
    try:
        return await migrate(conn)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def bootstrap(
    settings: Settings,
    *,
    platforms: dict[str, ChatPlatform] | None = None,
    providers: dict[str, ImageProvider] | None = None,
    store: ObjectStore | None = None,
    pool_size: int | None = None,
) -> AsyncIterator[App]:
    """Build the whole app from settings; tests pass fakes for any part."""
    catalog = load_catalog(settings.models_file)
    providers = providers if providers is not None else build_providers(settings)
    check_default_model(settings, catalog, set(providers))
    if store is None:
        check_s3_credentials(settings)
    url, pool = await open_database(settings, pool_size=pool_size)
    intake_pool = await create_pool(url, max_size=INTAKE_POOL_SIZE)
    try:
        runtime = Runtime(
            pool=pool,
            catalog=catalog,
            config=core_config(settings, catalog, set(providers)),
            providers=providers,
            refiner=build_refiner(settings, catalog),
            store=store or build_store(settings),
            platforms=dict(platforms or {}),
            fallback_refiner=_rule_refiner(),
            connect=lambda: asyncpg.connect(url),
            intake_pool=intake_pool,
            styles=load_styles(settings.styles_file, settings.models_file),
        )
        yield App(settings, url, runtime, Easel(runtime))
    finally:
        await intake_pool.close()
        await pool.close()


def _rule_refiner() -> PromptRefiner:
    from adapters.refiners.rules import RuleRefiner

    return RuleRefiner()
