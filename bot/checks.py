"""Start-up checks across settings: what a single field's validator cannot see.

Each problem is one sentence that names the setting to change, raised as a
SettingsError before any role starts, so nothing is accepted at start only to
fail later as an "internal error".
"""

from __future__ import annotations

from bot.settings import Settings, SettingsError
from core.catalog import Catalog

# The setting that turns each provider on (README, Configuration).
PROVIDER_KEYS = {
    "openai": "OPENAI_API_KEY",
    "google": "GEMINI_API_KEY (or GOOGLE_API_KEY)",
    "replicate": "REPLICATE_API_TOKEN",
}


def check_default_model(settings: Settings, catalog: Catalog, providers: set[str]) -> None:
    """EASEL_DEFAULT_MODEL names a model in the catalog whose provider is configured."""
    name = settings.default_model
    if not name:
        return
    model = next((m for m in catalog.models if m.name == name.lower().strip()), None)
    if model is None:
        raise SettingsError(
            f"EASEL_DEFAULT_MODEL: there is no model called {name[:40]!r} "
            f"(models: {', '.join(catalog.names())}; see `easel models`)"
        )
    if model.provider not in providers:
        key = PROVIDER_KEYS.get(model.provider, f"the {model.provider} provider's key")
        raise SettingsError(
            f"EASEL_DEFAULT_MODEL: {model.name!r} needs {key}, which is not set; "
            "set it or choose a configured model (see `easel models`)"
        )


def check_s3_credentials(settings: Settings) -> None:
    """With S3_BUCKET set, boto3's credential chain must find keys now, not at the first upload."""
    if not settings.s3_bucket:
        return
    import boto3

    if boto3.session.Session().get_credentials() is None:
        raise SettingsError(
            "S3_BUCKET is set but no S3 credentials were found: set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or another boto3 credential source such as AWS_PROFILE)"
        )


def check_slack_inbound(settings: Settings) -> None:
    """Slack's inbound half needs Socket Mode (app token) or HTTP mode (signing secret)."""
    if settings.slack_bot_token and not (settings.slack_app_token or settings.slack_signing_secret):
        raise SettingsError(
            "SLACK_BOT_TOKEN is set but Slack cannot send Easel events: set SLACK_APP_TOKEN "
            "(xapp-…, Socket Mode) or SLACK_SIGNING_SECRET (HTTP mode at /slack/events)"
        )


def check_discord_invite(settings: Settings) -> None:
    """`easel discord invite` asks Discord for the application behind DISCORD_TOKEN."""
    if settings.discord_token is None:
        raise SettingsError(
            "DISCORD_TOKEN is not set: the invite link needs the bot's token "
            "(Discord developer portal → your application → Bot → Reset Token)"
        )
