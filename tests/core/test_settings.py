"""Settings from the environment, flags and Airflow Connection fields; the secret never shows."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from runai_extract.core.errors import ConfigError
from runai_extract.core.settings import load_settings, require_api, settings_from_connection


def test_env_then_flags(tmp_path: Path) -> None:
    env = {
        "RUNAI_BASE_URL": "https://acme.run.ai/",
        "RUNAI_CLIENT_ID": "svc",
        "RUNAI_CLIENT_SECRET": "hunter2",
        "RUNAI_LEDGER_HOME": str(tmp_path),
    }
    settings = load_settings(env, client_id="other")
    assert settings.base_url == "https://acme.run.ai"
    assert settings.client_id == "other"
    assert settings.home == tmp_path
    assert settings.lake_uri == str(tmp_path / "lake")
    assert settings.warehouse_path == tmp_path / "warehouse.duckdb"
    assert settings.verify_tls is True
    assert "hunter2" not in repr(settings) and "hunter2" not in f"{settings.client_secret}"
    assert settings.client_secret.reveal() == "hunter2"


def test_missing_api_settings_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="RUNAI_BASE_URL, RUNAI_CLIENT_SECRET"):
        require_api(load_settings({"RUNAI_CLIENT_ID": "svc"}, home=tmp_path))


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RUNAI_BASE_URL": "acme.run.ai"}, "must be an http"),
        ({"RUNAI_BASE_URL": "https://u:p@acme.run.ai"}, "must not carry credentials"),
        ({"RUNAI_VERIFY_TLS": "maybe"}, "RUNAI_VERIFY_TLS must be true or false"),
        ({"RUNAI_MAX_ATTEMPTS": "many"}, "RUNAI_MAX_ATTEMPTS must be an integer"),
    ],
)
def test_bad_values_get_clear_errors(env: dict[str, str], message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(env, home=tmp_path)


def test_tls_verification_off_takes_an_explicit_setting(tmp_path: Path) -> None:
    assert load_settings({}, home=tmp_path).verify_tls is True
    assert load_settings({"RUNAI_VERIFY_TLS": "false"}, home=tmp_path).verify_tls is False


@pytest.mark.parametrize(
    ("host", "port", "schema", "expected"),
    [
        ("http://127.0.0.1:8765", None, None, "http://127.0.0.1:8765"),
        ("https://acme.run.ai", None, None, "https://acme.run.ai"),
        ("acme.run.ai", None, None, "https://acme.run.ai"),
        ("127.0.0.1", 8765, "http", "http://127.0.0.1:8765"),
    ],
)
def test_connection_fields(
    host: str, port: int | None, schema: str | None, expected: str, tmp_path: Path
) -> None:
    settings = settings_from_connection(
        host=host,
        port=port,
        schema=schema,
        login="svc",
        password="pw",
        extra={"ledger_home": str(tmp_path)},
        env={},
    )
    assert settings.base_url == expected
    assert settings.home == tmp_path
    assert settings.client_secret.reveal() == "pw"


def test_connection_without_host_is_refused() -> None:
    with pytest.raises(ConfigError, match="no host"):
        settings_from_connection(host="", port=None, schema=None, login="svc", password="pw", env={})


def _connection_tls(value: object, tmp_path: Path) -> bool:
    return settings_from_connection(
        host="https://acme.run.ai",
        port=None,
        schema=None,
        login="svc",
        password="pw",
        extra={"ledger_home": str(tmp_path), "verify_tls": value},
        env={},
    ).verify_tls


@pytest.mark.parametrize(
    ("value", "expected"),
    [("on", True), ("True ", True), (True, True), ("false", False), (False, False), ("0", False)],
)
def test_connection_verify_tls_reads_like_the_environment(
    value: object, expected: bool, tmp_path: Path
) -> None:
    assert _connection_tls(value, tmp_path) is expected


@pytest.mark.parametrize("value", ["ture", "maybe", "2"])
def test_connection_verify_tls_typo_is_refused_not_read_as_off(value: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"verify_tls extra must be true or false, got '{value}'"):
        _connection_tls(value, tmp_path)


def test_retention_days_for_every_stream_or_per_stream(tmp_path: Path) -> None:
    days = timedelta(days=1)
    assert load_settings({}, home=tmp_path).retention == {
        "audit": 90 * days,
        "workloads": 90 * days,
        "metrics": 90 * days,
    }
    assert set(load_settings({"RUNAI_LEDGER_RETENTION_DAYS": "30"}, home=tmp_path).retention.values()) == {
        30 * days
    }
    mixed = load_settings({"RUNAI_LEDGER_RETENTION_DAYS": "audit=180, metrics=14"}, home=tmp_path).retention
    assert mixed == {"audit": 180 * days, "workloads": 90 * days, "metrics": 14 * days}
    assert load_settings({}, home=tmp_path, retention="workloads=7").retention["workloads"] == 7 * days


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("audit=ninety", r"RUNAI_LEDGER_RETENTION_DAYS \(audit\) must be a whole number of days"),
        ("logs=30", "RUNAI_LEDGER_RETENTION_DAYS: unknown stream 'logs'"),
        ("0", "must be a whole number of days \\(at least 1\\), got '0'"),
    ],
)
def test_bad_retention_is_refused(value: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings({"RUNAI_LEDGER_RETENTION_DAYS": value}, home=tmp_path)
