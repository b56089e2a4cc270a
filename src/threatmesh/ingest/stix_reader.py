"""Reading STIX JSON from files, directories, gzip and stdin, in bounded memory.

A bundle is streamed object by object (ijson's C backend), so a file of any
size is read without holding it whole. What cannot be read becomes an
`InputError` with the file and the best position we can name; the objects read
before it are kept.
"""

from __future__ import annotations

import codecs
import gzip
import io
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterator

import ijson
import orjson

from threatmesh.errors import InputError

# Files up to this size are re-read whole when the stream breaks, to give an
# exact line and column; bigger ones get the byte offset of the failing block.
EXACT_POSITION_LIMIT = 64 * 1024 * 1024
# A JSON document that is one object (not a bundle, not a list) is read whole.
SINGLE_OBJECT_LIMIT = 64 * 1024 * 1024
STIX_SUFFIXES = (".json", ".json.gz")
READ_BLOCK = 256 * 1024


@dataclass(frozen=True, slots=True)
class RawObject:
    """One object as read, with where it came from."""

    source: str
    index: int  # position in the bundle's `objects` (or the list); 0 for a lone object
    data: Any


def expand_paths(paths: list[str], suffixes: tuple[str, ...] = STIX_SUFFIXES) -> Iterator[str]:
    """Files named, and every file under the directories named whose name ends in `suffixes`, in a stable order."""
    for name in paths:
        if name == "-":
            yield name
            continue
        path = Path(name)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and child.name.lower().endswith(suffixes):
                    yield str(child)
        elif path.exists():
            yield str(path)
        else:
            raise InputError("no such file or directory", source=name)


class _CountingReader:
    """A binary stream that counts the bytes handed to the parser."""

    def __init__(self, inner: IO[bytes]) -> None:
        self.inner = inner
        self.consumed = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self.inner.read(size)
        self.consumed += len(chunk)
        return chunk


class _Utf8FromText(io.RawIOBase):
    """Re-encodes a text stream (UTF-16 input) as UTF-8 bytes for the parser."""

    def __init__(self, text: IO[str]) -> None:
        self.text = text
        self.pending = b""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            data = self.pending + self.text.read().encode("utf-8")
            self.pending = b""
            return data
        while len(self.pending) < size:
            chunk = self.text.read(READ_BLOCK)
            if not chunk:
                break
            self.pending += chunk.encode("utf-8")
        data, self.pending = self.pending[:size], self.pending[size:]
        return data

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)


def _open_binary(name: str, stack: list[IO[Any]]) -> IO[bytes]:
    if name == "-":
        # stdin cannot be re-read, and a lone object needs a second look: spool it.
        spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)
        shutil.copyfileobj(sys.stdin.buffer, spool)
        spool.seek(0)
        stack.append(spool)
        return spool  # type: ignore[return-value]
    raw: IO[bytes] = open(name, "rb")
    stack.append(raw)
    if name.lower().endswith(".gz"):
        raw = gzip.open(raw, "rb")  # type: ignore[assignment]
        stack.append(raw)
    return raw


def _decode_layer(raw: IO[bytes], source: str) -> tuple[IO[bytes], str]:
    """Skip a UTF-8 BOM, transcode UTF-16 (with or without BOM); return the stream and its encoding."""
    head = raw.read(4)
    if head.startswith(codecs.BOM_UTF8):
        rest = head[3:]
        encoding = "utf-8-sig"
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return _transcode(head, raw, "utf-16"), "utf-16"
    elif len(head) >= 2 and head[0] == 0 and head[1] != 0:
        return _transcode(head, raw, "utf-16-be"), "utf-16-be"
    elif len(head) >= 2 and head[0] != 0 and head[1] == 0:
        return _transcode(head, raw, "utf-16-le"), "utf-16-le"
    else:
        rest = head
        encoding = "utf-8"
    return io.BufferedReader(_Prefixed(rest, raw), buffer_size=READ_BLOCK), encoding  # type: ignore[arg-type]


def _transcode(head: bytes, raw: IO[bytes], encoding: str) -> IO[bytes]:
    prefixed = io.BufferedReader(_Prefixed(head, raw), buffer_size=READ_BLOCK)  # type: ignore[arg-type]
    text = io.TextIOWrapper(prefixed, encoding=encoding, errors="strict")
    return io.BufferedReader(_Utf8FromText(text), buffer_size=READ_BLOCK)  # type: ignore[arg-type]


class _Prefixed(io.RawIOBase):
    """A stream with some already-read bytes put back in front."""

    def __init__(self, prefix: bytes, inner: IO[bytes]) -> None:
        self.prefix = prefix
        self.inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)
        if self.prefix:
            n = min(len(view), len(self.prefix))
            view[:n] = self.prefix[:n]
            self.prefix = self.prefix[n:]
            return n
        data = self.inner.read(len(view))
        view[: len(data)] = data
        return len(data)


def _first_char(stream: IO[bytes]) -> bytes:
    """The first non-whitespace byte, left in the stream (peek)."""
    assert isinstance(stream, io.BufferedReader)
    while True:
        peeked = stream.peek(1)
        if not peeked:
            return b""
        stripped = peeked.lstrip()
        if stripped:
            return stripped[:1]
        stream.read(len(peeked))


def read_stix(name: str) -> Iterator[RawObject]:
    """Yield the objects of one STIX JSON source; raise InputError where it breaks.

    Accepts a bundle, a JSON list of objects, or one object. Objects read
    before an error have already been yielded.
    """
    stack: list[IO[Any]] = []
    source = "<stdin>" if name == "-" else name
    try:
        raw = _open_binary(name, stack)
        try:
            stream, encoding = _decode_layer(raw, source)
            first = _first_char(stream)
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read: {exc}", source=source) from exc
        if first == b"":
            raise InputError("empty file: expected a STIX bundle, object or list", source=source)
        if first not in (b"{", b"["):
            raise InputError(
                f"not JSON: starts with {first.decode('latin-1')!r}; expected a STIX bundle", source=source, offset=0
            )
        counter = _CountingReader(stream)
        prefix = "item" if first == b"[" else "objects.item"
        index = -1
        try:
            for index, data in enumerate(ijson.items(counter, prefix, use_float=True)):
                yield RawObject(source, index, data)
        except (ijson.JSONError, UnicodeDecodeError, OSError, EOFError) as exc:
            raise _locate(name, source, encoding, counter.consumed, index, exc) from exc
        if first == b"{" and index < 0:
            yield from _read_single(name, source, encoding)
    finally:
        for handle in reversed(stack):
            handle.close()


def _read_single(name: str, source: str, encoding: str) -> Iterator[RawObject]:
    """A `{...}` document without an `objects` list: one object, or an empty bundle, or not STIX."""
    data = _load_whole(name, source, encoding)
    if not isinstance(data, dict):
        raise InputError("not STIX: the JSON document is not an object", source=source)
    if data.get("type") == "bundle":
        objects = data.get("objects", [])
        if not isinstance(objects, list):
            raise InputError("bundle 'objects' is not a list", source=source)
        return  # an empty bundle
    if "type" not in data:
        keys = ", ".join(list(data)[:5])
        raise InputError(f"not STIX: a JSON object without 'type' (keys: {keys})", source=source)
    yield RawObject(source, 0, data)


def _load_whole(name: str, source: str, encoding: str) -> Any:
    stack: list[IO[Any]] = []
    try:
        raw = _open_binary(name, stack) if name != "-" else None
        if raw is None:
            raise InputError("cannot re-read stdin", source=source)
        data = raw.read(SINGLE_OBJECT_LIMIT + 1)
        if len(data) > SINGLE_OBJECT_LIMIT:
            raise InputError("a single JSON object larger than 64 MiB; expected a bundle", source=source)
        if encoding.startswith("utf-16"):
            data = data.decode(encoding).encode("utf-8")
        elif data.startswith(codecs.BOM_UTF8):
            data = data[3:]
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise InputError(f"invalid JSON: {exc.msg}", source=source, line=exc.lineno, column=exc.colno) from exc
    finally:
        for handle in reversed(stack):
            handle.close()


def _locate(name: str, source: str, encoding: str, consumed: int, index: int, exc: Exception) -> InputError:
    """Turn a streaming parse failure into an error with the most exact position we can get."""
    after = f" after objects[{index}]" if index >= 0 else ""
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, UnicodeDecodeError):
        return InputError(f"not valid {encoding}: {exc.reason}{after}", source=source, offset=consumed)
    if name != "-":
        try:
            size = Path(name).stat().st_size
        except OSError:
            size = EXACT_POSITION_LIMIT + 1
        if size <= EXACT_POSITION_LIMIT and not name.lower().endswith(".gz") and encoding.startswith("utf-8"):
            data = Path(name).read_bytes()
            if data.startswith(codecs.BOM_UTF8):
                data = data[3:]
            try:
                orjson.loads(data)
            except orjson.JSONDecodeError as exact:
                return InputError(
                    f"invalid JSON: {exact.msg}{after}", source=source, line=exact.lineno, column=exact.colno
                )
    if "premature EOF" in reason:
        reason = "truncated JSON (premature end of file)"
    return InputError(f"invalid JSON: {reason}{after}", source=source, offset=consumed)
