"""Visibility classes and reaches of stored objects, read from the SQLite indexes (for sqlite_facts.py).

The class of a version (analytics/visibility.py) comes from its `objects` row
(TLP, source) and its sharing-group markings (`markings`, whose ids carry a
fixed tag, so one index range finds them); its reach adds the classes of the
latest versions of its ref targets (`refs`; `created_by_ref` names who wrote
the object and is not checked by the egress path, so it is left out).

Ids: classes and reaches are numbered in two small tables (migration 0007).
A refresh plans on a read snapshot and writes later, so `Numbering` hands out
ids for keys it has not seen and keeps them for `_apply` to insert; the
watermark check of the refresh guarantees no other refresh numbered meanwhile.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson

from threatmesh.analytics.visibility import ALTERED, ClassKey, class_key
from threatmesh.share.policy import SHARING_GROUP_TAG
from threatmesh.store.sqlite_rows import chunks, json_list

_GROUP_LOW = f"marking-definition--{SHARING_GROUP_TAG}-"
_GROUP_HIGH = f"marking-definition--{SHARING_GROUP_TAG}."  # '.' sorts right after '-'

ReachKey = tuple[int, frozenset[int]]  # (own class, classes of it and of its held ref targets)


def encode_class(key: ClassKey) -> str:
    tlp, from_peer, groups, definition = key
    return orjson.dumps([tlp, from_peer, list(groups), definition]).decode()


def decode_class(text: str) -> ClassKey:
    tlp, from_peer, groups, definition = orjson.loads(text)
    return (tlp, bool(from_peer), tuple(groups), definition)


@dataclass(slots=True)
class Numbering:
    """Ids of classes and reaches: those stored, and the new ones a plan hands out."""

    classes: dict[str, int] = field(default_factory=dict)  # encoded ClassKey -> id
    reaches: dict[ReachKey, int] = field(default_factory=dict)
    new_classes: list[tuple[int, str]] = field(default_factory=list)
    new_reaches: list[tuple[int, int, str]] = field(default_factory=list)

    @classmethod
    def read(cls, conn: sqlite3.Connection) -> Numbering:
        numbering = cls()
        numbering.classes = {key: i for i, key in conn.execute("SELECT id, key FROM analytics_classes")}
        for i, own, classes in conn.execute("SELECT id, own, classes FROM analytics_reaches"):
            numbering.reaches[(own, frozenset(orjson.loads(classes)))] = i
        return numbering

    def of_class(self, key: ClassKey) -> int:
        encoded = encode_class(key)
        found = self.classes.get(encoded)
        if found is None:
            found = self.classes[encoded] = max(self.classes.values(), default=ALTERED) + 1
            self.new_classes.append((found, encoded))
        return found

    def of_reach(self, own: int, classes: frozenset[int]) -> int:
        key = (own, classes)
        found = self.reaches.get(key)
        if found is None:
            found = self.reaches[key] = max(self.reaches.values(), default=0) + 1
            self.new_reaches.append((found, own, json_list(sorted(classes))))
        return found

    def write(self, conn: sqlite3.Connection) -> None:
        conn.executemany("INSERT INTO analytics_classes (id, key) VALUES (?, ?)", self.new_classes)
        conn.executemany("INSERT INTO analytics_reaches (id, own, classes) VALUES (?, ?, ?)", self.new_reaches)


@dataclass(frozen=True, slots=True)
class Placed:
    """One latest version's place for the reach tables."""

    pk: int
    type: str
    tlp: str  # 'unmarked' for None
    own: int
    classes: frozenset[int]


def group_markings(conn: sqlite3.Connection, pks: Sequence[int] | None = None) -> dict[int, list[str]]:
    """Sharing-group marking ids per version pk (every version when `pks` is None)."""
    found: dict[int, list[str]] = defaultdict(list)
    sql = "SELECT pk, marking_id FROM markings WHERE marking_id > ? AND marking_id < ?"
    if pks is None:
        for pk, marking in conn.execute(sql, (_GROUP_LOW, _GROUP_HIGH)):
            found[pk].append(marking)
        return found
    for chunk in chunks(list(pks)):
        for pk, marking in conn.execute(sql + " AND pk IN (SELECT value FROM json_each(?))",
                                        (_GROUP_LOW, _GROUP_HIGH, json_list(chunk))):
            found[pk].append(marking)
    return found


class ClassMemo:
    """class_key per row, memoised: most rows share (TLP, from a peer, no groups)."""

    def __init__(self, numbering: Numbering) -> None:
        self.numbering = numbering
        self._plain: dict[tuple[str | None, bool], int] = {}

    def __call__(self, object_id: str, tlp: str | None, source: str, groups: list[str] | None) -> int:
        if groups or object_id.startswith("marking-definition--"):
            return self.numbering.of_class(class_key(object_id, tlp, source, groups or ()))
        plain = (tlp, source.startswith("peer:"))
        found = self._plain.get(plain)
        if found is None:
            found = self._plain[plain] = self.numbering.of_class(class_key(object_id, tlp, source, ()))
        return found


def classes_of(conn: sqlite3.Connection, ids: Sequence[str], memo: ClassMemo) -> dict[str, tuple[int, str, str, int]]:
    """Latest version of each id: (pk, type, TLP or 'unmarked', class id)."""
    rows: list[tuple[int, str, str, str | None, str]] = []
    for chunk in chunks(list(dict.fromkeys(ids))):
        rows.extend(conn.execute("SELECT pk, id, type, tlp, source FROM objects WHERE is_latest = 1"
                                 " AND id IN (SELECT value FROM json_each(?))", (json_list(chunk),)))
    groups = group_markings(conn, [r[0] for r in rows])
    return {object_id: (pk, kind, tlp or "unmarked", memo(object_id, tlp, source, groups.get(pk)))
            for pk, object_id, kind, tlp, source in rows}


def placed_of(conn: sqlite3.Connection, ids: Sequence[str], memo: ClassMemo) -> dict[str, Placed]:
    """The reach of the latest version of each id (ids not held are left out)."""
    own = classes_of(conn, ids, memo)
    targets: dict[int, set[str]] = defaultdict(set)
    pks = [row[0] for row in own.values()]
    for chunk in chunks(pks):
        for pk, target in conn.execute("SELECT pk, target FROM refs WHERE pk IN (SELECT value FROM json_each(?))"
                                       " AND path <> 'created_by_ref'", (json_list(chunk),)):
            targets[pk].add(target)
    target_classes = classes_of(conn, sorted({t for ts in targets.values() for t in ts}), memo)
    out: dict[str, Placed] = {}
    for object_id, (pk, kind, tlp, cls) in own.items():
        classes = {cls}
        classes.update(target_classes[t][3] for t in targets.get(pk, ()) if t in target_classes)
        out[object_id] = Placed(pk, kind, tlp, cls, frozenset(classes))
    return out


def all_placed(conn: sqlite3.Connection, memo: ClassMemo) -> tuple[dict[str, int], dict[int, frozenset[int]]]:
    """For a full rebuild: every latest id's class, and the extra classes of the pks whose held ref
    targets are of another class than themselves (two scans: objects, then refs)."""
    groups = group_markings(conn)
    own_by_id: dict[str, int] = {}
    own_by_pk: dict[int, int] = {}
    cursor = conn.execute("SELECT pk, id, tlp, source FROM objects WHERE is_latest = 1")
    while rows := cursor.fetchmany(5000):
        for pk, object_id, tlp, source in rows:
            own_by_id[object_id] = own_by_pk[pk] = memo(object_id, tlp, source, groups.get(pk))
    extra: dict[int, set[int]] = defaultdict(set)
    cursor = conn.execute("SELECT r.pk, r.target FROM refs r JOIN objects o ON o.pk = r.pk"
                          " WHERE o.is_latest = 1 AND r.path <> 'created_by_ref'")
    while rows := cursor.fetchmany(5000):
        for pk, target in rows:
            cls = own_by_id.get(target)
            if cls is not None and cls != own_by_pk[pk]:
                extra[pk].add(cls)
    return own_by_id, {pk: frozenset(classes) for pk, classes in extra.items()}


def referrers(conn: sqlite3.Connection, ids: Sequence[str]) -> list[tuple[int, str, str]]:
    """(pk, id, type) of latest versions that refer to any of `ids`: their reach moves with them."""
    found: dict[int, tuple[int, str, str]] = {}
    for chunk in chunks(list(ids)):
        for row in conn.execute(
            "SELECT o.pk, o.id, o.type FROM refs r JOIN objects o ON o.pk = r.pk"
            " WHERE r.target IN (SELECT value FROM json_each(?)) AND o.is_latest = 1 AND r.path <> 'created_by_ref'",
            (json_list(chunk),)):
            found[row[0]] = row
    return list(found.values())
