"""Reaching S3: the AWS variables, read once, never shown; and another engine reading the same tables."""

from __future__ import annotations

import pytest

from runai_extract.core.errors import ConfigError
from runai_extract.core.settings import settings_from_connection
from tests.conftest import S3_SECRET
from transforms.catalog import INGEST_RUNS_TABLE
from transforms.object_store import ObjectStore
from transforms.storage import Lake
from transforms.tables import Tables


def test_the_secret_key_never_shows_in_a_repr_or_an_error() -> None:
    store = ObjectStore.from_env(
        {"AWS_ACCESS_KEY_ID": "AKIA-test", "AWS_SECRET_ACCESS_KEY": S3_SECRET, "AWS_REGION": "eu-west-1"}
    )
    assert S3_SECRET not in repr(store) and S3_SECRET not in str(store)
    assert store.delta_options()["conditional_put"] == "etag"  # safe concurrent commits by default
    with pytest.raises(ConfigError, match="must not carry credentials") as caught:
        Lake(f"s3://AKIA-test:{S3_SECRET}@bucket/lake")
    assert S3_SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AWS_ENDPOINT_URL": "http://127.0.0.1:9000"}, "set AWS_ALLOW_HTTP=true"),
        ({"AWS_ENDPOINT_URL": "minio:9000"}, "must be an http"),
        ({"AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_ALLOW_HTTP": "maybe"}, "true or false"),
    ],
)
def test_bad_store_settings_fail_with_one_line_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ObjectStore.from_env(env)


def test_the_airflow_connection_extra_lake_uri_points_the_ledger_at_s3(s3_lake: str) -> None:
    settings = settings_from_connection(
        host="https://runai.example.com",
        port=None,
        schema=None,
        login="id",
        password="pw",
        extra={"lake_uri": s3_lake, "ledger_home": "/tmp/ledger-home"},
        env={},
    )
    assert settings.lake_uri == s3_lake
    lake = Lake(settings.lake_uri)
    Tables(lake).append(INGEST_RUNS_TABLE, INGEST_RUNS_TABLE.schema.empty_table())
    assert Tables(lake).exists(INGEST_RUNS_TABLE)


def test_polars_reads_the_audit_table_on_s3_as_delta(s3_lake: str) -> None:
    """The tested stand-in for Spark, Trino and Databricks: a Delta reader that is not ours (docs/deploy.md)."""
    from datetime import UTC, datetime

    import polars as pl
    import pyarrow as pa

    from transforms.catalog import AUDIT_EVENTS_TABLE

    lake = Lake(s3_lake)
    spec = AUDIT_EVENTS_TABLE
    row: dict[str, object] = {f.name: None if f.nullable else _filler(f.type) for f in spec.schema}
    row.update(
        event_id="e-1",
        event_time=datetime(2026, 11, 19, 10, tzinfo=UTC),
        event_date=datetime(2026, 11, 19).date(),
    )
    data = pa.Table.from_pylist([row], schema=spec.schema)
    Tables(lake).append(spec, data)

    frame = pl.scan_delta(Tables(lake).uri(spec), storage_options=lake.delta_options()).collect()
    assert frame["event_id"].to_list() == ["e-1"]
    assert str(frame["event_date"][0]) == "2026-11-19"


def _filler(kind: object) -> object:
    """A value for a required column the test does not care about."""
    from datetime import UTC, date, datetime

    import pyarrow as pa

    assert isinstance(kind, pa.DataType)
    if pa.types.is_timestamp(kind):
        return datetime(2026, 11, 19, tzinfo=UTC)
    if pa.types.is_date(kind):
        return date(2026, 11, 19)
    if pa.types.is_boolean(kind):
        return False
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        return 0
    if pa.types.is_list(kind):
        return []
    return "x"


def test_an_airflow_aws_connection_stands_for_the_aws_variables() -> None:
    from transforms.object_store import aws_environment

    env = aws_environment(
        "AKIA-test", S3_SECRET, {"region_name": "eu-west-1", "endpoint_url": "http://minio:9000"}
    )
    store = ObjectStore.from_env(env)
    assert (store.access_key_id, store.region, store.endpoint_url, store.allow_http) == (
        "AKIA-test",
        "eu-west-1",
        "http://minio:9000",
        True,
    )
    assert store.secret_access_key.reveal() == S3_SECRET
    assert aws_environment(None, None, {}) == {}  # no keys: the SDK's own chain (instance or pod role)
