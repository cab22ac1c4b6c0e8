"""Window planning, slicing, and reading times: examples plus Hypothesis properties."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runai_extract.audit.windows import plan_window, split_window
from runai_extract.core.errors import ConfigError
from runai_extract.core.times import Window, format_api_time, parse_api_time, parse_duration, parse_time

NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
PLAN = {
    "until": None,
    "overlap": timedelta(minutes=10),
    "settle_lag": timedelta(minutes=2),
    "initial_lookback": timedelta(days=90),
}

aware = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC))
positive = st.timedeltas(min_value=timedelta(microseconds=1), max_value=timedelta(days=4))
non_negative = st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=6))


def test_first_run_reads_the_initial_lookback() -> None:
    window = plan_window(None, now=NOW, **PLAN)
    assert window == Window(NOW - timedelta(days=90), NOW - timedelta(minutes=2))


def test_watermark_minus_overlap_to_now_minus_settle_lag() -> None:
    watermark = NOW - timedelta(hours=1)
    window = plan_window(watermark, now=NOW, **PLAN)
    assert window == Window(watermark - timedelta(minutes=10), NOW - timedelta(minutes=2))


def test_explicit_start_wins_and_until_bounds_the_end() -> None:
    start = datetime(2025, 5, 1, tzinfo=UTC)
    until = datetime(2025, 5, 3, tzinfo=UTC)
    window = plan_window(NOW, now=NOW, start=start, **{**PLAN, "until": until})
    assert window == Window(start, until)


def test_until_after_the_settle_lag_does_not_extend_the_end() -> None:
    window = plan_window(None, now=NOW, **{**PLAN, "until": NOW + timedelta(days=1)})
    assert window is not None and window.end == NOW - timedelta(minutes=2)


def test_nothing_settled_yet_plans_no_window() -> None:
    assert plan_window(NOW - timedelta(minutes=1), now=NOW, **{**PLAN, "overlap": timedelta(0)}) is None
    assert plan_window(None, now=NOW, start=NOW, **PLAN) is None


def test_non_utc_inputs_are_normalised() -> None:
    plus_two = timezone(timedelta(hours=2))
    window = plan_window(NOW.astimezone(plus_two), now=NOW.astimezone(plus_two), **PLAN)
    assert window is not None and window.start.tzinfo is UTC and window.end.tzinfo is UTC
    assert window.start == NOW - timedelta(minutes=10)


@pytest.mark.parametrize("field", ["watermark", "now", "until", "start"])
def test_naive_datetimes_are_refused(field: str) -> None:
    naive = datetime(2025, 6, 1, 12)
    args = {"watermark": NOW - timedelta(hours=1), "now": NOW, **PLAN, field: naive}
    watermark = args.pop("watermark")
    with pytest.raises(ConfigError, match="timezone-aware"):
        plan_window(watermark, **args)  # type: ignore[arg-type]


def test_windows_refuse_naive_or_empty_ranges() -> None:
    with pytest.raises(ConfigError, match="timezone-aware"):
        Window(datetime(2025, 6, 1), NOW)
    with pytest.raises(ConfigError, match="end after it starts"):
        Window(NOW, NOW)
    assert Window(NOW, NOW + timedelta(hours=1)) < Window(NOW, NOW + timedelta(hours=2))


def test_split_cuts_at_midnight_and_at_slice_length() -> None:
    window = Window(datetime(2025, 6, 1, 20, tzinfo=UTC), datetime(2025, 6, 2, 13, tzinfo=UTC))
    assert split_window(window, timedelta(hours=6)) == [
        Window(datetime(2025, 6, 1, 20, tzinfo=UTC), datetime(2025, 6, 2, 0, tzinfo=UTC)),
        Window(datetime(2025, 6, 2, 0, tzinfo=UTC), datetime(2025, 6, 2, 6, tzinfo=UTC)),
        Window(datetime(2025, 6, 2, 6, tzinfo=UTC), datetime(2025, 6, 2, 12, tzinfo=UTC)),
        Window(datetime(2025, 6, 2, 12, tzinfo=UTC), datetime(2025, 6, 2, 13, tzinfo=UTC)),
    ]


def test_split_with_a_day_slice_gives_day_partitions() -> None:
    window = Window(datetime(2025, 6, 1, 0, tzinfo=UTC), datetime(2025, 6, 3, 0, tzinfo=UTC))
    assert [s.start.day for s in split_window(window, timedelta(days=1))] == [1, 2]


def test_split_refuses_a_non_positive_slice() -> None:
    with pytest.raises(ConfigError):
        split_window(Window(NOW, NOW + timedelta(hours=1)), timedelta(0))


@given(
    start=aware,
    length=st.timedeltas(min_value=timedelta(microseconds=1), max_value=timedelta(days=3)),
    # Bounded below so an example makes at most a few thousand slices, not billions.
    slice_length=st.timedeltas(min_value=timedelta(minutes=1), max_value=timedelta(days=2)),
)
def test_slices_tile_the_window_within_days_and_length(
    start: datetime, length: timedelta, slice_length: timedelta
) -> None:
    window = Window(start, start + length)
    slices = split_window(window, slice_length)
    assert slices[0].start == window.start and slices[-1].end == window.end
    for before, after in pairwise(slices):
        assert before.end == after.start  # no gap, no overlap
    for piece in slices:
        assert piece.start < piece.end
        assert piece.length <= slice_length
        last_instant = piece.end - timedelta(microseconds=1)
        assert piece.start.date() == last_instant.date()  # never crosses a UTC midnight


@settings(max_examples=200)
@given(
    first_now=aware,
    steps=st.lists(
        st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=8)), min_size=1, max_size=12
    ),
    overlap=non_negative,
    settle_lag=non_negative,
    lookback=positive,
)
def test_consecutive_windows_leave_no_gap_and_reread_exactly_the_overlap(
    first_now: datetime,
    steps: list[timedelta],
    overlap: timedelta,
    settle_lag: timedelta,
    lookback: timedelta,
) -> None:
    now, watermark, previous = first_now, None, None
    for step in steps:
        now += step
        window = plan_window(
            watermark, now=now, until=None, overlap=overlap, settle_lag=settle_lag, initial_lookback=lookback
        )
        if window is None:
            continue  # nothing settled: the watermark stays, the next run picks it up
        assert window.end == now - settle_lag
        if previous is not None:
            assert window.start == previous.end - overlap
            assert window.start <= previous.end
        watermark, previous = window.end, window


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-06-01T00:00:00Z", datetime(2025, 6, 1, tzinfo=UTC)),
        ("2025-06-01T02:30:00+02:00", datetime(2025, 6, 1, 0, 30, tzinfo=UTC)),
        ("2025-06-01T08:14:58.207Z", datetime(2025, 6, 1, 8, 14, 58, 207000, tzinfo=UTC)),
        ("2025-06-01", datetime(2025, 6, 1, tzinfo=UTC)),
        ("2025-06-01T09:00:00", datetime(2025, 6, 1, 9, tzinfo=UTC)),
        ("  2025-06-01 09:00  ", datetime(2025, 6, 1, 9, tzinfo=UTC)),
        ("now", NOW),
        ("NOW", NOW),
        ("-2d", NOW - timedelta(days=2)),
        ("-6h", NOW - timedelta(hours=6)),
        ("-30m", NOW - timedelta(minutes=30)),
        ("-1w", NOW - timedelta(weeks=1)),
    ],
)
def test_parse_time_forms(text: str, expected: datetime) -> None:
    parsed = parse_time(text, now=NOW)
    assert parsed == expected and parsed.tzinfo is UTC


@pytest.mark.parametrize("text", ["xyz", "", "2d", "-2x", "2025-13-01", "yesterday"])
def test_parse_time_rejects_with_a_hint(text: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_time(text, now=NOW)
    assert str(raised.value) == (
        f"cannot read time {text!r}: use ISO-8601 like 2025-06-01T00:00:00Z, a date, or -2d"
    )


def test_parse_time_defaults_to_the_real_clock_and_refuses_absurd_offsets() -> None:
    before = datetime.now(UTC)
    assert before <= parse_time("now") <= datetime.now(UTC)
    with pytest.raises(ConfigError, match="too far"):
        parse_time("-99999999d", now=NOW)


def test_parse_duration() -> None:
    assert parse_duration("10m") == timedelta(minutes=10)
    assert parse_duration(" 2H ") == timedelta(hours=2)
    assert parse_duration("1d") == timedelta(days=1)
    for bad in ("", "10", "m", "-5m", "1.5h", "99999999999d"):
        with pytest.raises(ConfigError, match="cannot read duration"):
            parse_duration(bad)


def test_format_api_time_is_utc_z_with_milliseconds() -> None:
    plus_two = timezone(timedelta(hours=2))
    value = datetime(2025, 6, 2, 10, 0, 0, 123987, tzinfo=plus_two)
    assert format_api_time(value) == "2025-06-02T08:00:00.123Z"
    assert format_api_time(datetime(2025, 6, 2, 8, tzinfo=UTC)) == "2025-06-02T08:00:00.000Z"
    with pytest.raises(ConfigError):
        format_api_time(datetime(2025, 6, 2, 8))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-06-02T08:14:58.207Z", datetime(2025, 6, 2, 8, 14, 58, 207000, tzinfo=UTC)),
        ("2025-06-02T08:14:58.207123456Z", datetime(2025, 6, 2, 8, 14, 58, 207123, tzinfo=UTC)),
        ("2025-06-02T10:14:58+02:00", datetime(2025, 6, 2, 8, 14, 58, tzinfo=UTC)),
        ("2023-06-06 12:09:18.211", datetime(2023, 6, 6, 12, 9, 18, 211000, tzinfo=UTC)),
    ],
)
def test_parse_api_time_is_lenient_and_utc(text: str, expected: datetime) -> None:
    assert parse_api_time(text) == expected


@given(aware)
def test_format_then_parse_round_trips_to_the_millisecond(value: datetime) -> None:
    assert parse_api_time(format_api_time(value)) == value.replace(
        microsecond=value.microsecond // 1000 * 1000
    )


def test_pendulum_times_from_airflow_stay_aware_after_a_deep_copy() -> None:
    """Airflow passes data_interval_end as a pendulum DateTime; copies of the window must stay aware."""
    import copy

    import pendulum

    window = Window(
        pendulum.datetime(2026, 11, 20, 12, tz="UTC"), pendulum.datetime(2026, 11, 20, 13, tz="UTC")
    )
    copied = copy.deepcopy(window)
    assert type(copied.end) is datetime
    assert copied.end.utcoffset() == timedelta(0)
