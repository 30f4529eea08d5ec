"""Settings: the one place that reads the environment (and a `.env` file).

Standard names where the ecosystem has them (DATABASE_URL, OPENAI_API_KEY, ...);
Easel's own settings carry the prefix EASEL_. Secrets are SecretStr.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("easel", appauthor=False))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    # --- the outside world (standard names) ---
    database_url: SecretStr | None = Field(None, validation_alias="DATABASE_URL")
    openai_api_key: SecretStr | None = Field(None, validation_alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(None, validation_alias="OPENAI_BASE_URL")
    gemini_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("GEMINI_API_KEY", "GOOGLE_API_KEY")
    )
    gemini_base_url: str | None = Field(None, validation_alias="GOOGLE_GEMINI_BASE_URL")
    replicate_api_token: SecretStr | None = Field(None, validation_alias="REPLICATE_API_TOKEN")
    replicate_base_url: str | None = Field(None, validation_alias="REPLICATE_BASE_URL")
    replicate_webhook_secret: SecretStr | None = Field(
        None, validation_alias="REPLICATE_WEBHOOK_SECRET"
    )
    discord_token: SecretStr | None = Field(None, validation_alias="DISCORD_TOKEN")
    discord_guild_ids: str = Field("", validation_alias="DISCORD_GUILD_IDS")
    discord_shard_count: int | None = Field(None, validation_alias="DISCORD_SHARD_COUNT")
    discord_shard_ids: str = Field("", validation_alias="DISCORD_SHARD_IDS")
    discord_api_base_url: str | None = Field(None, validation_alias="DISCORD_API_BASE_URL")
    discord_gateway_url: str | None = Field(None, validation_alias="DISCORD_GATEWAY_URL")
    slack_bot_token: SecretStr | None = Field(None, validation_alias="SLACK_BOT_TOKEN")
    slack_app_token: SecretStr | None = Field(None, validation_alias="SLACK_APP_TOKEN")
    slack_signing_secret: SecretStr | None = Field(None, validation_alias="SLACK_SIGNING_SECRET")
    slack_api_url: str | None = Field(None, validation_alias="SLACK_API_URL")
    s3_bucket: str | None = Field(None, validation_alias="S3_BUCKET")
    s3_endpoint_url: str | None = Field(None, validation_alias="S3_ENDPOINT_URL")
    s3_region: str | None = Field(None, validation_alias="S3_REGION")
    s3_path_style: bool = Field(False, validation_alias="S3_PATH_STYLE")
    s3_public_url: str | None = Field(None, validation_alias="S3_PUBLIC_URL")
    public_url: str | None = Field(None, validation_alias="PUBLIC_URL")

    # --- Easel's own ---
    data_dir: Path = Field(default_factory=_default_data_dir, validation_alias="EASEL_DATA_DIR")
    images_dir: Path | None = Field(None, validation_alias="EASEL_IMAGES_DIR")
    models_file: Path | None = Field(None, validation_alias="EASEL_MODELS_FILE")
    styles_file: Path | None = Field(None, validation_alias="EASEL_STYLES_FILE")
    default_model: str | None = Field(None, validation_alias="EASEL_DEFAULT_MODEL")
    default_resolution: Literal["1K", "2K", "4K"] = Field(
        "2K", validation_alias="EASEL_DEFAULT_RESOLUTION"
    )
    starter_credits: int = Field(50, ge=0, validation_alias="EASEL_STARTER_CREDITS")
    max_active: int = Field(3, ge=1, validation_alias="EASEL_MAX_ACTIVE")
    rate_per_minute: int = Field(10, ge=1, validation_alias="EASEL_RATE_PER_MINUTE")
    worker_concurrency: int = Field(8, ge=1, validation_alias="EASEL_WORKER_CONCURRENCY")
    db_pool_size: int = Field(10, ge=2, validation_alias="EASEL_DB_POOL_SIZE")
    lease_s: float = Field(10.0, gt=0, validation_alias="EASEL_LEASE_S")
    sweep_interval_s: float = Field(5.0, gt=0, validation_alias="EASEL_SWEEP_INTERVAL_S")
    max_attempts: int = Field(3, ge=1, validation_alias="EASEL_MAX_ATTEMPTS")
    generation_timeout_s: float = Field(600.0, gt=0, validation_alias="EASEL_GENERATION_TIMEOUT_S")
    status_edit_interval_s: float = Field(
        1.0, ge=0, validation_alias="EASEL_STATUS_EDIT_INTERVAL_S"
    )
    shutdown_grace_s: float = Field(20.0, ge=0, validation_alias="EASEL_SHUTDOWN_GRACE_S")
    max_upload_bytes: int = Field(20_000_000, gt=0, validation_alias="EASEL_MAX_UPLOAD_BYTES")
    url_ttl_s: int = Field(86_400, gt=0, le=604_800, validation_alias="EASEL_URL_TTL_S")
    admins: str = Field("", validation_alias="EASEL_ADMINS")
    secret_key: SecretStr | None = Field(None, validation_alias="EASEL_SECRET_KEY")
    web_host: str = Field("0.0.0.0", validation_alias="EASEL_WEB_HOST")
    web_port: int = Field(8080, ge=0, le=65535, validation_alias="EASEL_WEB_PORT")
    log_format: Literal["plain", "json"] = Field("plain", validation_alias="EASEL_LOG_FORMAT")
    log_level: str = Field("INFO", validation_alias="EASEL_LOG_LEVEL")
    health_port: int | None = Field(None, ge=1, le=65535, validation_alias="EASEL_HEALTH_PORT")
    wait_for_config: bool = Field(False, validation_alias="EASEL_WAIT_FOR_CONFIG")

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        if value.upper() not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return value.upper()

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        scheme = value.get_secret_value().partition("://")[0] if value else "postgresql"
        if scheme not in ("postgresql", "postgres"):
            raise ValueError(
                f"must be a PostgreSQL URL like postgresql://USER:PASSWORD@HOST:5432/DB "
                f"(this one starts with {scheme[:20]!r})"
            )
        return value

    @property
    def admin_ids(self) -> frozenset[str]:
        return frozenset(part.strip() for part in self.admins.split(",") if part.strip())

    @property
    def local_images_dir(self) -> Path:
        return self.images_dir or self.data_dir / "images"


class SettingsError(Exception):
    """A setting has a value Easel cannot use; the message names the setting."""


def load_settings(**overrides: object) -> Settings:
    """Read settings; turn pydantic's report into one line per wrong setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except UnicodeDecodeError as exc:
        raise SettingsError(
            f".env is not UTF-8 text (byte {exc.object[exc.start]:#04x} at position {exc.start}): "
            "save it as UTF-8"
        ) from None
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = _field_of(error["loc"])
            shown = "" if _is_secret(field) else f" (got {str(error.get('input'))[:80]!r})"
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{_env_name(field)}: {message}{shown}")
        raise SettingsError("invalid setting " + "; ".join(problems)) from None


def _field_of(loc: tuple[int | str, ...]) -> str:
    """The field behind an error location, which pydantic gives by alias or by name."""
    key = str(loc[0]) if loc else "?"
    for name, info in Settings.model_fields.items():
        alias = info.validation_alias
        choices = alias.choices if isinstance(alias, AliasChoices) else [alias]
        if key == name or key in choices:
            return name
    return key


def _env_name(field: str) -> str:
    info = Settings.model_fields.get(field)
    alias = info.validation_alias if info else None
    if isinstance(alias, str):
        return alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return field


def _is_secret(field: str) -> bool:
    info = Settings.model_fields.get(field)
    return info is not None and "SecretStr" in str(info.annotation)
