"""Reading text sources whatever their encoding: UTF-8 (with or without BOM), UTF-16/32, legacy code pages.

A BOM decides; without one, NUL bytes in alternate positions mean UTF-16; then
strict UTF-8; then charset-normalizer's best guess. Undecodable input is an
InputError naming the file, never mojibake passed on silently.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from threatmesh.errors import InputError

MAX_TEXT_BYTES = 256 * 1024 * 1024  # a text source larger than this is refused, not read into memory

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def guess_encoding(data: bytes) -> tuple[str, int]:
    """(encoding, BOM length) of a byte string; ('utf-8', 0) for empty input."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name, len(bom)
    sample = data[:4096]
    if len(sample) >= 4:
        even_nuls = sample[0::2].count(0)
        odd_nuls = sample[1::2].count(0)
        half = len(sample) // 2
        if odd_nuls > half * 0.3 and even_nuls < half * 0.05:
            return "utf-16-le", 0
        if even_nuls > half * 0.3 and odd_nuls < half * 0.05:
            return "utf-16-be", 0
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8", 0
    from charset_normalizer import from_bytes

    best = from_bytes(data[:1024 * 1024]).best()
    if best is not None and best.encoding:
        return best.encoding, 0
    return "", 0


def decode_bytes(data: bytes, source: str) -> str:
    encoding, skip = guess_encoding(data)
    if not encoding:
        raise InputError("cannot tell the text encoding (not UTF-8, UTF-16 or a known code page)", source=source)
    try:
        text = data[skip:].decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise InputError(f"cannot decode as {encoding}: {exc}", source=source) from exc
    if "\x00" in text:
        raise InputError("binary data (NUL characters) in a text source", source=source)
    return text


def read_text(name: str) -> str:
    path = Path(name)
    try:
        if path.stat().st_size > MAX_TEXT_BYTES:
            raise InputError(f"larger than {MAX_TEXT_BYTES // (1024 * 1024)} MiB; split it first", source=name)
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", source=name) from exc
    return decode_bytes(data, name)


def decode_head(head: bytes) -> str:
    """The first bytes of a source as text, for format detection (never raises)."""
    encoding, skip = guess_encoding(head[:8192] if len(head) > 8192 else head)
    try:
        return head[skip:].decode(encoding or "latin-1", errors="ignore")
    except LookupError:
        return head.decode("latin-1")


def stable_timestamp(name: str) -> str:
    """The file's modification time as a STIX timestamp: stable across re-ingests of the same file."""
    from datetime import datetime, timezone

    try:
        mtime = Path(name).stat().st_mtime
    except OSError:
        mtime = 0.0
    return datetime.fromtimestamp(int(mtime), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
