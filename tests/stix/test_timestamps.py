from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from threatmesh.stix.timestamps import micros_to_timestamp, normalize_timestamp, timestamp_to_micros


@pytest.mark.parametrize(
    ("given_ts", "key"),
    [
        ("2017-01-01T00:00:00Z", "2017-01-01T00:00:00.000000Z"),
        ("2017-01-01T00:00:00.1Z", "2017-01-01T00:00:00.100000Z"),
        ("2017-01-01T00:00:00.123Z", "2017-01-01T00:00:00.123000Z"),
        ("2017-01-01T00:00:00.123456789Z", "2017-01-01T00:00:00.123456Z"),
        ("2016-12-31T23:59:60Z", "2016-12-31T23:59:60.000000Z"),  # leap second
    ],
)
def test_normalize_timestamp_fixed_width(given_ts: str, key: str) -> None:
    assert normalize_timestamp(given_ts) == key


@pytest.mark.parametrize(
    "bad",
    ["", "2017-01-01", "2017-01-01T00:00:00", "2017-01-01T00:00:00+01:00", "2017-13-01T00:00:00Z",
     "2017-02-30T00:00:00Z", "2017-01-01T24:00:00Z", "2017-01-01T00:00:00.Z", None, 1483228800, ["x"]],
)
def test_normalize_timestamp_rejects(bad: object) -> None:
    with pytest.raises(ValueError):
        normalize_timestamp(bad)  # type: ignore[arg-type]


_datetimes = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)
)


@given(_datetimes, st.integers(min_value=0, max_value=9))
def test_keys_sort_like_time(dt: datetime, digits: int) -> None:
    frac = f"{dt.microsecond:06d}000"[:digits]
    text = dt.strftime("%Y-%m-%dT%H:%M:%S").zfill(19) + (f".{frac}" if digits else "") + "Z"
    key = normalize_timestamp(text)
    assert len(key) == 27
    truncated = dt.replace(microsecond=int((frac + "000000")[:6]) if digits else 0)
    assert timestamp_to_micros(key) == _micros(truncated)
    assert micros_to_timestamp(timestamp_to_micros(key)) == key


@given(_datetimes, _datetimes)
def test_key_order_is_time_order(a: datetime, b: datetime) -> None:
    ka = micros_to_timestamp(_micros(a))
    kb = micros_to_timestamp(_micros(b))
    assert (ka < kb) == (a < b)
    assert normalize_timestamp(ka) == ka


def _micros(dt: datetime) -> int:
    # Integer division of timedeltas is exact; float division is not for far dates.
    return (dt.replace(tzinfo=timezone.utc) - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1)


def test_micros_round_trip_known_value() -> None:
    assert timestamp_to_micros("2017-01-01T00:00:00.5Z") == 1_483_228_800_500_000
    assert micros_to_timestamp(0) == "1970-01-01T00:00:00.000000Z"
    assert micros_to_timestamp(-62135596800000000) == "0001-01-01T00:00:00.000000Z"
