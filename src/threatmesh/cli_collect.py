"""`threatmesh extract FILE...`: what a report or list would yield, without storing anything.

For quick triage: each indicator's type, the text as found (defanged or not),
the refanged canonical value and its position. A thin layer over
`threatmesh.extract` and the prose reader's document-to-text step.
"""

from __future__ import annotations

import sys
from typing import Any, Optional

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from threatmesh.errors import InputError

out = Console()
err = Console(stderr=True)


def extract_command(
    paths: list[str] = typer.Argument(..., help="Text, Markdown, AsciiDoc, HTML or PDF files (or plain lists)."),
    json_out: bool = typer.Option(False, "--json", help="Print every hit as JSON (type, found, value, position)."),
    ignore_domain: Optional[list[str]] = typer.Option(
        None, "--ignore-domain", help="A publisher domain to skip (and its subdomains) unless defanged; repeatable."),
    no_default_ignores: bool = typer.Option(
        False, "--no-default-ignores", help="Do not skip the built-in vendor and reference domains."),
    hosts_of_urls: bool = typer.Option(False, "--hosts-of-urls", help="Also report each URL's host on its own."),
    unique: bool = typer.Option(False, "--unique", help="One line per distinct value (first position)."),
) -> None:
    """Extract indicators from reports without storing them.

    Finds IPv4/IPv6/CIDR, domains, URLs, e-mail addresses, MD5/SHA-1/SHA-256/SHA-512, CVE ids and ATT&CK
    technique ids, written plainly or defanged (hxxp, [.], (.), [dot], [:], [at], [@], `+...+`), and prints
    the type, the text as found, the refanged value and the line:column. Exit code 3 if a file was unreadable.
    """
    from threatmesh.extract import DEFAULT_IGNORED_DOMAINS, ExtractOptions, extract
    from threatmesh.ingest.prose import document_text

    ignored = set() if no_default_ignores else set(DEFAULT_IGNORED_DOMAINS)
    ignored.update(d.strip().lower() for d in ignore_domain or [] if d.strip())
    options = ExtractOptions(ignore_domains=frozenset(ignored), hosts_of_urls=hosts_of_urls)
    results: list[dict[str, Any]] = []
    failures: list[str] = []
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} files"),
                  TimeElapsedColumn(), console=err, transient=True) as progress:
        task = progress.add_task("extracting", total=len(paths))
        for path in paths:
            try:
                hits = extract(document_text(path), options)
            except InputError as exc:
                failures.append(exc.describe())
                progress.advance(task)
                continue
            seen: set[tuple[str, str]] = set()
            for hit in hits:
                key = (hit.type.value, hit.value)
                if unique and key in seen:
                    continue
                seen.add(key)
                results.append({"file": path, **hit.as_dict()})
            progress.advance(task)
    if json_out:
        sys.stdout.buffer.write(orjson.dumps({"hits": results, "errors": failures}, option=orjson.OPT_INDENT_2)
                                + b"\n")
        sys.stdout.flush()
    else:
        table = Table(title=f"{len(results)} indicators")
        for column in ("file", "line:col", "type", "found", "value"):
            table.add_column(column, overflow="fold")
        for row in results:
            table.add_row(str(row["file"]), f"{row['line']}:{row['column']}", str(row["type"]), str(row["found"]),
                          str(row["value"]))
        out.print(table)
        for failure in failures:
            err.print(f"threatmesh: error: {failure}", markup=False, highlight=False)
    if failures:
        raise typer.Exit(3)


def register(app: typer.Typer) -> None:
    app.command("extract")(extract_command)
