"""The one egress path: what of a selection may go to a recipient, and in what form.

Every outgoing path calls `prepare_outgoing` (or an `Outbound` it keeps for a
long stream): TAXII GET (taxii/server.py), TAXII push (taxii/client.py),
exports (export/select.py), and the sync engine. It applies, per version:

1. the pure policy of `share.policy` (TLP 2.0, sharing groups, no echo);
2. no leak through references: an object whose refs point at an object held
   here that may not go to the recipient is withheld (relationships,
   sightings, anything with `*_ref(s)`); a container (report, grouping, note,
   opinion, observed-data) instead goes with only the `object_refs` that may
   go, and is withheld when none may. A target not held here leaks nothing
   and does not block. A target that the recipient itself sent here is known
   to it and does not block either. `created_by_ref` and marking refs are not
   checked: they name identities and definitions, not intelligence;
3. redaction (`share.redact`) of free text for every recipient but the
   operator, and, when configured, anonymised sightings.

Modified copies and signatures. A report cut down to the refs that may go,
or a redacted object, is this node's modified copy: it keeps the author's id
and `modified` (it is not a new version by the author, and must not replace
the real one as "latest" anywhere), and it is flagged as derived in the
batch's signed manifest, which travels beside the objects. Objects not
modified are sent as the exact stored bytes, so a signature by their author
over their canonical JSON still verifies after any number of hops. The price
of keeping id and version: a receiver that later gets the full version from
another path keeps the copy it stored first (stores are idempotent by id and
version); sharing the full object later means its author issuing a new version.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field, replace
from typing import AbstractSet, Any, Generic, Iterable, Mapping, Sequence, TypeVar

import orjson

from threatmesh.share.policy import Decision, Recipient, RecipientKind, Subject, decide
from threatmesh.share.redact import (
    STIX_PROPERTIES,
    Finding,
    RedactionSettings,
    anonymise_sighting,
    findings_prescreen,
    redact_object,
)
from threatmesh.store.protocol import PageRow, Store, StoredVersion

log = logging.getLogger("threatmesh.share.outbound")

# What the path takes and gives back: full versions, or the light rows of a query page.
V = TypeVar("V", StoredVersion, PageRow)

# Lists of refs that a container may share in part.
CONTAINER_REFS: dict[str, tuple[str, ...]] = {
    "report": ("object_refs",),
    "grouping": ("object_refs",),
    "note": ("object_refs",),
    "opinion": ("object_refs",),
    "observed-data": ("object_refs",),
}
# Refs that name who made or how to mark an object, not intelligence: not checked.
_UNCHECKED = frozenset({"created_by_ref", "object_marking_refs", "granular_markings", "external_references",
                        "kill_chain_phases"})
# Standard properties that `_refs` passes by: an object with no other key holds no ref to check.
_REFLESS = frozenset(k for k in STIX_PROPERTIES if k in _UNCHECKED or ("_ref" not in k and k != "extensions"))
_NO_SENDERS: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Withheld:
    id: str
    version: str
    rule: str  # why, in words an operator understands
    code: str = ""  # Decision.code of the rule that decided


@dataclass(slots=True)
class OutgoingBatch(Generic[V]):
    """What may go, in the form it may go in.

    `items` are the versions that go, in input order, each with `json`
    replaced by the bytes to send (the stored bytes when unchanged).
    `extra` holds objects the node adds so that what it sends stays whole
    (the anonymous identity of anonymised sightings); they go after `items`.
    """

    items: list[V] = field(default_factory=list)
    derived: list[int] = field(default_factory=list)  # indexes into items of modified copies
    extra: list[bytes] = field(default_factory=list)
    withheld: list[Withheld] = field(default_factory=list)
    redactions: list[Finding] = field(default_factory=list)

    @property
    def objects(self) -> list[bytes]:
        """JSON of everything to send: items, then extra."""
        return [item.json for item in self.items] + self.extra

    def withheld_by_rule(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for entry in self.withheld:
            counts[entry.rule] = counts.get(entry.rule, 0) + 1
        return counts


@dataclass(frozen=True, slots=True)
class Explanation:
    """`threatmesh peer explain`: the decision for an object's latest version and what would be redacted."""

    object_id: str
    version: str
    decision: Decision
    redactions: tuple[Finding, ...] = ()
    refs_dropped: tuple[str, ...] = ()  # container refs that would be cut


class EgressCache:
    """Outcomes of the egress path that do not depend on who exactly the recipient is.

    A node that sends one version to many peers (a hub) decides, cuts and redacts
    it once per class of recipient (kind, role, clearances, groups) rather than
    once per peer. Only outcomes that read nothing else are kept: versions that
    may go and hold no refs at all (so no reference rule looked anything up) and
    are not sightings (which may be anonymised with an added identity). The key
    also holds everything of the version the policy reads (id, version, TLP,
    whether it came from a peer); the stored bytes of a version never change.
    Shared by the sync workers of one node; bounded (emptied when full). 20,000 entries
    cover two pages of pushes, as far as a hub's workers drift apart (see PushPages).
    """

    def __init__(self, limit: int = 20_000) -> None:
        self.limit = limit
        self._entries: dict[tuple[Any, ...], tuple[bytes | None, tuple[Finding, ...]]] = {}
        self._classes: dict[tuple[Any, ...], int] = {}
        self._classes_lock = threading.Lock()

    def class_number(self, recipient_class: tuple[Any, ...]) -> int:
        """A small number standing for one class of recipient in keys: hashing the class
        itself (settings dataclasses and all) for every version would cost more than
        the lookup it keys. Distinct classes get distinct numbers (under a lock: the
        node's sync workers share the cache, and two classes must never share one)."""
        with self._classes_lock:
            return self._classes.setdefault(recipient_class, len(self._classes))

    def get(self, key: tuple[Any, ...]) -> tuple[bytes | None, tuple[Finding, ...]] | None:
        return self._entries.get(key)

    def put(self, key: tuple[Any, ...], value: tuple[bytes | None, tuple[Finding, ...]]) -> None:
        if len(self._entries) >= self.limit:
            self._entries.clear()
        self._entries[key] = value

    def __len__(self) -> int:
        return len(self._entries)


class Outbound:
    """The egress path for one recipient; keep one for a long stream so lookups are cached."""

    def __init__(
        self,
        store: Store,
        recipient: Recipient,
        *,
        default_tlp: str,
        redaction: RedactionSettings = RedactionSettings(),
        cache: EgressCache | None = None,
    ) -> None:
        self.store = store
        self.recipient = recipient
        self.default_tlp = default_tlp
        self.redaction = redaction
        self.cache = cache
        self._class = (recipient.kind, recipient.role, recipient.cleared_for, recipient.groups, default_tlp,
                       redaction)
        self._class_number = cache.class_number(self._class) if cache is not None else -1
        self._targets: dict[str, Decision] = {}
        self._sent_identities: set[str] = set()
        self._decisions: dict[tuple[Any, ...], Decision] = {}
        self._may_hold_findings = findings_prescreen(redaction)

    # -- public ------------------------------------------------------------------------

    def prepare(self, versions: Iterable[V]) -> OutgoingBatch[V]:
        """Decide, cut and redact a selection (see the module docstring).

        Takes StoredVersions or PageRows and gives back the same kind. The operator's
        selection goes as it is: no JSON parsed, nothing looked up, nothing redacted."""
        batch: OutgoingBatch[V] = OutgoingBatch()
        selection = list(versions)
        if not selection:
            return batch
        if self.recipient.kind is RecipientKind.OPERATOR:
            batch.items = selection
            return batch
        # The rules read where a version first came from (its source: a peer or this node),
        # which the row carries; the other peers that sent it too matter only for refs and
        # are looked up there (`_target_allowed`). So no per-version provenance query here.
        for version in selection:
            self._prepare_one(version, _NO_SENDERS, batch)
        return batch

    def prepare_rows(self, rows: Sequence[PageRow]) -> list[PageRow]:
        """What of a query page may go, as it may go, as `PageRow`s in input order, then
        the objects the path adds (dated with the last row's date_added). Through
        `prepare`, like every other outgoing path."""
        batch = self.prepare(rows)
        out = batch.items
        if out:
            last = out[-1].date_added
            for raw in batch.extra:
                extra = added_version(raw, last)
                out.append(PageRow(last, extra.id, extra.type, extra.version, extra.spec_version, extra.tlp,
                                   extra.source, extra.json))
        return out

    def decision(self, version: StoredVersion) -> tuple[Decision, list[str], list[Finding]]:
        """The decision for one version, the container refs it would lose, and the redactions."""
        batch: OutgoingBatch[StoredVersion] = OutgoingBatch()
        senders = self.store.senders_of([(version.id, version.version)]).get((version.id, version.version), set())
        data = orjson.loads(version.json)
        policy = decide(Subject.of(version, data, senders), self.recipient, default_tlp=self.default_tlp)
        if not policy.allowed:
            return policy, [], []
        self._prepare_one(version, senders, batch, data=data)
        if batch.withheld:
            entry = batch.withheld[0]
            return Decision(False, entry.rule, entry.code), [], []
        dropped = [ref for ref in _container_refs(data) if not self._target_allowed(ref).allowed]
        return policy, dropped, batch.redactions

    # -- per version ---------------------------------------------------------------------

    def _prepare_one(
        self, version: V, senders: AbstractSet[str], batch: OutgoingBatch[V], *, data: dict[str, Any] | None = None
    ) -> None:
        key = None
        from_peer = version.source.startswith("peer:")
        if self.cache is not None and data is None:
            key = (version.id, version.version, version.tlp, from_peer, self._class_number)
            hit = self.cache.get(key)
            if hit is not None:
                self._append(version, hit[0], hit[1], batch)
                return
        data = orjson.loads(version.json) if data is None else data
        policy = self._decide(version, data, senders, from_peer)
        if policy.allowed and self.recipient.kind is RecipientKind.OPERATOR:
            batch.items.append(version)
            return
        if not policy.allowed:
            batch.withheld.append(Withheld(version.id, version.version, policy.rule, policy.code))
            return
        refs = _refs(data)
        out, modified, refused = self._cut_references(data, refs)
        if refused is not None:
            batch.withheld.append(Withheld(version.id, version.version, refused.rule, refused.code))
            return
        if version.type == "sighting" and self.redaction.anonymise_sightings and self.redaction.enabled:
            out, identity = anonymise_sighting(out, self.redaction)
            modified = True
            if identity is not None and identity["id"] not in self._sent_identities:
                self._sent_identities.add(identity["id"])
                batch.extra.append(orjson.dumps(identity))
        findings: tuple[Finding, ...] = ()
        if self._may_hold_findings(out):
            redacted = redact_object(out, self.redaction)
            if redacted.changed:
                out, modified = redacted.data, True
                findings = redacted.findings
        raw = orjson.dumps(out) if modified else None
        if key is not None and self.cache is not None and version.type != "sighting" and not refs:
            self.cache.put(key, (raw, findings))
        self._append(version, raw, findings, batch)

    def _decide(self, version: V, data: Mapping[str, Any], senders: AbstractSet[str], from_peer: bool) -> Decision:
        """`decide` for one version, remembered by all that its rules read of a version
        that is no marking definition: the effective TLP, whether it came from a peer
        and the marking refs (the recipient and default level are this path's own).
        Most of a stream shares a handful of such keys, and building a Subject and a
        Decision for every version cost more than its reference and redaction checks."""
        if version.id.startswith("marking-definition--"):  # its own id is a rule's input too
            return decide(Subject.of(version, data, senders), self.recipient, default_tlp=self.default_tlp)
        refs = data.get("object_marking_refs")
        key = (version.tlp, from_peer, tuple(refs) if isinstance(refs, list) else ())
        try:
            known = self._decisions.get(key)
        except TypeError:  # a marking ref that is no string, and unhashable: not remembered
            return decide(Subject.of(version, data, senders), self.recipient, default_tlp=self.default_tlp)
        if known is None:
            known = decide(Subject.of(version, data, senders), self.recipient, default_tlp=self.default_tlp)
            if len(self._decisions) >= 1024:  # only a stream of ever new marking lists fills it
                self._decisions.clear()
            self._decisions[key] = known
        return known

    def _append(self, version: V, raw: bytes | None, findings: tuple[Finding, ...], batch: OutgoingBatch[V]) -> None:
        """Add a version that may go: as stored (`raw` None) or as this node's modified copy."""
        if findings:
            batch.redactions.extend(findings)
            for finding in findings:
                log.info("redacted %s in %s %s for %s (rule %s)", finding.kind, version.id, finding.path,
                         self.recipient.name, finding.rule)
        if raw is None:
            batch.items.append(version)
            return
        batch.derived.append(len(batch.items))
        batch.items.append(version._replace(json=raw) if isinstance(version, PageRow) else replace(version, json=raw))

    def _cut_references(self, data: dict[str, Any], refs: Sequence[tuple[str, str]]
                        ) -> tuple[dict[str, Any], bool, Decision | None]:
        """(object to send, whether it was cut, the refusal when it may not go at all);
        `refs` are the object's `_refs`, walked once by the caller."""
        if not refs:
            return data, False, None
        containers = CONTAINER_REFS.get(str(data.get("type")), ())
        anonymised = ("where_sighted_refs",) if data.get("type") == "sighting" and self.redaction.anonymise_sightings \
            and self.redaction.enabled else ()
        cut: dict[str, list[str]] = {}
        for prop, target in refs:
            if prop in anonymised:
                continue
            verdict = self._target_allowed(target)
            if verdict.allowed:
                continue
            if prop in containers:
                cut.setdefault(prop, []).append(target)
                continue
            return data, False, Decision(
                False, f"refers ({prop}) to {target}, which may not go to {self.recipient.name}: {verdict.rule}",
                "reference")
        if not cut:
            return data, False, None
        out = dict(data)
        for prop, dropped in cut.items():
            kept = [ref for ref in data.get(prop, []) if ref not in set(dropped)]
            if not kept:
                return data, False, Decision(
                    False, f"none of its {prop} may go to {self.recipient.name}", "reference-container-empty")
            out[prop] = kept
        return out, True, None

    def _target_allowed(self, target: str) -> Decision:
        cached = self._targets.get(target)
        if cached is not None:
            return cached
        stored = self.store.get_latest(target)
        if stored is None:
            verdict = Decision(True, "not held here", "reference-absent")
        else:
            senders = self.store.senders_of([(stored.id, stored.version)]).get((stored.id, stored.version), set())
            if self.recipient.name in senders or stored.source == f"peer:{self.recipient.name}":
                verdict = Decision(True, f"{self.recipient.name} sent it here", "reference-known")
            else:
                subject = Subject.of(stored, orjson.loads(stored.json), senders)
                verdict = decide(subject, self.recipient, default_tlp=self.default_tlp)
        self._targets[target] = verdict
        return verdict


def _refs(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """(property, target id) for every ref of an object, markings and creator excepted.

    Runs on every version that leaves: most objects have only keys of `_REFLESS` (one
    set comparison), and in the others most keys hold no ref, which one substring test
    passes by."""
    found: list[tuple[str, str]] = []
    if data.keys() <= _REFLESS:
        return found
    for key, value in data.items():
        if "_ref" not in key and key != "extensions":
            continue
        if key in _UNCHECKED:
            continue
        if key.endswith("_ref") and isinstance(value, str):
            found.append((prefix + key, value))
        elif key.endswith("_refs") and isinstance(value, list):
            found.extend((prefix + key, item) for item in value if isinstance(item, str))
        elif key == "extensions" and isinstance(value, Mapping):
            # SCO extensions hold refs too (archive contents, email bodies).
            for ext_name, ext in value.items():
                if isinstance(ext, Mapping):
                    found.extend(_refs(ext, f"{prefix}extensions.{ext_name}."))
    return found


def _container_refs(data: Mapping[str, Any]) -> list[str]:
    refs: list[str] = []
    for prop in CONTAINER_REFS.get(str(data.get("type")), ()):
        refs.extend(r for r in data.get(prop, []) if isinstance(r, str))
    return refs


def added_version(raw: bytes, date_added: int = 0) -> StoredVersion:
    """A StoredVersion for an object of `OutgoingBatch.extra`, for paths that carry StoredVersions."""
    data = orjson.loads(raw)
    return StoredVersion(
        id=data["id"], type=data["type"], version=str(data.get("modified", "")), spec_version="2.1", json=raw,
        date_added=date_added, tlp=None, source="node",
    )


def prepare_outgoing(
    store: Store,
    versions: Iterable[V],
    recipient: Recipient,
    *,
    default_tlp: str,
    redaction: RedactionSettings = RedactionSettings(),
    cache: EgressCache | None = None,
) -> OutgoingBatch[V]:
    """What of `versions` (StoredVersions or PageRows) may go to `recipient`, redacted where
    needed (one call, one batch)."""
    return Outbound(store, recipient, default_tlp=default_tlp, redaction=redaction, cache=cache).prepare(versions)


def explain(
    store: Store,
    object_id: str,
    recipient: Recipient,
    *,
    default_tlp: str,
    redaction: RedactionSettings = RedactionSettings(),
) -> Explanation:
    """Whether the latest version of `object_id` may go to `recipient`, and which rule decided.

    Raises `errors.NotFound` when the store holds no such object.
    """
    from threatmesh.errors import NotFound

    latest = store.get_latest(object_id)
    if latest is None:
        raise NotFound(f"no object {object_id!r} in this node")
    outbound = Outbound(store, recipient, default_tlp=default_tlp, redaction=redaction)
    decision, dropped, findings = outbound.decision(latest)
    return Explanation(object_id, latest.version, decision, tuple(findings), tuple(dropped))
