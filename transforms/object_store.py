"""How the lake reaches an S3-compatible object store: one reading of the standard AWS variables.

Three clients touch the lake and each has its own way to be configured: delta-rs (commits, the
log) takes a dict of storage options, pyarrow (data files, log entries) an ``S3FileSystem``, and
DuckDB without its httpfs extension an fsspec filesystem (s3fs). Reading the environment once,
here, is what keeps them pointed at the same endpoint with the same credentials.

Variables (the ones every AWS tool reads): AWS_ENDPOINT_URL (a MinIO, Ceph or local server;
empty for AWS itself), AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN (empty: the
default credential chain, e.g. an instance or pod role), AWS_REGION (or AWS_DEFAULT_REGION),
AWS_ALLOW_HTTP=true for a plain-http endpoint, AWS_CONDITIONAL_PUT (default ``etag``).

Why ``conditional_put=etag``: a Delta commit is "create log entry N only if it does not exist".
S3-compatible stores reach that through conditional PUTs; with it, concurrent writers from
several machines are ordered by the store (4 writer processes on a moto server lost nothing),
with no DynamoDB lock table to run.

The secret key and session token are :class:`Secret`: a repr, log line or exception that shows
an ObjectStore never shows them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from runai_extract.core.errors import ConfigError
from runai_extract.core.settings import Secret, parse_bool

S3_SCHEMES = ("s3", "s3a")


@dataclass(frozen=True)
class ObjectStore:
    """Endpoint, region and credentials of an S3-compatible store (empty = the SDK's defaults)."""

    endpoint_url: str = ""
    region: str = ""
    access_key_id: str = ""
    secret_access_key: Secret = field(default=Secret(""), repr=False)
    session_token: Secret = field(default=Secret(""), repr=False)
    allow_http: bool = False
    conditional_put: str = "etag"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ObjectStore:
        env = os.environ if env is None else env
        endpoint = (env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or "").rstrip("/")
        if endpoint:
            parts = urlsplit(endpoint)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ConfigError(f"AWS_ENDPOINT_URL must be an http(s) URL, got {endpoint!r}")
            if parts.username or parts.password:
                raise ConfigError("AWS_ENDPOINT_URL must not carry credentials; use AWS_ACCESS_KEY_ID/SECRET")
        allow_http = parse_bool(env.get("AWS_ALLOW_HTTP") or "false", "AWS_ALLOW_HTTP")
        if endpoint.startswith("http://") and not allow_http:
            raise ConfigError(
                f"AWS_ENDPOINT_URL {endpoint} is plain http; set AWS_ALLOW_HTTP=true to allow it"
            )
        return cls(
            endpoint_url=endpoint,
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "",
            access_key_id=env.get("AWS_ACCESS_KEY_ID") or "",
            secret_access_key=Secret(env.get("AWS_SECRET_ACCESS_KEY") or ""),
            session_token=Secret(env.get("AWS_SESSION_TOKEN") or ""),
            allow_http=allow_http,
            conditional_put=env.get("AWS_CONDITIONAL_PUT") or "etag",
        )

    def delta_options(self) -> dict[str, str]:
        """Storage options for delta-rs (object_store's names); only what is set."""
        options = {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_REGION": self.region or ("us-east-1" if self.endpoint_url else ""),
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key.reveal(),
            "AWS_SESSION_TOKEN": self.session_token.reveal(),
            "AWS_ALLOW_HTTP": "true" if self.allow_http else "",
            "conditional_put": self.conditional_put,
        }
        return {k: v for k, v in options.items() if v}

    def pyarrow_fs(self) -> Any:
        """A pyarrow S3FileSystem for the same store (credentials left to the SDK's chain when unset)."""
        import pyarrow.fs as pafs

        kwargs: dict[str, Any] = {"region": self.region or "us-east-1"}
        if self.endpoint_url:
            parts = urlsplit(self.endpoint_url)
            kwargs["endpoint_override"] = parts.netloc + parts.path
            kwargs["scheme"] = parts.scheme
        if self.access_key_id:
            kwargs["access_key"] = self.access_key_id
            kwargs["secret_key"] = self.secret_access_key.reveal()
            if self.session_token:
                kwargs["session_token"] = self.session_token.reveal()
        return pafs.S3FileSystem(**kwargs)

    def fsspec_fs(self) -> Any:
        """An s3fs filesystem for DuckDB connections that have no httpfs extension."""
        try:
            import s3fs
        except ImportError as exc:  # the `s3` extra is not installed
            raise ConfigError(
                "reading an s3:// lake from DuckDB needs its httpfs extension or the s3fs package "
                "(pip install 'runai-ledger[s3]')"
            ) from exc
        client: dict[str, Any] = {"region_name": self.region or "us-east-1"}
        if self.endpoint_url:
            client["endpoint_url"] = self.endpoint_url
        return s3fs.S3FileSystem(
            key=self.access_key_id or None,
            secret=self.secret_access_key.reveal() or None,
            token=self.session_token.reveal() or None,
            client_kwargs=client,
            skip_instance_cache=True,
            use_listings_cache=False,
        )


def aws_environment(
    login: str | None, password: str | None, extra: Mapping[str, Any] | None
) -> dict[str, str]:
    """The AWS_* variables an Airflow AWS connection stands for (login = key id, password = secret).

    Its extra may name ``region_name``, ``endpoint_url`` (or ``aws_endpoint_url``) and
    ``aws_session_token``. Kept free of Airflow so it is tested like any function; the DAG puts the
    result into the task's environment, where every client of the lake reads it.
    """
    extra = dict(extra or {})
    endpoint = str(extra.get("endpoint_url") or extra.get("aws_endpoint_url") or "")
    values = {
        "AWS_ACCESS_KEY_ID": login or "",
        "AWS_SECRET_ACCESS_KEY": password or "",
        "AWS_SESSION_TOKEN": str(extra.get("aws_session_token") or ""),
        "AWS_REGION": str(extra.get("region_name") or ""),
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ALLOW_HTTP": "true" if endpoint.startswith("http://") else "",
    }
    return {k: v for k, v in values.items() if v}


def is_s3(uri: str) -> bool:
    return uri.split("://", 1)[0].lower() in S3_SCHEMES if "://" in uri else False
