"""Log readers: files, directories, .gz, stdin and growing files, in every format threatmesh matches.

    report = ReadReport()
    for event in read_logs(["conn.log", "auth.log.gz"], "auto", report):
        ...
    report.bad_lines  # the lines that could not be read, with their positions
"""

from __future__ import annotations

import itertools
from typing import Callable, Iterable, Iterator, Mapping

from threatmesh.errors import InputError
from threatmesh.logs.readers import FORMATS, BadLine, ReadReport, detect_format, make_reader
from threatmesh.logs.source import STDIN, Line, expand_paths, follow_lines, iter_lines, open_binary
from threatmesh.match.protocol import LogEvent

__all__ = ["FORMATS", "BadLine", "ReadReport", "read_logs", "read_source", "detect_format", "expand_paths"]

_SNIFF_LINES = 8


def read_source(
    label: str,
    lines: Iterable[Line],
    fmt: str,
    report: ReadReport,
    **reader_options: object,
) -> Iterator[LogEvent]:
    """Events of one source; `fmt` 'auto' looks at its first lines."""
    it = iter(lines)
    head = list(itertools.islice(it, _SNIFF_LINES))
    report.heads[label] = [line.text for line in head]
    it = itertools.chain(head, it)
    if fmt == "auto":
        detected = detect_format([line.text for line in head])
        if detected is None:
            report.bad += 1
            report.bad_lines.append(BadLine(label, head[0].number if head else 0, 0,
                                            "log format not recognised; name it with --format"))
            return
        fmt = detected
    report.formats[label] = fmt
    reader = make_reader(fmt, **reader_options)  # type: ignore[arg-type]
    yield from reader.events(it, label, report)


def read_logs(
    paths: Iterable[str],
    fmt: str,
    report: ReadReport,
    *,
    follow: bool = False,
    stop: Callable[[], bool] = lambda: False,
    poll_seconds: float = 0.5,
    reader_options: Mapping[str, object] | None = None,
) -> Iterator[LogEvent]:
    """Events of every named file (directories walked, .gz decompressed, '-' is stdin).

    A source that cannot be opened or read on is reported in `report` and the
    next one is read. With `follow`, one file is read and then followed as it grows.
    """
    options = dict(reader_options or {})
    labels = expand_paths(paths)
    if follow:
        if len(labels) != 1 or labels[0] == STDIN:
            raise InputError("--follow reads exactly one file")
        yield from read_source(labels[0], follow_lines(labels[0], stop=stop, poll_seconds=poll_seconds),
                               fmt, report, **options)
        return
    for label in labels:
        try:
            stream = open_binary(label)
        except InputError as exc:
            report.bad += 1
            report.bad_lines.append(BadLine(label, 0, 0, exc.reason))
            continue
        try:
            yield from read_source(label, iter_lines(stream), fmt, report, **options)
        except InputError as exc:
            report.bad += 1
            report.bad_lines.append(BadLine(label, exc.line or 0, 0, exc.reason))
        finally:
            if label != STDIN:
                stream.close()
