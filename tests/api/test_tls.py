"""TLS: certificates are verified by default; skipping the check takes an explicit setting.

The fake control plane serves https on loopback with a self-signed certificate (made with the
openssl command line for this test), which is exactly what a man-in-the-middle would present.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from runai_extract.audit.sync import sync_audit
from runai_extract.core.errors import ConfigError
from runai_extract.fake import FakeControlPlane
from runai_extract.ledger.watermarks import StateStore
from tests.cli.test_cli import api_env, one_error_line, run_cli
from tests.conftest import FAKE_NOW, fake_config, settings_for
from tests.httpfakes import CountingTransport
from transforms.storage import Lake

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


@pytest.fixture
def https_fake(tmp_path: Path) -> Iterator[FakeControlPlane]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    fake = FakeControlPlane(fake_config(days=1, events_per_day=200), port=0, tls=(str(cert), str(key)))
    fake.start()
    yield fake
    fake.stop()


def test_an_untrusted_certificate_is_refused_by_default(https_fake: FakeControlPlane, tmp_path: Path) -> None:
    settings = settings_for(https_fake, tmp_path)
    assert settings.verify_tls is True and https_fake.base_url.startswith("https://")
    transport = CountingTransport()  # verifies certificates, like the client's default transport
    with pytest.raises(ConfigError, match="RUNAI_VERIFY_TLS") as caught:
        sync_audit(settings, now=FAKE_NOW + timedelta(minutes=5), transport=transport)
    assert "certificate" in str(caught.value).lower()
    assert transport.sent == 1  # a certificate is not retried: the sync's slices never start
    assert https_fake.request_log == []
    assert StateStore(Lake(settings.lake_uri)).read("audit") is None


def test_an_untrusted_certificate_is_one_line_from_the_cli(
    https_fake: FakeControlPlane, tmp_path: Path
) -> None:
    result = run_cli("sync", "audit", env=api_env(https_fake), home=tmp_path)
    assert result.returncode == 2
    line = one_error_line(result)
    assert "TLS certificate verification failed" in line and https_fake.base_url in line


def test_turning_verification_off_is_explicit_and_then_works(
    https_fake: FakeControlPlane, tmp_path: Path
) -> None:
    settings = settings_for(https_fake, tmp_path, verify_tls=False)
    summary = sync_audit(settings, now=FAKE_NOW + timedelta(minutes=5))
    assert summary.rows_new == len(https_fake.simulator.audit_ids(FAKE_NOW - timedelta(days=7), FAKE_NOW))
