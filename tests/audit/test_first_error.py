"""When a slice fails and recording it fails too, the slice's own error is the one that surfaces.

Why: the run record of a failed slice is written after the failure; a lake that refuses it
(blocked, read-only, lost) used to replace the API's error with its own, and the user went after
the wrong problem.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from runai_extract.audit.sync import backfill_audit
from runai_extract.core.errors import ApiError
from runai_extract.fake import FakeControlPlane
from runai_extract.fake.faults import FaultConfig
from tests.conftest import FAKE_NOW, fake_config, settings_for
from transforms.schemas import INGEST_RUNS_DIR


def test_a_failed_slice_raises_its_api_error_when_its_run_record_cannot_be_written(
    start_fake: Callable[..., FakeControlPlane], tmp_path: Path
) -> None:
    fake = start_fake(fake_config(faults=FaultConfig(error_rate=1.0, error_statuses=(500,))))
    settings = settings_for(fake, tmp_path, max_attempts=1, concurrency=1)
    # A plain file where the run records' table must go: writing the failed slice's record fails.
    blocked = Path(settings.lake_uri) / INGEST_RUNS_DIR
    blocked.parent.mkdir(parents=True)
    blocked.write_text("not a table")

    with pytest.raises(ApiError, match="HTTP 500"):
        backfill_audit(
            settings, start=FAKE_NOW - timedelta(hours=2), end=FAKE_NOW - timedelta(hours=1), now=FAKE_NOW
        )
    assert blocked.read_text() == "not a table"  # nothing was recorded: the block held
