"""One match run: read logs, match them, record sightings. The library under `threatmesh match`.

Zeek TSV files go through the columnar matcher (`match.columnar`, polars)
when nothing has to be evaluated line by line and the file is not followed;
everything else goes through the readers and the line-at-a-time matcher.
Both produce the same hits (tests/match/test_columnar.py holds them to it).
"""

from __future__ import annotations

import gc
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Iterator

from threatmesh.logs import ReadReport, expand_paths, read_logs
from threatmesh.logs.source import STDIN
from threatmesh.match.engine import Hit, Matcher
from threatmesh.match.index import IndicatorIndex
from threatmesh.match.protocol import LogEvent
from threatmesh.match.sightings import SightingRecorder, SightingUpdate, source_key

FLUSH_EVERY_HITS = 10_000
# A columnar scan writes sightings while its worker threads read on; more often than the
# line reader, but not per chunk: every flush is a new version of each sighting it touches.
COLUMNAR_FLUSH_EVERY_HITS = 2_000
COLUMNAR_FLUSH_EVERY_SECONDS = 0.5
FLUSH_EVERY_SECONDS = 1.0


@dataclass
class MatchReport:
    read: ReadReport = field(default_factory=ReadReport)
    hits: int = 0
    new_hits: int = 0  # hits on lines not counted before
    updates: dict[str, SightingUpdate] = field(default_factory=dict)  # indicator id -> its last update
    columnar_files: list[str] = field(default_factory=list)


def _sniff_zeek(label: str) -> bool:
    if label == STDIN:
        return False
    from threatmesh.logs.source import open_binary

    try:
        with open_binary(label) as fh:
            head = fh.read(16)
    except Exception:
        return False
    # The columnar reader reads plain files; a .gz Zeek log goes line by line.
    return head.startswith((b"#separator", b"#fields")) and not label.endswith(".gz")


def run_match(
    paths: Iterable[str],
    index: IndicatorIndex,
    recorder: SightingRecorder | None,
    *,
    fmt: str = "auto",
    follow: bool = False,
    stop: Callable[[], bool] = lambda: False,
    reader_options: dict[str, object] | None = None,
    on_hit: Callable[[Hit, bool], None] | None = None,
    on_lines: Callable[[int], None] | None = None,
    columnar: bool = True,
    report: MatchReport | None = None,
) -> MatchReport:
    """Match every log named against the index; hits go to `recorder` (None: nothing is written).

    `on_hit(hit, counted)` is called for every hit after its sighting is written
    (`counted` False when the line was counted by an earlier run).
    """
    report = report or MatchReport()
    labels = expand_paths(paths)
    matcher = Matcher(index)
    use_columnar = columnar and not follow and not index.evaluated and fmt in ("auto", "zeek")
    line_labels: list[str] = []
    for label in labels:
        if use_columnar and _sniff_zeek(label):
            try:
                from threatmesh.match.columnar import scan_zeek_file
            except ImportError:  # polars is not installed: the line reader does the same work
                line_labels.append(label)
                continue
            report.columnar_files.append(label)
            scan = scan_zeek_file(label, index, report.read, now=matcher.now)
            with _fewer_collections():
                _record(report, recorder, _chunk_hits(source_key(label, scan.head), scan, recorder, on_lines),
                        on_hit, flush=True, flush_every=COLUMNAR_FLUSH_EVERY_HITS,
                        flush_seconds=COLUMNAR_FLUSH_EVERY_SECONDS, marked=True)
        else:
            line_labels.append(label)
    if line_labels:
        events = read_logs(line_labels, fmt, report.read, follow=follow, stop=stop, reader_options=reader_options)
        # A followed log waits for lines between hits: each hit is written (and alerted) at once.
        _record(report, recorder, _keyed_hits(matcher, events, report.read, recorder, on_lines), on_hit,
                flush=True, flush_every=1 if follow else FLUSH_EVERY_HITS)
    return report


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Run the cyclic garbage collector less often while a columnar scan writes sightings.

    The thread that writes them makes many short-lived objects (events, hits,
    sighting dicts) and no cycles; at the default threshold it ran about 300
    collections a 5M-line log, two of them full ones over the loaded index
    (0.1 s). Reference counting frees them all the same."""
    threshold = gc.get_threshold()
    gc.set_threshold(max(threshold[0], 50_000), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)


def _chunk_hits(key: str, chunks: Iterable[tuple[int, list[Hit]]], recorder: SightingRecorder | None,
                on_lines: Callable[[int], None] | None) -> Iterator[tuple[str, Hit] | None]:
    """The hits of a columnar scan, each chunk's after its lines are marked as read, and None
    after each chunk: sightings are only written there, so that the lines a sighting is told
    were read hold no hit of it still to come."""
    done = 0
    for lines, hits in chunks:
        if recorder is not None:
            recorder.scanned(key, 1, lines + 1)
        if on_lines:
            on_lines(lines - done)
        done = lines
        for hit in hits:
            yield key, hit
        yield None


def _keyed_hits(matcher: Matcher, events: Iterator[LogEvent], read: ReadReport,
                recorder: SightingRecorder | None, on_lines: Callable[[int], None] | None) -> Iterator[tuple[str, Hit]]:
    keys: dict[str, str] = {}
    last_lines = read.lines
    current: str | None = None
    first_line = 0
    previous_line = 0
    for event in events:
        key = keys.get(event.source)
        if key is None:
            key = keys[event.source] = source_key(event.source, read.heads.get(event.source, []))
        if event.source != current:
            if current is not None and recorder is not None:
                recorder.scanned(keys[current], first_line, previous_line + 1)
            current, first_line = event.source, event.line
        previous_line = event.line
        for hit in matcher.match_event(event):
            yield key, hit
        if on_lines and read.lines - last_lines >= 10_000:
            on_lines(read.lines - last_lines)
            last_lines = read.lines
    if current is not None and recorder is not None:
        recorder.scanned(keys[current], first_line, previous_line + 1)
    if on_lines:
        on_lines(read.lines - last_lines)


def _record(report: MatchReport, recorder: SightingRecorder | None, hits: Iterable[tuple[str, Hit] | None],
            on_hit: Callable[[Hit, bool], None] | None, *, flush: bool,
            flush_every: int = FLUSH_EVERY_HITS, flush_seconds: float = FLUSH_EVERY_SECONDS,
            marked: bool = False) -> None:
    """Count hits and write sightings as they come: after any hit, or, when `marked`, only
    where a None among the hits says so (the end of a chunk)."""
    batch: list[Hit] = []
    last_write = time.monotonic()

    def write() -> None:
        nonlocal last_write
        fresh: set[int] = set()
        if recorder is not None:
            for update in recorder.flush():
                earlier = report.updates.get(update.indicator_id)
                if earlier is not None:  # the run's total of new hits, not the last flush's
                    update = replace(update, new=update.new + earlier.new, repeated=update.repeated + earlier.repeated)
                report.updates[update.indicator_id] = update
                report.new_hits += update.new - (earlier.new if earlier is not None else 0)
            fresh = recorder.fresh
        else:
            report.new_hits += len(batch)
        if on_hit:
            for hit in batch:
                on_hit(hit, recorder is None or id(hit) in fresh)
        batch.clear()
        last_write = time.monotonic()

    for item in hits:
        if item is not None:
            key, hit = item
            report.hits += 1
            batch.append(hit)
            if recorder is not None:
                recorder.add(hit, key)
            if marked:
                continue
        # Followed logs trickle: hits are written within a second, not held for a full batch.
        if batch and (len(batch) >= flush_every or time.monotonic() - last_write > flush_seconds):
            write()
    if flush:
        write()
