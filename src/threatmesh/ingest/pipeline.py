"""The ingest pipeline: raw objects in, validated versions stored, a report out.

One bad object never stops a batch: it is counted, kept with its location and
reason, and reported at the end. Objects are written in batches, each one
transaction, so a kill leaves a consistent prefix and a re-run completes it.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from concurrent.futures import Future, ThreadPoolExecutor
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace

from threatmesh.errors import InputError
from threatmesh.ingest.formats import ReadOptions, Rejected, directory_suffixes, reader_for
from threatmesh.ingest.parallel import parsed_in_child, worth_a_child
from threatmesh.ingest.parsing import Rejection, parse_raw, relabelled
from threatmesh.ingest.stix_reader import RawObject, expand_paths
from threatmesh.stix.model import StixObject
from threatmesh.store.protocol import PutOutcome, PutResult, Store

BATCH_SIZE = 1000
# A batch is also cut at this many bytes of JSON, so a few huge objects never
# pile up in memory (each object is held as parsed data, JSON and index text).
BATCH_BYTES = 4 * 1024 * 1024


@dataclass(slots=True)
class SourceReport:
    """What happened to one file (or stdin, or one TAXII request)."""

    source: str
    new: int = 0
    updated: int = 0
    older: int = 0
    unchanged: int = 0
    upgraded: int = 0
    warnings: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    error: str | None = None  # the file could not be read to its end

    @property
    def accepted(self) -> int:
        return self.new + self.updated + self.older + self.unchanged

    def count(self, result: PutResult) -> None:
        if result.outcome is PutOutcome.NEW:
            self.new += 1
        elif result.outcome is PutOutcome.UPDATED:
            self.updated += 1
        elif result.outcome is PutOutcome.OLDER:
            self.older += 1
        else:
            self.unchanged += 1

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "new": self.new,
            "updated": self.updated,
            "older": self.older,
            "unchanged": self.unchanged,
            "rejected": len(self.rejected),
            "upgraded_from_2_0": self.upgraded,
            "warnings": self.warnings,
            "rejections": [
                {"location": r.location, "reason": r.reason, "object_id": r.object_id} for r in self.rejected
            ],
            "error": self.error,
        }


@dataclass(slots=True)
class IngestReport:
    sources: list[SourceReport] = field(default_factory=list)
    seconds: float = 0.0

    def total(self, name: str) -> int:
        return sum(getattr(s, name) for s in self.sources)

    @property
    def rejected(self) -> int:
        return sum(len(s.rejected) for s in self.sources)

    @property
    def failed_sources(self) -> int:
        return sum(1 for s in self.sources if s.error)

    def as_dict(self) -> dict[str, object]:
        return {
            "new": self.total("new"),
            "updated": self.total("updated"),
            "older": self.total("older"),
            "unchanged": self.total("unchanged"),
            "rejected": self.rejected,
            "upgraded_from_2_0": self.total("upgraded"),
            "warnings": self.total("warnings"),
            "unreadable_sources": self.failed_sources,
            "seconds": round(self.seconds, 3),
            "sources": [s.as_dict() for s in self.sources],
        }


Progress = Callable[[int], None]  # called with the number of objects just handled


class _Batcher:
    """Collects parsed objects and writes them in batches of distinct (id, version).

    Writes run on one background thread while the caller parses the next batch
    (SQLite releases the GIL while it works), with at most one batch waiting, so
    memory stays bounded. Results are counted in the order batches were made.
    """

    def __init__(self, store: Store, collection_id: str, source: str, tlp: str | None, report: SourceReport,
                 *, threaded: bool = True) -> None:
        self.store = store
        self.collection_id = collection_id
        self.source = source
        self.tlp = tlp
        self.report = report
        self.batch: list[StixObject] = []
        self.keys: set[tuple[str, str]] = set()
        self.bytes = 0
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-writer") if threaded else None
        self.pending: Future[list[PutResult]] | None = None

    def add(self, obj: StixObject) -> None:
        key = (obj.id, obj.version)
        if key in self.keys:
            # The same version twice in one batch: write what we have first, so the
            # store sees the repeat as 'unchanged' rather than as a conflict in one statement.
            self.flush()
        self.batch.append(obj)
        self.keys.add(key)
        self.bytes += len(obj.json)
        if len(self.batch) >= BATCH_SIZE or self.bytes >= BATCH_BYTES:
            self.flush()

    def flush(self) -> None:
        """Hand the current batch to the writer (after the previous one is done)."""
        self._collect()
        if not self.batch:
            return
        batch = self.batch
        if self.pool is None:
            for result in self.store.put_objects(
                batch, collection_id=self.collection_id, source=self.source, tlp=self.tlp
            ):
                self.report.count(result)
        else:
            self.pending = self.pool.submit(
                self.store.put_objects, batch, collection_id=self.collection_id, source=self.source, tlp=self.tlp
            )
        self.batch = []
        self.keys = set()
        self.bytes = 0

    def _collect(self) -> None:
        if self.pending is not None:
            pending, self.pending = self.pending, None
            for result in pending.result():  # re-raises a store error here, in the caller
                self.report.count(result)

    def close(self) -> None:
        """Write what is left and wait for it."""
        try:
            self.flush()
            self._collect()
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True)


def ingest_raw(
    raws: Iterable[RawObject | Rejected],
    store: Store,
    report: SourceReport,
    *,
    collection_id: str,
    source: str,
    tlp: str | None = None,
    strict: bool = False,
    progress: Progress | None = None,
) -> None:
    """Parse and store a stream of raw objects, recording everything in `report`.

    An InputError raised by the stream itself (broken JSON) is recorded as the
    source's error after everything read before it has been stored.
    """
    ingest_parsed(parse_raw(raws, strict=strict), store, report, collection_id=collection_id, source=source,
                  tlp=tlp, progress=progress)


def ingest_parsed(
    items: Iterable[StixObject | Rejection],
    store: Store,
    report: SourceReport,
    *,
    collection_id: str,
    source: str,
    tlp: str | None = None,
    progress: Progress | None = None,
    threaded: bool = True,
) -> None:
    """Store parsed versions and record them and the rejections in `report`.

    With `threaded`, batches are written on a writer thread while the caller
    makes the next one; without it (when another process parses), here."""
    batcher = _Batcher(store, collection_id, source, tlp, report, threaded=threaded)
    pending_progress = 0
    try:
        for item in items:
            if isinstance(item, Rejection):
                report.rejected.append(item)
            else:
                if item.upgraded_from:
                    report.upgraded += 1
                report.warnings += len(item.warnings)
                batcher.add(item)
            pending_progress += 1
            if progress and pending_progress >= 500:
                progress(pending_progress)
                pending_progress = 0
    except InputError as exc:
        report.error = exc.describe()
    finally:
        batcher.close()
        if progress and pending_progress:
            progress(pending_progress)


def ingest_paths(
    paths: list[str],
    store: Store,
    *,
    collection_id: str,
    tlp: str | None = None,
    strict: bool = False,
    fmt: str | None = None,
    options: ReadOptions | None = None,
    progress: Progress | None = None,
    on_source: Callable[[str], None] | None = None,
    parallel: bool = True,
) -> IngestReport:
    """Ingest files, directories (recursively) and '-' (stdin) into one collection.

    Each source's format is detected from its content unless `fmt` names one.
    With `parallel`, a big STIX file is parsed in a second process (see
    threatmesh.ingest.parallel) while this one stores it.
    """
    started = time.perf_counter()
    report = IngestReport()
    options = options or ReadOptions()
    if options.known_names is None:
        options = replace(options, known_names=_known_names(store))
    if options.misp_templates is None:
        options = replace(options, misp_templates=_misp_templates(store))
    for name in _safe_expand(paths, report):
        with _spooled_stdin(name) as path:
            label = "<stdin>" if name == "-" else name
            if on_source:
                on_source(label)
            source_report = SourceReport(label)
            report.sources.append(source_report)
            try:
                reader = reader_for(path, fmt)
            except InputError as exc:
                source_report.error = f"{label}: {exc.reason}"
                continue
            if reader.name == "stix" and parallel and worth_a_child(path):
                # A big STIX file: parsed in a second process while this one stores.
                ingest_parsed(parsed_in_child(path, label, strict=strict), store, source_report,
                              collection_id=collection_id, source=f"file:{label}", tlp=tlp, progress=progress,
                              threaded=False)
                continue
            ingest_raw(
                relabelled(reader.read(path, options), path, label),
                store,
                source_report,
                collection_id=collection_id,
                source=f"file:{label}",
                tlp=tlp,
                strict=strict,
                progress=progress,
            )
    report.seconds = time.perf_counter() - started
    return report


def _once(make: Callable[[], object]) -> Callable[[], object]:
    """`make`, called on first use only and remembered: readers that never ask cost nothing."""
    cache: list[object] = []

    def build() -> object:
        if not cache:
            cache.append(make())
        return cache[0]

    return build


def _known_names(store: Store) -> Callable[[], object]:
    """The names in the store (actors, malware, techniques), for readers of prose."""

    def make() -> object:
        from threatmesh.ingest.prose import name_index_from_store

        return name_index_from_store(store)

    return _once(make)


def _misp_templates(store: Store) -> Callable[[], object]:
    """The node's MISP object templates (PyMISP's and any it loaded), for the MISP reader."""

    def make() -> object:
        from threatmesh.kb.misp_objects import registry_for_store

        return registry_for_store(store)

    return _once(make)


@contextmanager
def _spooled_stdin(name: str) -> Iterator[str]:
    """stdin copied to a temporary file, so that its format can be detected like a file's."""
    if name != "-":
        yield name
        return
    with tempfile.NamedTemporaryFile(prefix="threatmesh-stdin-") as spool:
        shutil.copyfileobj(sys.stdin.buffer, spool)
        spool.flush()
        yield spool.name


def _safe_expand(paths: list[str], report: IngestReport) -> Iterator[str]:
    """Expand each path on its own, so one missing path is reported and the rest go on."""
    for name in paths:
        try:
            yield from expand_paths([name], directory_suffixes())
        except InputError as exc:
            report.sources.append(SourceReport(name, error=exc.describe()))
