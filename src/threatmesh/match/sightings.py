"""Hits become STIX sightings (STIX 2.1 §5.2), one per (node, indicator), updated as new versions.

Re-running a log must not count its lines twice. Each sighting remembers, per
log source, the byte ranges of that source already scanned
(`x_threatmesh_scanned`: {source key: [[first line, end line), ...]}: line
numbers, which the line-at-a-time readers and the columnar Zeek reader both
know); a hit whose line lies inside a scanned range was counted before and is not counted again.
A source key is a hash of the path and the first lines of the (decompressed)
file, so a rotated log with the same name is a new source, and no path leaves
the node inside a shared sighting. A grown file (`--follow`, or a re-run after
more was written) adds only its new lines.

This is exact because a hit depends only on the line and the indicator: an
indicator that did not hit a range before will not hit it now. (A new version
of an indicator's pattern is the exception: its old ranges are kept.)
"""

from __future__ import annotations

import hashlib
import uuid
from functools import lru_cache
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable

import orjson

from threatmesh.match.engine import Hit
from threatmesh.stix.model import ObjectIndex, StixObject
from threatmesh.stix.parse import parse_object
from threatmesh.stix.scoid import deterministic_sco_id
from threatmesh.stix.timestamps import micros_to_timestamp, normalize_timestamp, timestamp_to_micros
from threatmesh.store.protocol import Store

# A namespace of threatmesh's own for the ids it derives (sightings, observed-data).
SIGHTING_NAMESPACE = uuid.UUID("5d1c1a43-7a52-4d1c-9a0e-6d7c39a1a2b7")
MAX_COUNT = 999_999_999  # STIX 2.1 §5.2: count is at most 999,999,999
SCANNED_PROPERTY = "x_threatmesh_scanned"


def source_key(label: str, first_lines: Iterable[str]) -> str:
    """The identity of a log source, hashed: its path, its first line and Zeek's `#open` line.

    Only lines that appending cannot change: a grown file stays the same source,
    and a rotated one (another first line, another `#open` time) is a new one.
    """
    h = hashlib.sha256(label.encode("utf-8", "replace"))
    for i, text in enumerate(first_lines):
        if i == 0 or text.startswith("#open"):
            h.update(b"\n" + text.encode("utf-8", "replace"))
    return h.hexdigest()[:24]


@lru_cache(maxsize=1 << 16)  # a flush asks twice per indicator (bulk read, then the update)
def sighting_id(identity_id: str, indicator_id: str) -> str:
    return f"sighting--{uuid.uuid5(SIGHTING_NAMESPACE, f'{identity_id}|{indicator_id}')}"


def _stamp(us: int) -> str:
    return micros_to_timestamp(us)[:-4] + "Z"  # milliseconds, as STIX producers usually write


def _merge(ranges: list[list[int]], start: int, end: int) -> list[list[int]]:
    out: list[list[int]] = []
    for a, b in sorted([*ranges, [start, end]]):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return out


def _inside(ranges: list[list[int]], offset: int) -> bool:
    return any(a <= offset < b for a, b in ranges)


def own_sighting(sighting: dict[str, Any]) -> StixObject:
    """A sighting this module wrote, described for the store as `parse_object` would describe it.

    Every field is this module's own (ids, refs, timestamps it formatted), so
    none of the checks `parse_object` makes on received objects can fail; they
    were half the cost of writing a sighting. tests/match/test_columnar_chunks.py
    holds the two descriptions equal.
    """
    refs = [("created_by_ref", sighting["created_by_ref"]), ("sighting_of_ref", sighting["sighting_of_ref"])]
    refs.extend(("where_sighted_refs", ref) for ref in sighting["where_sighted_refs"])
    refs.extend(("observed_data_refs", ref) for ref in sighting.get("observed_data_refs", ()))
    return StixObject(
        id=sighting["id"], type="sighting", spec_version="2.1", version=normalize_timestamp(sighting["modified"]),
        data=sighting, json=orjson.dumps(sighting), created_by_ref=sighting["created_by_ref"],
        index=ObjectIndex(refs=tuple(refs)),
    )


@dataclass(frozen=True, slots=True)
class SightingUpdate:
    indicator_id: str
    sighting_id: str
    new: int  # hits counted now
    repeated: int  # hits of lines counted before
    count: int  # the sighting's count after this update
    first_seen: str
    last_seen: str


@dataclass
class _Pending:
    hits: list[Hit] = field(default_factory=list)


class SightingRecorder:
    """Collects hits and writes the sightings they update.

    `scanned(source, start, end)` tells which lines [start, end) of a source were read;
    call `flush()` after each source (and periodically when following a file).
    """

    def __init__(self, store: Store, identity_id: str, collection_id: str, *, evidence: bool = False,
                 evidence_per_indicator: int = 20, now_us: int | None = None) -> None:
        self.store = store
        self.identity_id = identity_id
        self.collection_id = collection_id
        self.evidence = evidence
        self.evidence_per_indicator = evidence_per_indicator
        self._now = now_us
        self._pending: dict[str, list[tuple[str, Hit]]] = {}  # indicator id -> (source key, hit)
        self.fresh: set[int] = set()  # id() of the hits counted by the last flush (not seen in earlier runs)
        self._extents: dict[str, list[int]] = {}  # source key -> lines [start, end) read since the last flush

    def now(self) -> int:
        return self._now if self._now is not None else int(datetime.now(timezone.utc).timestamp() * 1e6)

    def add(self, hit: Hit, source: str) -> None:
        self._pending.setdefault(hit.indicator_id, []).append((source, hit))

    def scanned(self, source: str, start: int, end: int) -> None:
        extent = self._extents.get(source)
        if extent is None:
            self._extents[source] = [start, end]
        else:
            extent[0], extent[1] = min(extent[0], start), max(extent[1], end)

    def flush(self) -> list[SightingUpdate]:
        """Write a new version of every sighting with hits since the last flush."""
        updates: list[SightingUpdate] = []
        objects: list[Any] = []
        self.fresh = set()
        now = self.now()
        now_stamp = _stamp(now)
        latest: dict[str, bytes] | None = None
        bulk_read = getattr(self.store, "latest_json", None)
        if callable(bulk_read) and len(self._pending) > 1:
            latest = bulk_read([sighting_id(self.identity_id, i) for i in self._pending])
        for indicator_id, pending in self._pending.items():
            update, new_objects = self._update(indicator_id, pending, now, now_stamp, latest)
            updates.append(update)
            objects.extend(new_objects)
        if objects:
            self.store.put_objects(objects, collection_id=self.collection_id, source="match")
        self._pending.clear()
        self._extents.clear()
        return updates

    def _update(self, indicator_id: str, pending: list[tuple[str, Hit]], now: int, now_stamp: str,
                latest: dict[str, bytes] | None) -> tuple[SightingUpdate, list[Any]]:
        """`now_stamp`: `now` as the sightings' timestamps spell it; `latest`: the stored JSON of
        the sightings, read at once (None: read this one now)."""
        sid = sighting_id(self.identity_id, indicator_id)
        if latest is not None:
            raw = latest.get(sid)
        else:
            stored = self.store.get_latest(sid)
            raw = stored.json if stored is not None else None
        old: dict[str, Any] = orjson.loads(raw) if raw is not None else {}
        scanned: dict[str, list[list[int]]] = {k: [list(r) for r in v]
                                               for k, v in old.get(SCANNED_PROPERTY, {}).items()}
        fresh = [(src, h) for src, h in pending if not _inside(scanned.get(src, []), h.event.line)]
        self.fresh.update(id(h) for _, h in fresh)
        for src in {src for src, _ in pending}:
            start, end = self._extents.get(src, [0, 0])
            offsets = [h.event.line for s, h in pending if s == src]
            # The extent covers at least every hit line, even when the caller did not say what it read.
            scanned[src] = _merge(scanned.get(src, []), min([start, *offsets]), max([end, *(o + 1 for o in offsets)]))
        count = min(MAX_COUNT, int(old.get("count", 0)) + len(fresh))
        times = [h.event.time if h.event.time is not None else now for _, h in fresh]
        seen = [timestamp_to_micros(old[k]) for k in ("first_seen", "last_seen") if k in old] + times
        first, last = (min(seen), max(seen)) if seen else (now, now)
        if not fresh and scanned == old.get(SCANNED_PROPERTY):
            # Nothing new: the stored version stands.
            return SightingUpdate(indicator_id, sid, 0, len(pending), count, str(old.get("first_seen")),
                                  str(old.get("last_seen"))), []
        modified_us = now
        if raw is not None:
            # A new version needs a later `modified` than the one stored (STIX 2.1 §3.6).
            modified_us = max(now, timestamp_to_micros(old["modified"]) + 1000)
        created = old["created"] if "created" in old else now_stamp
        sighting: dict[str, Any] = {
            "type": "sighting",
            "spec_version": "2.1",
            "id": sid,
            "created": created,
            "modified": now_stamp if modified_us == now else _stamp(modified_us),
            "created_by_ref": self.identity_id,
            "sighting_of_ref": indicator_id,
            "count": count,
            "first_seen": (first_seen := _stamp(first)),
            "last_seen": first_seen if last == first else _stamp(last),
            "where_sighted_refs": [self.identity_id],
        }
        objects: list[Any] = []
        evidence_refs: list[str] = list(old.get("observed_data_refs", []))
        if self.evidence and fresh:
            for src, hit in fresh[: self.evidence_per_indicator]:
                od_objects = observed_data(hit, src, self.identity_id, indicator_id, now)
                objects.extend(parse_object(o) for o in od_objects)
                evidence_refs.append(od_objects[-1]["id"])
        if evidence_refs:
            sighting["observed_data_refs"] = list(dict.fromkeys(evidence_refs))
        sighting[SCANNED_PROPERTY] = scanned
        objects.append(own_sighting(sighting))
        update = SightingUpdate(indicator_id, sid, len(fresh), len(pending) - len(fresh), count,
                                sighting["first_seen"], sighting["last_seen"])
        return update, objects


def observed_data(hit: Hit, source: str, identity_id: str, indicator_id: str, now: int) -> list[dict[str, Any]]:
    """The SCOs of a hit's log line and the observed-data object (last) that points at them."""
    local = hit.event.objects()
    ids: dict[str, str] = {}
    scos: list[dict[str, Any]] = []
    for key, obj in local.items():  # references point only to earlier keys (see protocol.event_objects)
        sco = {k: (ids[v] if k.endswith("_ref") and isinstance(v, str) else v) for k, v in obj.items()}
        sco["spec_version"] = "2.1"
        sco_id = deterministic_sco_id(sco) or f"{sco['type']}--{uuid.uuid4()}"
        sco = {"type": sco["type"], "spec_version": "2.1", "id": sco_id,
               **{k: v for k, v in sco.items() if k not in ("type", "spec_version")}}
        ids[key] = sco_id
        scos.append(sco)
    at = _stamp(hit.event.time if hit.event.time is not None else now)
    od_id = f"observed-data--{uuid.uuid5(SIGHTING_NAMESPACE, f'{identity_id}|{indicator_id}|{source}|{hit.event.line}')}"
    stamp = _stamp(now)
    od = {
        "type": "observed-data", "spec_version": "2.1", "id": od_id, "created": stamp, "modified": stamp,
        "created_by_ref": identity_id, "first_observed": at, "last_observed": at, "number_observed": 1,
        "object_refs": [s["id"] for s in scos] or [identity_id],
        "x_threatmesh_log": {"type": hit.event.log_type, "line": hit.event.line, "field": hit.role},
    }
    return [*scos, od]
