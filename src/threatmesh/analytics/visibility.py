"""Visibility classes: which figures of the operator's fact table another recipient may reuse.

A figure shown to a recipient other than the operator must be exactly what a
pass over the store through the egress path (`share.outbound`) would count
for it: what the policy withholds is not counted, and an incident at
TLP:CLEAR attributed to an actor through a TLP:RED relationship counts, but
not under that actor. Such a pass over a million objects takes tens of
seconds; this module lets the fact table answer instead.

The egress decision for one object version reads only its effective TLP
(`StoredVersion.tlp`, the node default when unmarked, applied at decision
time), whether its first copy came from a peer, its sharing-group marking
refs, and, for a marking definition, its own id (`share.policy.egress_decision`).
That tuple is the version's *visibility class*; a store holds few distinct
ones. The reference rule of `share.outbound` adds the classes of what a
version refers to: a relationship or sighting whose targets may not go is
withheld, a report loses the refs that may not go. So each stored version has
a *reach*: its own class and the set of classes of itself and of the held
targets of its refs. The store keeps, per fact, the reach of everything
`build_facts` read for it (the object, the relationships and targets it
followed, the campaign or indicator it inherits from, the merged actor
groups it names, transitively), and its counts pre-aggregated per reach.

For a recipient, a reach is
- WHOLE when the policy lets every class of it go: the recipient's figure is
  the operator's, unchanged (its counts are summed as they are);
- DENIED when its own class may not go: the object is withheld, not counted;
- MIXED otherwise: the fact (or the object) is recomputed through the egress
  path over its neighbourhood only, and kept per recipient view by the store
  until the rows behind it change (store/sqlite_views.py).

Redaction. Free text that leaves is redacted (`share.redact`), and some fact
values come from text: `name` (the fact's name, an actor's canonical name, a
location's country when it has no `country`), and the `x_` properties that
`facts.TEXT_READ` lists (dates, operation types, countries, aliases). When
redaction would change one of those strings of an object, its reach also
holds the class ALTERED, which is never WHOLE for a recipient while redaction
is on, so the fact is recomputed through the path, which redacts. Other text
(descriptions) feeds no figure. Anonymised sightings change every sighting's
victims: with that setting on, the view keeps the full pass.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from threatmesh.analytics.facts import TEXT_READ
from threatmesh.share.policy import Recipient, RecipientKind, egress_decision, is_sharing_group_marking
from threatmesh.share.redact import RedactionSettings, find_spans
from threatmesh.stix.markings import tlp_of_marking
from threatmesh.store.protocol import StoredVersion

# The class that stands for "redaction changes a string this fact was built from".
ALTERED = 0

ClassKey = tuple[str | None, bool, tuple[str, ...], str]  # (tlp, from a peer, group markings, definition id)


class Verdict(enum.Enum):
    WHOLE = "whole"
    MIXED = "mixed"
    DENIED = "denied"


def class_key(object_id: str, tlp: str | None, source: str, marking_ids: Iterable[str]) -> ClassKey:
    """What the egress policy reads of one stored version (the module docstring)."""
    groups = tuple(sorted({m for m in marking_ids if is_sharing_group_marking(m)}))
    definition = ""
    if object_id.startswith("marking-definition--") and (
            tlp_of_marking(object_id) is not None or is_sharing_group_marking(object_id)):
        definition = object_id
    return (tlp, source.startswith("peer:"), groups, definition)


def class_allowed(key: ClassKey, recipient: Recipient, *, default_tlp: str) -> bool:
    tlp, from_peer, groups, definition = key
    return egress_decision(tlp, recipient, default_tlp=default_tlp, received_from_peer=from_peer,
                           object_id=definition, marking_refs=groups).allowed


def text_altered(obj: Mapping[str, Any], settings: RedactionSettings) -> bool:
    """Whether redaction for `settings` would change a string of `obj` that a fact reads.

    Checked without the exemption of the object's own pattern literals: that only
    ever removes findings, so this may say True where nothing changes (the fact is
    then recomputed through the path, which is exact), never the reverse."""
    if not settings.enabled:
        return False
    for prop in TEXT_READ:
        value = obj.get(prop)
        for text in ([value] if isinstance(value, str) else value if isinstance(value, list) else ()):
            if isinstance(text, str) and text and find_spans(text, settings):
                return True
    return False


def redaction_digest(settings: RedactionSettings) -> str:
    """What of the redaction settings the ALTERED class depends on, as a stable string."""
    return repr((settings.enabled, tuple(settings.internal_domains), tuple(settings.internal_networks)))


@dataclass(frozen=True, slots=True)
class ReachTables:
    """The small tables a store keeps for reaches (store/sqlite_facts.py)."""

    classes: dict[int, ClassKey]  # class id -> key (ALTERED left out)
    reaches: dict[int, tuple[int, frozenset[int]]]  # reach id -> (own class, classes)
    objects: dict[int, int]  # reach id -> latest objects with that reach
    facts: dict[int, int]  # reach id -> facts with that reach


@dataclass(slots=True)
class Kept:
    """What a store has not kept (current) of one recipient view of the MIXED facts and objects.

    A kept entry is current while the fact or object row it was built from has not been
    rewritten since (its stamp); the missing ones carry the stamp to keep them under."""

    stale_facts: list[tuple[int, str, int, int]] = field(default_factory=list)  # (fact pk, id, stamp, reach)
    stale_objects: list[tuple[int, StoredVersion, int]] = field(default_factory=list)  # (pk, latest, stamp)
    clock: int = 0  # the fact table's clock these were read at
    current: bool = False  # the view was kept at that clock: nothing to look at or keep


@dataclass(frozen=True, slots=True)
class Judge:
    """Verdicts on reaches for one recipient (classes decided once each)."""

    allowed: frozenset[int]  # class ids the policy lets go to the recipient (ALTERED when redaction is off)

    @classmethod
    def of(cls, classes: Mapping[int, ClassKey], recipient: Recipient, *, default_tlp: str,
           redaction: RedactionSettings) -> Judge:
        allowed = {i for i, key in classes.items() if class_allowed(key, recipient, default_tlp=default_tlp)}
        if not redaction.enabled or recipient.kind is RecipientKind.OPERATOR:
            allowed.add(ALTERED)
        return cls(frozenset(allowed))

    def verdict(self, own: int, classes: frozenset[int]) -> Verdict:
        if own not in self.allowed:
            return Verdict.DENIED
        return Verdict.WHOLE if classes <= self.allowed else Verdict.MIXED
