"""Shared fixtures: the project's fake control plane on loopback and settings pointing at it."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from runai_extract.core.settings import Settings, load_settings
from runai_extract.fake import FakeConfig, FakeControlPlane, FaultConfig

# Property tests check behaviour, not speed: a per-example wall-clock deadline only measures how
# busy a shared 2-CPU machine is (speed goals live in bench/).
hypothesis_settings.register_profile("ledger", deadline=None)
hypothesis_settings.load_profile("ledger")

CLIENT_ID = "ledger-test"
CLIENT_SECRET = "s3cr3t-for-tests-only-7f1c"
# A fixed "now" for the simulated tenant, so windows and ground truth are reproducible.
FAKE_NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def fake_config(
    days: int = 2, events_per_day: int = 1500, faults: FaultConfig | None = None, seed: int = 11
) -> FakeConfig:
    return FakeConfig(
        seed=seed,
        days=days,
        events_per_day=events_per_day,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        now=FAKE_NOW,
        faults=faults or FaultConfig(),
    )


@pytest.fixture
def start_fake() -> Iterator[Callable[..., FakeControlPlane]]:
    """Start fakes with any config; all are stopped at the end of the test."""
    started: list[FakeControlPlane] = []

    def _start(config: FakeConfig | None = None) -> FakeControlPlane:
        fake = FakeControlPlane(config or fake_config(), port=0)
        fake.start()
        started.append(fake)
        return fake

    yield _start
    for fake in started:
        fake.stop()


@pytest.fixture
def fake(start_fake: Callable[..., FakeControlPlane]) -> FakeControlPlane:
    return start_fake()


def settings_for(fake: FakeControlPlane, home: Path, **overrides: object) -> Settings:
    """Settings for a sync against ``fake``, with fast retries so fault tests stay quick."""
    base = {
        "home": home,
        "base_url": fake.base_url,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "backoff_base": 0.01,
        "backoff_cap": 0.05,
        "retry_after_cap": 0.05,
        "initial_lookback": timedelta(days=7),
    }
    base.update(overrides)
    return load_settings({}, **base)


def cli_env(fake: FakeControlPlane, home: Path) -> dict[str, str]:
    """The environment for a `runai-ledger` subprocess against ``fake``: this shell's RUNAI_* left out."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNAI_")}
    env.update(
        RUNAI_BASE_URL=fake.base_url,
        RUNAI_CLIENT_ID=CLIENT_ID,
        RUNAI_CLIENT_SECRET=CLIENT_SECRET,
        RUNAI_LEDGER_HOME=str(home),
    )
    return env


# -- a real S3 API on loopback (moto's server), for the lake-on-S3 tests ----------------------------
S3_KEY_ID = "ledger-test-key"
# Distinctive, so a test can search logs, files and exceptions for it.
S3_SECRET = "s3-secret-never-logged-9d2e7a"


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3 server on a free loopback port for the whole session; yields its endpoint URL.

    A process of its own (``moto_server``), not a thread: a threaded server shares the test's GIL
    and made every S3 request wait on the test (measured: 5x slower). No docker, no network.
    Each test gets its own bucket, so tests never see each other's tables.
    """
    import shutil
    import socket
    import subprocess
    import sys
    import time

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    exe = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or "moto_server"
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("wb")
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{endpoint}/moto-api/", timeout=1.0)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start (exit {proc.poll()})") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def s3_environment(endpoint: str) -> dict[str, str]:
    """The standard AWS variables that point every client (delta-rs, pyarrow, s3fs) at ``endpoint``."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": S3_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": S3_SECRET,
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
    }


def new_bucket(endpoint: str, name: str) -> None:
    import boto3

    env = s3_environment(endpoint)
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_REGION"],
    ).create_bucket(Bucket=name)


@pytest.fixture
def s3_lake(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the local S3 server and the AWS variables set for it; yields the lake URI."""
    import uuid

    for name, value in s3_environment(s3_server).items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    bucket = f"ledger-{uuid.uuid4().hex[:12]}"
    new_bucket(s3_server, bucket)
    return f"s3://{bucket}/lake"


@pytest.fixture(params=["local", "s3"])
def lake_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The lake on local disk, then on S3: tests taking this run against both."""
    if request.param == "local":
        return str(tmp_path / "lake")
    return str(request.getfixturevalue("s3_lake"))
