"""What every `threatmesh` command module shares: opening the node, JSON output."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import typer

from threatmesh.errors import ConfigError
from threatmesh.node import Node, open_node


def node_of(ctx: typer.Context) -> Node:
    """Open the node named by the root command's --home (or its defaults); the caller closes it."""
    home = getattr(ctx.find_root().obj, "home", None)
    if home is None:
        raise ConfigError("no node home given")
    return open_node(home)


@contextmanager
def open_cli_node(ctx: typer.Context) -> Iterator[Node]:
    """The node named by the root command's --home, closed afterwards."""
    node = node_of(ctx)
    try:
        yield node
    finally:
        node.close()


def print_json(data: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
    sys.stdout.flush()
