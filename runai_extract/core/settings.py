"""Settings: one frozen object built from the environment and overridden by flags.

The environment names are the ones a Run:ai admin already knows (RUNAI_BASE_URL,
RUNAI_CLIENT_ID, RUNAI_CLIENT_SECRET) plus RUNAI_LEDGER_HOME for where the ledger lives. The
client secret is wrapped in :class:`Secret` so that printing, logging or formatting a Settings
object can never reveal it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from runai_extract.core.errors import ConfigError

DEFAULT_HOME = ".ledger"

# The control plane keeps audit events 90 days (Run:ai docs: Event History). Workload history
# and metrics retention is unspecified; 90 days is assumed until the tenant says otherwise.
DEFAULT_RETENTION: Mapping[str, timedelta] = {
    "audit": timedelta(days=90),
    "workloads": timedelta(days=90),
    "metrics": timedelta(days=90),
}


class Secret:
    """A string that refuses to show itself in repr/str/format; call reveal() at the one place it is sent."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Settings:
    """Everything a sync needs; build with :func:`load_settings`."""

    base_url: str
    client_id: str
    client_secret: Secret = field(repr=False)
    home: Path
    lake_uri: str
    verify_tls: bool = True
    page_size: int = 1000
    overlap: timedelta = timedelta(minutes=10)
    settle_lag: timedelta = timedelta(minutes=2)
    # A recheck seals a clean window only once it ended this long ago (late writes settle first).
    seal_after: timedelta = timedelta(hours=1)
    # How long the tenant's control plane keeps each stream's records (RUNAI_LEDGER_RETENTION_DAYS).
    retention: Mapping[str, timedelta] = field(default_factory=lambda: dict(DEFAULT_RETENTION))
    # Warn when a watermark is within this of falling out of the API's retention (audit: 90 days).
    retention_margin: timedelta = timedelta(days=10)
    # A run that stores only part of what changed fails once it is the Nth such run in a row, or
    # once the watermark it holds back is older than stall_after: a stuck watermark must be loud.
    stall_runs: int = 3
    stall_after: timedelta = timedelta(hours=24)
    # HMAC key of the pseudonymised views (RUNAI_LEDGER_PSEUDONYM_KEY); empty = those views are off.
    pseudonym_key: Secret = field(default=Secret(""), repr=False)
    slice_length: timedelta = timedelta(days=1)
    initial_lookback: timedelta = timedelta(days=90)
    max_attempts: int = 8
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    retry_after_cap: float = 120.0
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    concurrency: int = 4
    lock_wait: float = 0.0
    # Spacing of the workloads' GPU metric samples (RUNAI_LEDGER_METRICS_RESOLUTION_S): one a minute.
    metrics_resolution: timedelta = timedelta(seconds=60)

    @property
    def warehouse_path(self) -> Path:
        return self.home / "warehouse.duckdb"

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with the given fields replaced (None values are ignored, so flags can be passed as-is)."""
        clean = {k: v for k, v in changes.items() if v is not None}
        for name in ("client_secret", "pseudonym_key"):
            if name in clean and isinstance(clean[name], str):
                clean[name] = Secret(clean[name])
        if isinstance(clean.get("retention"), str):  # the --retention-days flag, as the variable reads
            clean["retention"] = parse_retention(clean["retention"])
        return _validated(replace(self, **clean))


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build settings from the environment (``env`` defaults to os.environ) and flag overrides."""
    env = os.environ if env is None else env
    home = Path(overrides.pop("home", None) or env.get("RUNAI_LEDGER_HOME") or DEFAULT_HOME).expanduser()
    home = home.resolve()
    lake_uri = overrides.pop("lake_uri", None) or env.get("RUNAI_LEDGER_LAKE") or str(home / "lake")
    settings = Settings(
        base_url=(env.get("RUNAI_BASE_URL") or "").rstrip("/"),
        client_id=env.get("RUNAI_CLIENT_ID") or "",
        client_secret=Secret(env.get("RUNAI_CLIENT_SECRET") or ""),
        home=home,
        lake_uri=lake_uri,
        verify_tls=_env_bool(env, "RUNAI_VERIFY_TLS", True),
        pseudonym_key=Secret(env.get("RUNAI_LEDGER_PSEUDONYM_KEY") or ""),
        retention_margin=timedelta(
            days=_env_int(env, "RUNAI_LEDGER_RETENTION_MARGIN_DAYS", Settings.retention_margin.days)
        ),
        retention=parse_retention(env.get("RUNAI_LEDGER_RETENTION_DAYS") or ""),
        stall_runs=_env_int(env, "RUNAI_LEDGER_STALL_RUNS", Settings.stall_runs),
        stall_after=timedelta(
            hours=_env_int(env, "RUNAI_LEDGER_STALL_HOURS", Settings.stall_after // timedelta(hours=1))
        ),
        max_attempts=_env_int(env, "RUNAI_MAX_ATTEMPTS", Settings.max_attempts),
        # Slices paged at once, and their length (a day can be cut into pieces that page in parallel).
        concurrency=_env_int(env, "RUNAI_CONCURRENCY", Settings.concurrency),
        slice_length=timedelta(
            minutes=_env_int(env, "RUNAI_SLICE_MINUTES", Settings.slice_length // timedelta(minutes=1))
        ),
        metrics_resolution=timedelta(
            seconds=_env_int(env, "RUNAI_LEDGER_METRICS_RESOLUTION_S", Settings.metrics_resolution.seconds)
        ),
    )
    return settings.with_overrides(**overrides)


def require_api(settings: Settings) -> Settings:
    """Fail with one clear line when the API settings a sync needs are missing."""
    missing = [
        name
        for name, value in (
            ("RUNAI_BASE_URL", settings.base_url),
            ("RUNAI_CLIENT_ID", settings.client_id),
            ("RUNAI_CLIENT_SECRET", settings.client_secret),
        )
        if not value
    ]
    if missing:
        raise ConfigError(f"missing configuration: {', '.join(missing)} (set the variable or pass the flag)")
    return settings


def _validated(settings: Settings) -> Settings:
    if settings.base_url:
        parts = urlsplit(settings.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"RUNAI_BASE_URL must be an http(s) URL, got {settings.base_url!r}")
        if parts.username or parts.password:
            raise ConfigError("RUNAI_BASE_URL must not carry credentials; use RUNAI_CLIENT_ID/SECRET")
    if not 1 <= settings.page_size <= 1000:
        raise ConfigError(f"page size must be 1..1000 (the API's cap), got {settings.page_size}")
    if settings.slice_length < timedelta(minutes=1) or settings.overlap < timedelta(0):
        raise ConfigError("slice length must be at least a minute and overlap non-negative")
    if settings.seal_after < timedelta(0):
        raise ConfigError(f"seal_after must be non-negative, got {settings.seal_after}")
    if settings.retention_margin < timedelta(0):
        raise ConfigError(f"the retention margin must be non-negative, got {settings.retention_margin}")
    if settings.stall_runs < 1 or settings.stall_after <= timedelta(0):
        raise ConfigError("stall runs must be at least 1 and the stall age positive")
    if settings.max_attempts < 1 or settings.concurrency < 1:
        raise ConfigError("max attempts and concurrency must be at least 1")
    return settings


def parse_retention(text: str) -> dict[str, timedelta]:
    """``90`` (every stream) or ``audit=90,workloads=30``: days the control plane keeps each stream.

    Streams not named keep their default (DEFAULT_RETENTION); an unknown stream or a day count
    that is not a positive integer is a ConfigError naming it.
    """
    retention = dict(DEFAULT_RETENTION)
    text = text.strip()
    if not text:
        return retention
    if "=" not in text:
        days = _positive_days(text, "RUNAI_LEDGER_RETENTION_DAYS")
        return {stream: days for stream in retention}
    for part in text.split(","):
        stream, _, value = (piece.strip() for piece in part.partition("="))
        if stream not in retention:
            raise ConfigError(
                f"RUNAI_LEDGER_RETENTION_DAYS: unknown stream {stream!r}; choose from {', '.join(retention)}"
            )
        retention[stream] = _positive_days(value, f"RUNAI_LEDGER_RETENTION_DAYS ({stream})")
    return retention


def _positive_days(raw: str, name: str) -> timedelta:
    try:
        days = int(raw)
    except ValueError:
        days = 0
    if days < 1:
        raise ConfigError(f"{name} must be a whole number of days (at least 1), got {raw!r}")
    return timedelta(days=days)


def _env_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None


def _env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    return parse_bool(raw, name)


def parse_bool(raw: object, name: str) -> bool:
    """One reading of a yes/no setting for every source (environment, Airflow extras, JSON booleans).

    Anything unrecognised is an error rather than False: a typo in ``verify_tls`` must not turn
    certificate checks off without a word.
    """
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def settings_from_connection(
    *,
    host: str | None,
    port: int | None,
    schema: str | None,
    login: str | None,
    password: str | None,
    extra: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Settings from the fields of an Airflow Connection (host = base URL, login = id, password = secret).

    Kept free of Airflow so it is tested like any other function: the DAG passes the fields in.
    A host given as a full URL is used as-is; a bare host gets ``schema`` (or https) and the port.
    The ledger home comes from the connection's extra ``ledger_home`` or RUNAI_LEDGER_HOME.
    """
    extra = dict(extra or {})
    host = (host or "").strip()
    if not host:
        raise ConfigError("the Run:ai connection has no host; set it to the control-plane URL")
    if "://" in host:
        base_url = host
        if port and urlsplit(host).port is None:
            base_url = f"{host.rstrip('/')}:{port}"
    else:
        scheme = schema if schema in ("http", "https") else "https"
        base_url = f"{scheme}://{host}" + (f":{port}" if port else "")
    overrides: dict[str, Any] = {
        "base_url": base_url.rstrip("/"),
        "client_id": login,
        "client_secret": password,
    }
    if extra.get("ledger_home"):
        overrides["home"] = extra["ledger_home"]
    if extra.get("lake_uri"):
        overrides["lake_uri"] = extra["lake_uri"]
    if "verify_tls" in extra:
        overrides["verify_tls"] = parse_bool(extra["verify_tls"], "the connection's verify_tls extra")
    return require_api(load_settings(env, **overrides))
