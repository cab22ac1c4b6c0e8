"""One ISO-8601 grammar: the CLI, the API reader, the audit normaliser and the fake agree on every input.

Four parsers used to each have their own idea (a lowercase 't' passed the normaliser and was a
400 from the fake; '+02' passed the CLI and was quarantined by the normaliser).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from runai_extract.core.errors import ConfigError
from runai_extract.core.times import parse_api_time, parse_time
from runai_extract.fake.filters import parse_instant
from runai_extract.fake.problems import ApiProblem
from transforms.audit import parse_timestamp

NOW = datetime(2026, 1, 1, tzinfo=UTC)
AT = datetime(2025, 6, 2, 8, 14, 58, tzinfo=UTC)


def _readings(text: str) -> list[datetime | None]:
    """What each reader makes of ``text`` (None = refused)."""
    out: list[datetime | None] = []
    for read, refusal in (
        (lambda t: parse_time(t, now=NOW), ConfigError),
        (parse_api_time, ValueError),
        (lambda t: parse_instant(t, "start"), ApiProblem),
        (lambda t: parse_timestamp(t)[0], ValueError),
    ):
        try:
            out.append(read(text))
        except refusal:
            out.append(None)
    return out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-06-02T08:14:58Z", AT),
        ("2025-06-02t08:14:58z", AT),
        ("2025-06-02T10:14:58+02", AT),
        ("2025-06-02T10:14:58+0200", AT),
        ("2025-06-02T02:44:58-05:30", AT),
        ("2025-06-02 08:14:58", AT),
        ("2025-06-02T08:14:58.000000999Z", AT),
        ("2025-06-02T08:14:58+24:00", None),
        ("\uff12\uff10\uff12\uff15-06-02T08:14:58Z", None),  # full-width digits
        ("2025-13-02T08:14:58Z", None),
        ("yesterday", None),
    ],
)
def test_every_reader_reads_a_full_date_time_the_same_way(text: str, expected: datetime | None) -> None:
    assert _readings(text) == [expected] * 4
