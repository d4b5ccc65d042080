"""Settings: one object, read from the environment (prefix ``CORESPOND_``) and one
environment file: ``--env-file`` on the command line, else ``CORESPOND_ENV_FILE``, else
``.env`` in the working directory. The service and every command read the same file."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
from functools import lru_cache
from importlib import resources
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
# A source checkout (or an editable install of one), as opposed to an installed wheel, whose
# PROJECT_ROOT would be a folder of the virtualenv.
IN_CHECKOUT = (PROJECT_ROOT / "src" / "corespond" / "config.py").is_file()
# The one place an embedded PostgreSQL may keep its data: the checkout's var/.
DEVELOPMENT_DATA_DIR = PROJECT_ROOT / "var"
ENV_FILE_VARIABLE = "CORESPOND_ENV_FILE"
DEFAULT_ENV_FILE = Path(".env")
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def parse_secret_keys(value: str) -> list[bytes]:
    """The Fernet keys of a ``CORESPOND_SECRET_KEY`` value, newest first (separated by
    commas); ``ValueError`` saying what is wrong."""
    parts = [part.strip() for part in value.split(",")]
    if not all(parts):
        raise ValueError(
            "CORESPOND_SECRET_KEY has an empty key: give one Fernet key, or several "
            "separated by commas, newest first"
        )
    for number, part in enumerate(parts, 1):
        try:
            raw = base64.urlsafe_b64decode(part.encode("ascii"))
        except (binascii.Error, UnicodeEncodeError):
            raw = b""
        if len(part) != 44 or len(raw) != 32:
            which = f"key {number} of {len(parts)}" if len(parts) > 1 else "it"
            raise ValueError(
                "CORESPOND_SECRET_KEY must be Fernet keys (44 characters of URL-safe base64 "
                f"each) separated by commas, newest first; {which} is not one (make one with "
                "`corespond secret-key generate`)"
            )
    if len(set(parts)) != len(parts):
        raise ValueError("CORESPOND_SECRET_KEY names the same key twice")
    return [part.encode("ascii") for part in parts]


def packaged_migrations_dir() -> Path:
    """The Alembic scripts: inside the installed package (the wheel carries them as
    ``corespond/migrations``), else the checkout's ``migrations/``."""
    packaged = Path(str(resources.files("corespond"))) / "migrations"
    if (packaged / "env.py").is_file():
        return packaged
    return PROJECT_ROOT / "migrations"


class Settings(BaseSettings):
    """Everything an operator can set. Secrets are ``SecretStr`` so they never print."""

    model_config = SettingsConfigDict(
        env_prefix="CORESPOND_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    environment: Literal["development", "test", "production"] = Field(
        default="development",
        description="`production` for anything others reach: it refuses to start without "
        "DATABASE_URL and CORESPOND_SECRET_KEY, refuses demo data and takes only https "
        "callbacks to public addresses. `development` and `test` (what the tests run as) "
        "behave alike and listen on a loopback address only.",
    )
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
        default=DEVELOPMENT_DATA_DIR,
        description="Local state of development: the embedded PostgreSQL's data and the "
        "development secret key. An embedded database is started only under the checkout's "
        "var/.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Fernet key that encrypts stored secrets (CAD signing secrets, the push "
        "key) and keys the audit log's chain. Required in production. To rotate it, several "
        "keys separated by commas, newest first: the newest encrypts, every one decrypts "
        "(docs/operations.md, `corespond secret-key rotate`).",
    )
    migrations_dir: Path = Field(
        default_factory=packaged_migrations_dir,
        description="The Alembic scripts; the installed package carries its own.",
    )
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

    host: str = Field(
        default="127.0.0.1",
        description="Interface `serve` listens on. Outside production only a loopback "
        "address is allowed.",
    )
    port: int = Field(default=8000, ge=1, le=65535, description="Port `serve` listens on.")
    log_level: str = Field(
        default="INFO", description="DEBUG, INFO, WARNING or ERROR: the lowest level logged."
    )
    log_json: bool | None = Field(
        default=None,
        description="Log JSON lines (true) or lines for people (false); unset: JSON unless "
        "stderr is a terminal. One format either way, access lines included.",
    )

    source_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        le=300,
        description="How long a CAD source's settings and secrets are kept for receiving its "
        "events; any change to a source, by any process, is heard at once (a NOTIFY) and "
        "forgets it. 0: read on every event.",
    )
    max_event_bytes: int = Field(
        default=64 * 1024, ge=1024, description="Largest CAD event body accepted (then 413)."
    )
    max_body_bytes: int = Field(
        default=256 * 1024,
        ge=1024,
        description="Largest request body any JSON endpoint reads (roster imports have "
        "their own, larger limit).",
    )
    secret_rotation_grace_hours: float = Field(
        default=24.0,
        ge=0,
        description="How long a rotated CAD signing secret keeps working, unless "
        "`sources rotate-secret --grace-hours` says otherwise.",
    )

    worker_enabled: bool = Field(
        default=True,
        description="Run the background jobs in `serve` too; false on API instances when "
        "`corespond worker` processes run them.",
    )
    worker_http_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port `corespond worker` answers /healthz and /metrics on (at "
        "CORESPOND_HOST; /metrics under the same token rule as the API's); unset: none. The "
        "jobs' metrics are counted where the jobs run.",
    )
    worker_sweep_seconds: float = Field(
        default=5.0, gt=0, description="Sweep for CAD events whose NOTIFY was missed."
    )
    worker_batch_size: int = Field(
        default=100, ge=1, description="CAD events the worker claims at a time."
    )
    outbound_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Time limit of one delivery to a CAD callback."
    )

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
        default=50.0,
        gt=0,
        description="CAD events a second per source, per process (`serve --workers N`: N "
        "times this).",
    )
    rate_limit_cad_burst: float = Field(
        default=200.0, ge=1, description="CAD events a source may send at once above its rate."
    )
    rate_limit_writes_per_second: float = Field(
        default=10.0,
        gt=0,
        description="Other writes a second per API key, per process (`serve --workers N`: N "
        "times this).",
    )
    rate_limit_writes_burst: float = Field(
        default=50.0, ge=1, description="Writes a key may make at once above its rate."
    )
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
    relay_per_source: int = Field(
        default=2,
        ge=1,
        le=32,
        description=(
            "Of those, at most this many to one CAD source (per process), so that a CAD "
            "whose callback hangs holds no more than these and the others' go on."
        ),
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

    @field_validator("secret_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # `CORESPOND_SECRET_KEY=` left empty in the template: unset, so production says it is
        # required rather than that it is malformed.
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        return None if isinstance(text, str) and not text.strip() else value

    @field_validator("secret_key")
    @classmethod
    def _fernet_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_secret_keys(value.get_secret_value())
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
    person_retention_days: float = Field(
        default=365.0,
        ge=30,
        le=10 * 366,
        description="Days a person met after a call is kept identified once they have no "
        "live consent (none left: revoked or run out) and nothing has been done with them "
        "(met, a consent signed or ended, a referral, a follow-up due or done); then the "
        "daily retention pass drops their name, contact and typed signatures (counts, dates "
        "and county stay, for the program's figures).",
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


class EnvFileError(ValueError):
    """The environment file named cannot be read."""


_chosen_env_file: Path | None = None


def use_env_file(path: Path | None) -> None:
    """Read settings from ``path`` from now on (``None``: ``CORESPOND_ENV_FILE``, else
    ``.env`` in the working directory)."""
    global _chosen_env_file
    _chosen_env_file = path
    get_settings.cache_clear()


def env_file() -> tuple[Path, bool]:
    """The environment file settings are read from, and whether it was named (a named file
    must exist; ``.env`` in the working directory is read only if it is there)."""
    if _chosen_env_file is not None:
        return _chosen_env_file, True
    named = os.environ.get(ENV_FILE_VARIABLE, "").strip()
    if named:
        return Path(named), True
    return DEFAULT_ENV_FILE, False


def read_settings() -> Settings:
    """Settings from the environment and the environment file; a named file that cannot be
    read is an error that says so (pydantic-settings would skip it without a word)."""
    path, named = env_file()
    if named:
        try:
            with path.open("rb"):
                pass
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise EnvFileError(
                f"cannot read the environment file {path}: {reason}"
                + (
                    " (it is readable by root and the corespond group: run this as the "
                    "corespond user, e.g. `sudo -u corespond corespond …`)"
                    if isinstance(exc, PermissionError)
                    else ""
                )
            ) from None
    return Settings(_env_file=path)


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return read_settings()


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (an empty host means every interface)."""
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def bind_refusal(settings: Settings, host: str) -> str | None:
    """Why ``serve`` must not listen on ``host`` with these settings, or ``None``.

    Development (and test) mode is for one machine: an embedded database, a key file in
    var/, http callbacks, cookies that are not Secure. Anything reachable from elsewhere
    must say it is production."""
    if settings.environment == "production" or is_loopback(host):
        return None
    shown = host or "every interface"
    return (
        f"refusing to listen on {shown} in {settings.environment} mode, which is for this "
        "machine only (embedded database, plain-http callbacks, cookies without Secure). "
        "Set CORESPOND_ENVIRONMENT=production, with DATABASE_URL and CORESPOND_SECRET_KEY, "
        "in the environment file (see deploy/corespond.env.example), or listen on 127.0.0.1."
    )
