"""Where log lines come from: files, directories, .gz files, stdin, and files that grow.

Every line carries its position (1-based line number and byte offset in the
decompressed stream) so that a line that cannot be read is reported where it
is, and a sighting can remember which line it came from.
"""

from __future__ import annotations

import gzip
import io
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

from threatmesh.errors import InputError

STDIN = "-"
_SKIPPED_SUFFIXES = (".md", ".sig", ".asc")
# Files that travel with log archives and are not logs; named explicitly, they are still read.
_DOC_NAMES = ("README", "LICENSE", "COMMIT", "CITATION")


@dataclass(frozen=True, slots=True)
class Line:
    number: int  # 1-based
    offset: int  # byte offset of the line's start
    text: str  # without the line end


def expand_paths(paths: Iterable[str]) -> list[str]:
    """Files named, and every file under directories named (sorted, hidden ones left out)."""
    out: list[str] = []
    for raw in paths:
        if raw == STDIN:
            out.append(STDIN)
            continue
        path = Path(raw)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                rel = child.relative_to(path)
                if child.is_file() and not any(part.startswith(".") for part in rel.parts) \
                        and not child.name.endswith(_SKIPPED_SUFFIXES) and not child.name.startswith(_DOC_NAMES):
                    out.append(str(child))
        elif path.exists():
            out.append(str(path))
        else:
            raise InputError("no such file or directory", source=raw)
    return out


def open_binary(label: str) -> BinaryIO:
    """The decompressed byte stream of a file ('-' is stdin); gzip is recognised by its magic bytes."""
    if label == STDIN:
        raw: BinaryIO = sys.stdin.buffer
        peek = getattr(raw, "peek", None)
        head = peek(2)[:2] if peek else b""
        if head == b"\x1f\x8b":
            return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
        return raw
    try:
        fh = open(label, "rb")
    except OSError as exc:
        raise InputError(f"cannot open: {exc.strerror}", source=label) from None
    head = fh.read(2)
    fh.seek(0)
    if head == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=fh)  # type: ignore[return-value]
    return fh


def iter_lines(stream: BinaryIO, *, start_line: int = 0, start_offset: int = 0) -> Iterator[Line]:
    """Lines of a byte stream as text; bytes that are not UTF-8 are replaced, not fatal
    (logs carry binary junk in user agents and queries, and the rest of the line is still useful)."""
    number, offset = start_line, start_offset
    try:
        for raw in stream:
            number += 1
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            yield Line(number, offset, text)
            offset += len(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        # A truncated .gz is common (a log copied while being written): keep what was read.
        raise InputError(f"stream cannot be read further: {exc}", source=getattr(stream, "name", None),
                         line=number + 1) from None


def follow_lines(
    path: str,
    *,
    poll_seconds: float = 0.5,
    stop: Callable[[], bool] = lambda: False,
) -> Iterator[Line]:
    """Lines of a file that keeps growing (`tail -F`): read to the end, then wait for more.

    A truncated or replaced file (log rotation) is read again from its start.
    Ends when `stop()` is true; an interrupt (Ctrl-C) ends it in the CLI.
    """
    number = offset = 0
    partial = b""
    fh: BinaryIO | None = None
    inode = None
    while not stop():
        if fh is None:
            try:
                fh = open(path, "rb")
                inode = os.fstat(fh.fileno()).st_ino
                fh.seek(offset)
            except OSError:
                time.sleep(poll_seconds)
                continue
        chunk = fh.readline()
        if chunk:
            if not chunk.endswith(b"\n"):
                partial += chunk  # half a line: the writer has not finished it yet
                continue
            raw, partial = partial + chunk, b""
            number += 1
            yield Line(number, offset, raw.decode("utf-8", "replace").rstrip("\r\n"))
            offset += len(raw)
            continue
        try:
            st = os.stat(path)
        except OSError:
            st = None
        if st is None or st.st_ino != inode or st.st_size < offset + len(partial):
            # Rotated or truncated: start over on whatever file now has the name.
            fh.close()
            fh, number, offset, partial = None, 0, 0, b""
            continue
        time.sleep(poll_seconds)
    if fh is not None:
        fh.close()


def text_lines(text: str, source: str = "<text>") -> Iterator[Line]:
    """Lines of an in-memory text, with the offsets its UTF-8 bytes would have (tests, stdin pipes)."""
    return iter_lines(io.BytesIO(text.encode("utf-8")))
