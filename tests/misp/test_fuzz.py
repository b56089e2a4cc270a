"""Fuzzing the MISP reader for a bounded time: nothing escapes but threatmesh's own InputError."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.misp.support import event
from threatmesh.errors import InputError
from threatmesh.ingest.misp_read import read_document

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
_keys = st.sampled_from(["uuid", "type", "value", "to_ids", "timestamp", "Tag", "Galaxy", "Sighting", "category",
                         "object_relation", "date", "Attribute", "Object", "GalaxyCluster", "name", "deleted"])


def _mutate(base: Any, data: st.DataObject) -> Any:
    """Replace a few values deep in a valid event by arbitrary JSON."""
    for _ in range(data.draw(st.integers(1, 4))):
        node = base
        for _depth in range(data.draw(st.integers(0, 4))):
            if isinstance(node, dict) and node:
                key = data.draw(st.sampled_from(sorted(node)))
                if isinstance(node[key], (dict, list)) and node[key]:
                    node = node[key]
            elif isinstance(node, list) and node:
                node = node[data.draw(st.integers(0, len(node) - 1))]
        if isinstance(node, dict):
            node[data.draw(_keys)] = data.draw(_json)
        elif isinstance(node, list):
            node.append(data.draw(_json))
    return base


def _drain(raw: bytes) -> None:
    try:
        list(read_document(raw, "fuzz.json"))
    except InputError:
        pass


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_events_never_crash(data: st.DataObject) -> None:
    shape = data.draw(st.sampled_from(["response", "Event", "bare"]))
    body = _mutate(event(), data)
    document = {"response": [{"Event": body}]} if shape == "response" else {"Event": body} if shape == "Event" else body
    _drain(json.dumps(document).encode())


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300) | _json.map(lambda v: json.dumps(v).encode()))
def test_arbitrary_bytes_and_json_never_crash(raw: bytes) -> None:
    _drain(raw)
