"""Settings: one object, read from the environment (prefix ``CORESPOND_``) and ``.env``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    Field,
    IPvAnyNetwork,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    """Everything an operator can set. Secrets are ``SecretStr`` so they never print."""

    model_config = SettingsConfigDict(
        env_prefix="CORESPOND_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    environment: Literal["development", "test", "production"] = "development"
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "CORESPOND_DATABASE_URL"),
        description="PostgreSQL URL the service runs with; unset means an embedded PostgreSQL "
        "under data_dir.",
    )
    migration_database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL of the schema's owner, used only to migrate; unset: "
        "DATABASE_URL (then the service runs as the owner and could rewrite its audit log).",
    )
    data_dir: Path = Field(
        default=PROJECT_ROOT / "var",
        description="Local state: embedded PostgreSQL data and the development secret key.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Fernet key that encrypts CAD signing secrets at rest. Required in production.",
    )
    migrations_dir: Path = PROJECT_ROOT / "migrations"
    geo_states: tuple[str, ...] = Field(
        default=("54",),
        description="State FIPS codes of the service area (data built by tools/build_geo.py).",
    )
    program_timezone: str = Field(
        default="America/New_York",
        description="Time zone shift times are entered and shown in when they carry no offset.",
    )
    required_credentials: tuple[str, ...] = Field(
        default=("prss_certification", "cjis_background", "nda"),
        description="Credentials a peer must hold, unexpired, to be offered a call.",
    )
    triage_rules_file: Path | None = Field(
        default=None,
        description="YAML file extending the packaged triage rules; reloaded when it changes.",
    )

    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    log_json: bool = True

    max_event_bytes: int = Field(default=64 * 1024, ge=1024)
    max_body_bytes: int = Field(
        default=256 * 1024,
        ge=1024,
        description="Largest request body any JSON endpoint reads (roster imports have "
        "their own, larger limit).",
    )
    secret_rotation_grace_hours: float = Field(default=24.0, ge=0)

    worker_enabled: bool = True
    worker_sweep_seconds: float = Field(default=5.0, gt=0)
    worker_batch_size: int = Field(default=100, ge=1)
    outbound_timeout_seconds: float = Field(default=10.0, gt=0)

    ack_timeout_seconds: float = Field(
        default=120.0,
        gt=0,
        description="How long a peer has to accept an offer before it goes to the next one.",
    )
    public_url: str | None = Field(
        default=None,
        description="Where people and providers reach this service (https://…), for links in "
        "SMS and the SMS provider's delivery callbacks.",
    )
    sms_url: str | None = Field(
        default=None,
        description="The SMS provider's API base (Twilio's REST shape, e.g. "
        "https://api.twilio.com); unset: no SMS.",
    )
    sms_account_sid: str | None = Field(default=None, description="The SMS account's id.")
    sms_auth_token: SecretStr | None = Field(
        default=None, description="The SMS account's token: API auth and callback signatures."
    )
    sms_from: str | None = Field(default=None, description="The number SMS are sent from.")
    push_contact: str = Field(
        default="mailto:corespond@localhost",
        description="The contact push services see in each Web Push request's VAPID claim "
        "(mailto: or https:); set it to the operator's address in production.",
    )
    auto_request_max_age_seconds: float = Field(
        default=300.0,
        gt=0,
        description="An agency's automatic requests are made only for calls whose latest CAD "
        "event occurred this recently; older ones are folded and triaged and wait for a "
        "dispatcher (an event replayed days later must not send a peer).",
    )
    fallback_max_km: float = Field(
        default=60.0,
        ge=0,
        description="Farthest a peer from a neighbouring county may be from the call "
        "(straight-line km) to be offered it when no one in the county is free.",
    )
    neighbour_providers: bool = Field(
        default=False,
        description="Whether a dispatcher, told that no peer is free, may ask again with the "
        "providers of neighbouring counties (those that do not serve the call's county), "
        "within fallback_max_km.",
    )
    timer_sweep_seconds: float = Field(
        default=2.0,
        gt=0,
        description="How often offer deadlines and pending assignment work are checked.",
    )

    request_timeout_seconds: float = Field(
        default=30.0, gt=0, description="Longest a request may take before a 503 (imports exempt)."
    )
    rate_limit_cad_per_second: float = Field(
        default=50.0, gt=0, description="CAD events a second per source (per instance)."
    )
    rate_limit_cad_burst: float = Field(default=200.0, ge=1)
    rate_limit_writes_per_second: float = Field(
        default=10.0, gt=0, description="Other writes a second per API key (per instance)."
    )
    rate_limit_writes_burst: float = Field(default=50.0, ge=1)
    trusted_proxies: Annotated[tuple[IPvAnyNetwork, ...], NoDecode] = Field(
        default=(),
        description="Reverse proxies (IPs or CIDRs, comma-separated) whose X-Forwarded-For "
        "and X-Forwarded-Proto are believed; empty: no forwarded header is read.",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token /metrics asks for (at least 32 characters). In production "
        "/metrics answers 404 without one.",
    )
    docs: bool = Field(
        default=False,
        description="Serve /docs, /redoc and /openapi.json in production (the document "
        "needs an API key there); development and test always serve them.",
    )
    narrative_retention_days: float = Field(
        default=30.0,
        gt=0,
        description="Days after a call ends before its narrative, address and raw event text "
        "are purged (outcomes stay, de-identified).",
    )
    supervisor_refresh_seconds: float = Field(
        default=15.0, ge=0.5, description="How often the supervisor page refreshes itself."
    )
    relay_concurrency: int = Field(
        default=4, ge=1, le=32, description="Deliveries to CAD callbacks in flight at once."
    )
    relay_sweep_seconds: float = Field(
        default=5.0, gt=0, description="Safety-net sweep for due deliveries (NOTIFY wakes it)."
    )
    delivery_horizon_hours: float = Field(
        default=24.0, gt=0, description="How long a message is retried before it is dead."
    )
    delivery_backoff_cap_seconds: float = Field(
        default=600.0, gt=0, description="Longest wait between two attempts."
    )
    delivery_alert_after_seconds: float = Field(
        default=300.0,
        gt=0,
        description="A source whose deliveries have been failing this long raises an alert.",
    )
    alert_repeat_minutes: float = Field(
        default=10.0,
        gt=0,
        description="How often supervisors are told again of an unfilled request or failing "
        "deliveries until one of them acknowledges it (expiring credentials: daily).",
    )
    credential_alert_days: float = Field(
        default=30.0,
        ge=0,
        description="A required credential expiring within this many days raises an alert.",
    )
    alert_sweep_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How often alerts are checked: raised, resolved, their reminders sent.",
    )

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(item.strip() for item in value.split(",") if item.strip())
        return value

    @field_validator("metrics_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        # /metrics is not rate limited: a short token could be guessed.
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("CORESPOND_METRICS_TOKEN must be at least 32 characters")
        return value

    @model_validator(mode="after")
    def _production_needs_explicit_config(self) -> Settings:
        if self.environment == "production":
            if self.secret_key is None:
                raise ValueError("CORESPOND_SECRET_KEY is required in production")
            if self.database_url is None:
                raise ValueError("DATABASE_URL is required in production (no embedded database)")
            if "CHANGE-ME" in self.database_url:
                raise ValueError("DATABASE_URL still has the template's CHANGE-ME password")
            if len(self.secret_key.get_secret_value()) != 44:
                raise ValueError("CORESPOND_SECRET_KEY must be a Fernet key (44 characters)")
        return self

    # After the call: follow-ups and consent.
    followup_schedule: str = Field(
        default="1d,72h,7d,30d,2m-12m",
        description="The program's follow-up schedule after a contact with a person who "
        "consented: steps such as 72h (hours that pass), 1d, 2w, 3m (days, weeks, months on "
        "the program's clock) and 2m-12m (every month from the 2nd to the 12th).",
    )
    followup_grace_hours: float = Field(
        default=24.0,
        ge=0,
        le=24 * 31,
        description="How long after it is due a follow-up may still be done on time; then it "
        "is overdue and escalated to the provider's admin.",
    )
    followup_sweep_seconds: float = Field(
        default=60.0, gt=0, description="How often overdue follow-ups are looked for."
    )
    consent_max_days: int = Field(
        default=366,
        ge=1,
        le=3 * 366,
        description="The longest a person's consent may run before it must be signed again.",
    )

    @field_validator("followup_schedule")
    @classmethod
    def _readable_schedule(cls, value: str) -> str:
        from corespond.followups.schedule import ScheduleError, parse_schedule

        try:
            parse_schedule(value)
        except ScheduleError as exc:
            raise ValueError(f"CORESPOND_FOLLOWUP_SCHEDULE: {exc}") from None
        return value


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
