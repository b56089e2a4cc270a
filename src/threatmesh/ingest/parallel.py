"""Parsing a big STIX file in a second process while this one stores it.

Reading, checking and indexing objects is pure Python and holds the GIL, and
so does most of what the store does per row (binding values to statements),
so a writer thread cannot overlap the two. For a STIX file big enough to repay
starting a process (`PARALLEL_MIN_BYTES`), a child process reads, parses and
indexes it and sends each parsed version as a compact tuple over a pipe; this
process rebuilds the versions and writes them. The child never opens the
store, so the store keeps its single writer.

The pipe's buffer bounds the memory: a child that gets ahead of the store
waits in `send`. Everything the child sent before it stopped is stored, and a
child that dies is reported as the source's error, like a file that breaks
half way.
"""

from __future__ import annotations

import os
import pickle
import queue
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import orjson

from threatmesh.errors import InputError
from threatmesh.ingest.parsing import Rejection, parse_raw, relabelled
from threatmesh.ingest.stix_reader import read_stix
from threatmesh.stix.model import ObjectIndex, StixObject

# Below this a file is parsed in this process: starting a child (a fresh
# interpreter importing the STIX core) costs about 0.2 s.
PARALLEL_MIN_BYTES = 16 * 1024 * 1024
CHUNK = 256  # versions per message on the pipe
CHUNK_BYTES = 1024 * 1024  # a message is also cut at this much JSON and text, so huge objects do not pile up
QUEUED_MESSAGES = 2  # messages the child may have made before the parent reads them


def worth_a_child(path: str) -> bool:
    """Whether `path` is a regular file big enough to parse in a child process."""
    try:
        return os.path.isfile(path) and os.path.getsize(path) >= PARALLEL_MIN_BYTES
    except OSError:
        return False


class _JsonMapping(Mapping[str, Any]):
    """An object's data, parsed from its JSON the first time something reads it.

    The store reads only the JSON and the index; parsing again here would cost
    this process the time the child saved it."""

    __slots__ = ("_json", "_data")

    def __init__(self, json: bytes) -> None:
        self._json = json
        self._data: dict[str, Any] | None = None

    def _loaded(self) -> dict[str, Any]:
        if self._data is None:
            self._data = orjson.loads(self._json)
        return self._data

    def __getitem__(self, key: str) -> Any:
        return self._loaded()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded())

    def __len__(self) -> int:
        return len(self._loaded())


def _pack(item: StixObject | Rejection) -> tuple[Any, ...]:
    if isinstance(item, Rejection):
        return ("r", item.location, item.reason, item.object_id)
    index = item.index
    return (
        "o", item.id, item.type, item.spec_version, item.version, item.json, item.tlp, item.revoked,
        item.created_by_ref, item.upgraded_from, item.warnings,
        index.refs, index.markings, index.text, index.observables,
    )


def _unpack(packed: tuple[Any, ...]) -> StixObject | Rejection:
    if packed[0] == "r":
        return Rejection(packed[1], packed[2], packed[3])
    (_, object_id, obj_type, spec_version, version, json, tlp, revoked, created_by_ref, upgraded_from,
     warnings, refs, markings, text, observables) = packed
    return StixObject(
        id=object_id, type=obj_type, spec_version=spec_version, version=version, data=_JsonMapping(json),
        json=json, tlp=tlp, revoked=revoked, created_by_ref=created_by_ref, upgraded_from=upgraded_from,
        warnings=warnings, index=ObjectIndex(refs=refs, markings=markings, text=text, observables=observables),
    )


class _Sender:
    """Writes messages to the pipe on a thread of its own, a few messages ahead.

    A pipe holds far less than one message, so writing from the parsing thread
    would stop the parse whenever the parent is busy storing, and the two
    processes would take turns instead of working at once. The queue bounds
    what waits in memory."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.queue: queue.Queue[bytes | None] = queue.Queue(maxsize=QUEUED_MESSAGES)
        self.broken = False
        self.thread = threading.Thread(target=self._pump, name="parse-sender", daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        while (data := self.queue.get()) is not None:
            if self.broken:
                continue  # the parent stopped listening: drain, so that `send` never blocks
            try:
                self.out.write(data)
                self.out.flush()
            except OSError:
                self.broken = True

    def send(self, message: tuple[str, Any]) -> None:
        self.queue.put(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()


def _child(out: IO[bytes], path: str, label: str, strict: bool) -> None:
    """The child process: parse `path` and send what it holds, then ('end', error or None)."""
    error: str | None = None
    chunk: list[tuple[Any, ...]] = []
    chunk_bytes = 0
    sender = _Sender(out)
    send = sender.send

    try:
        for item in parse_raw(relabelled(read_stix(path), path, label), strict=strict):
            chunk.append(_pack(item))
            if isinstance(item, StixObject):  # its JSON and its search text both travel
                chunk_bytes += len(item.json) + sum(len(text) for _, text in item.index.text)
            if len(chunk) >= CHUNK or chunk_bytes >= CHUNK_BYTES:
                send(("items", chunk))
                chunk = []
                chunk_bytes = 0
    except InputError as exc:
        error = exc.describe()
    except Exception:  # reported to the parent, which records it as the source's error
        error = f"{label}: parsing failed: {traceback.format_exc(limit=3).strip().splitlines()[-1]}"
    if chunk:
        send(("items", chunk))
    send(("end", error))
    sender.close()


class ChildInputError(InputError):
    """A read error that happened in the child process, already described there."""

    def __init__(self, described: str, *, source: str) -> None:
        self.described = described
        super().__init__(described, source=source)

    def describe(self) -> str:
        return self.described


def parsed_in_child(path: str, label: str, *, strict: bool) -> Iterator[StixObject | Rejection]:
    """The parsed versions and rejections of one STIX file, parsed in a child process.

    Yields what `parse_raw(read_stix(path))` would, in the same order, and raises
    InputError where the file breaks (or the child dies) after yielding
    everything read before that point."""
    # A fresh interpreter started as a command, not a fork (which would copy this
    # process's open store connections and threads) nor multiprocessing's spawn
    # (which re-runs the caller's main script).
    read_end, write_end = os.pipe()
    package_root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryFile() as errors:
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "threatmesh.ingest.parallel", str(write_end), path, label,
                 "strict" if strict else "lenient"],
                pass_fds=(write_end,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors, env=env,
            )
        finally:
            os.close(write_end)
        with open(read_end, "rb", buffering=1024 * 1024) as messages:
            try:
                while True:
                    try:
                        kind, payload = pickle.load(messages)
                    except (EOFError, pickle.UnpicklingError):
                        process.wait(10)
                        errors.seek(0)
                        last = (errors.read().decode("utf-8", "replace").strip().splitlines() or [""])[-1]
                        raise InputError(
                            f"the parsing process stopped unexpectedly (exit code {process.returncode})"
                            + (f": {last}" if last else ""),
                            source=label,
                        ) from None
                    if kind == "end":
                        if payload is not None:
                            raise ChildInputError(payload, source=label)
                        return
                    for packed in payload:
                        yield _unpack(packed)
            finally:
                if process.poll() is None:
                    process.terminate()
                process.wait(10)


def _main(argv: list[str]) -> int:
    fd, path, label, mode = argv
    with open(int(fd), "wb", buffering=1024 * 1024) as out:
        _child(out, path, label, mode == "strict")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
