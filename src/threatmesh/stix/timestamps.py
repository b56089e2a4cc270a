"""STIX timestamps as fixed-width, sortable keys (STIX 2.1 §3.2).

STIX allows any number of fractional digits ('...:00Z', '...:00.1Z',
'...:00.123456789Z'), so two strings naming the same instant can differ and
string order is not time order. Stores compare versions by `modified`, so every
timestamp is turned into one key of exactly microsecond width; TAXII 2.1 uses
the same precision for `added_after` and `X-TAXII-Date-Added-*`.
"""

from __future__ import annotations

import re
from functools import lru_cache
from datetime import datetime, timedelta, timezone

# STIX timestamps are always UTC with a literal 'Z'; a lowercase 'z' or 't' is
# accepted because RFC 3339 allows it and real feeds send it.
_TIMESTAMP_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?[Zz]\Z"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def normalize_timestamp(s: str) -> str:
    """'YYYY-MM-DDTHH:MM:SS.ffffffZ' for any STIX timestamp; digits beyond µs are truncated.

    Raises ValueError for anything that is not a valid STIX timestamp.
    """
    if type(s) is not str:
        raise ValueError(f"not a timestamp: {s!r}")
    return _normalize(s)


# Bulk data repeats timestamps (one release date on thousands of objects), so
# a cache makes the common case a dictionary lookup. Errors are not cached.
@lru_cache(maxsize=65536)
def _normalize(s: str) -> str:
    m = _TIMESTAMP_RE.match(s)
    if m is None:
        raise ValueError(f"not a STIX timestamp: {s!r}")
    year, month, day, hour, minute, second, frac = m.groups()
    # 'second' may be 60 in a leap second (RFC 3339); datetime cannot hold it,
    # so the calendar check uses 59 and the key keeps what was sent.
    try:
        datetime(int(year), int(month), int(day), int(hour), int(minute), min(int(second), 59))
    except ValueError as e:
        raise ValueError(f"not a STIX timestamp: {s!r} ({e})") from None
    if int(second) > 60:
        raise ValueError(f"not a STIX timestamp: {s!r} (second out of range)")
    micros = ((frac or "") + "000000")[:6]
    return f"{year}-{month}-{day}T{hour}:{minute}:{second}.{micros}Z"


def timestamp_to_micros(key: str) -> int:
    """Microseconds since the Unix epoch for a timestamp (normalised or not)."""
    norm = normalize_timestamp(key)
    dt = datetime(
        int(norm[0:4]), int(norm[5:7]), int(norm[8:10]),
        int(norm[11:13]), int(norm[14:16]), min(int(norm[17:19]), 59),
        tzinfo=timezone.utc,
    )
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + int(norm[20:26])


def micros_to_timestamp(us: int) -> str:
    """The TAXII-style timestamp (µs precision, 'Z') for microseconds since the epoch."""
    dt = _EPOCH + timedelta(microseconds=us)
    # Formatted by hand: strftime('%Y') does not zero-pad years below 1000 on glibc.
    return (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:"
        f"{dt.second:02d}.{dt.microsecond:06d}Z"
    )
