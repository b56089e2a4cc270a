"""The one egress policy: may this object version leave to this recipient?

Every path by which data leaves the node (TAXII GET, push, exports, web
downloads, reports) reaches this module through `share.outbound`, which adds
the rules that need the store (references) and the redaction. The rules here
are pure and decide one version at a time:

1. The operator's own view sees everything: nothing leaves the organisation.
2. Marking definitions: the five TLP definitions are public knowledge and go
   anywhere; a sharing group's definition goes only to that group's members.
3. Sharing groups: an object marked for a group goes only to members of that
   group; marked for several, only to members of every one of them (each
   marking is a restriction, as with TLP: all of them hold). Since every node
   applies this rule before sending, the object travels only through members,
   across any number of hops.
4. TLP 2.0 (https://www.first.org/tlp/): RED never leaves; AMBER and
   AMBER+STRICT go only to peers cleared for them and are never forwarded by
   a node that received them; GREEN stays in the community (community peers
   only, forwarded only to community peers); CLEAR goes anywhere. Unmarked
   objects follow the node's default level. Group and TLP rules both apply.
   A version counts as received from a peer when its first copy here came
   from one (its source); a copy that a peer echoes back later does not turn
   the node's own object into a received one.

Not sending a version back to the peer that sent it is the sync engine's
rule (it is not a leak: the peer holds it), so it is not decided here.

Sharing-group markings. A group is named by a short string ("health-eu"). Its
marking definition has an id derived from the name alone, so every node of the
mesh computes the same id without a registry, and a node can tell that a
marking is *some* sharing group's even for a group it has never heard of (the
first 32 bits of the UUID carry a fixed tag). A recipient is a member of the
group whose id equals `sharing_group_marking_id(name)` for one of its
`groups`. The definition object itself (`sharing_group_marking`) is a STIX 2.1
marking-definition with a property extension of threatmesh, shaped like the
OASIS TLP 2.0 definitions.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Protocol

from threatmesh.stix.markings import tlp_of_marking

# Namespace for every id threatmesh derives from a name (groups, extension, anonymous identities).
THREATMESH_NAMESPACE = uuid.UUID("3f0c5b9e-6a57-4e0c-9d2b-7c1e0f6b8a24")
# "SHGR" in ASCII: marks a UUID as a threatmesh sharing-group marking.
SHARING_GROUP_TAG = "53484752"
SHARING_GROUP_EXTENSION_ID = "extension-definition--" + str(
    uuid.uuid5(THREATMESH_NAMESPACE, "threatmesh-sharing-group-extension")
)
# Group markings are not versioned: the definition of a group never changes.
_GROUP_MARKING_CREATED = "2024-01-01T00:00:00.000Z"


class RecipientKind(enum.Enum):
    OPERATOR = "operator"  # the node's own operators: their full view
    PEER = "peer"  # another organisation's node or account
    PUBLIC = "public"  # anonymous readers of a public collection


@dataclass(frozen=True, slots=True)
class Recipient:
    name: str  # for a peer: the peer's name, as in the source 'peer:NAME' of what it sent
    kind: RecipientKind
    role: str = "partner"  # 'community' peers may receive GREEN
    cleared_for: frozenset[str] = field(default_factory=frozenset)  # {'amber', 'amber+strict'}
    groups: frozenset[str] = field(default_factory=frozenset)  # sharing groups the recipient belongs to

    @classmethod
    def operator(cls) -> "Recipient":
        return cls("operator", RecipientKind.OPERATOR)

    @classmethod
    def public(cls) -> "Recipient":
        return cls("public", RecipientKind.PUBLIC)


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    rule: str  # which rule decided, in words an operator understands
    # A stable short name of the rule, for counting and tests: 'operator', 'tlp-red',
    # 'tlp-green-community', 'group-member', 'group-nonmember', 'reference', ...
    code: str = ""


# -- sharing groups --------------------------------------------------------------------


def sharing_group_marking_id(group: str) -> str:
    """The marking-definition id of a sharing group, the same on every node."""
    derived = uuid.uuid5(THREATMESH_NAMESPACE, f"threatmesh-sharing-group:{group}")
    # Replace time_low with the tag; version (5) and variant bits stay valid.
    return "marking-definition--" + SHARING_GROUP_TAG + str(derived)[8:]


def is_sharing_group_marking(ref: str) -> bool:
    """Whether a marking-definition id is some sharing group's (any group, known or not)."""
    return ref.startswith("marking-definition--" + SHARING_GROUP_TAG + "-")


def sharing_group_marking(group: str) -> dict[str, Any]:
    """The marking-definition object of a sharing group (a fresh dict each call)."""
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": sharing_group_marking_id(group),
        "created": _GROUP_MARKING_CREATED,
        "name": f"threatmesh sharing group: {group}",
        "extensions": {
            SHARING_GROUP_EXTENSION_ID: {"extension_type": "property-extension", "sharing_group": group}
        },
    }


def sharing_groups_of(marking_refs: Iterable[str], known: Iterable[str] = ()) -> tuple[set[str], set[str]]:
    """(names of the groups recognised among `marking_refs`, ids of group markings not recognised).

    A group is recognised when its name is in `known`; an unrecognised group
    marking still restricts the object (to nobody but the operator).
    """
    by_id = {sharing_group_marking_id(g): g for g in known}
    named: set[str] = set()
    unknown: set[str] = set()
    for ref in marking_refs:
        if is_sharing_group_marking(ref):
            if ref in by_id:
                named.add(by_id[ref])
            else:
                unknown.add(ref)
    return named, unknown


# -- the decision ----------------------------------------------------------------------


class VersionLike(Protocol):
    """What the policy reads of a stored version (store.protocol.StoredVersion fits)."""

    @property
    def id(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def tlp(self) -> str | None: ...
    @property
    def source(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Subject:
    """One object version as the policy sees it."""

    id: str
    type: str
    version: str
    tlp: str | None  # effective TLP (strictest of the object's own and the one it arrived under)
    marking_refs: tuple[str, ...] = ()  # the object's object_marking_refs
    # Peers that sent this version here, when the caller looked them up: informative, the
    # rules of `decide` read `received_from_peer` (the version's first source) instead.
    senders: frozenset[str] = frozenset()
    received_from_peer: bool = False

    @classmethod
    def of(cls, version: VersionLike, data: Mapping[str, Any], senders: Iterable[str] = ()) -> "Subject":
        """A subject from a stored version and its parsed JSON; `senders` adds provenance."""
        peers = set(senders)
        first_from_peer = version.source.startswith("peer:")
        if first_from_peer:
            peers.add(version.source[len("peer:"):])
        refs = data.get("object_marking_refs")
        markings = tuple(r for r in refs if isinstance(r, str)) if isinstance(refs, list) else ()
        return cls(version.id, version.type, version.version, version.tlp, markings, frozenset(peers), first_from_peer)


def decide(subject: Subject, recipient: Recipient, *, default_tlp: str) -> Decision:
    """The pure rules of the module docstring, in order, for one version and one recipient."""
    return egress_decision(
        subject.tlp,
        recipient,
        default_tlp=default_tlp,
        received_from_peer=subject.received_from_peer,
        object_id=subject.id,
        marking_refs=subject.marking_refs,
    )


def egress_decision(
    tlp: str | None,
    recipient: Recipient,
    *,
    default_tlp: str,
    received_from_peer: bool = False,
    object_id: str = "",
    marking_refs: Iterable[str] = (),
) -> Decision:
    """Decide whether an object version at `tlp` may go to `recipient` (rules 1-4 above).

    The keyword arguments beyond `default_tlp` are optional so that a caller
    that knows only the TLP still gets the TLP rules; `decide` passes them all.
    """
    if recipient.kind is RecipientKind.OPERATOR:
        return Decision(True, "operator's own view", "operator")
    if object_id.startswith("marking-definition--"):
        if tlp_of_marking(object_id) is not None:
            return Decision(True, "TLP marking definitions are public", "tlp-definition")
        if is_sharing_group_marking(object_id):
            names, _ = sharing_groups_of([object_id], recipient.groups)
            if names:
                return Decision(True, f"definition of sharing group {min(names)}: {recipient.name} is a member",
                                "group-member")
            return Decision(False, f"definition of a sharing group {recipient.name} is not in", "group-nonmember")
    marked_groups, unknown_groups = sharing_groups_of(marking_refs, recipient.groups)
    if unknown_groups:
        return Decision(False, f"marked for a sharing group {recipient.name} is not a member of", "group-nonmember")
    group_note = f" (sharing groups {', '.join(sorted(marked_groups))}: member)" if marked_groups else ""
    decision = _tlp_decision(tlp, recipient, default_tlp=default_tlp, received_from_peer=received_from_peer)
    if group_note:
        return Decision(decision.allowed, decision.rule + group_note, decision.code)
    return decision


def _tlp_decision(tlp: str | None, recipient: Recipient, *, default_tlp: str, received_from_peer: bool) -> Decision:
    level = tlp or default_tlp
    origin = f"TLP:{level.upper()}" + ("" if tlp else " (node default for unmarked objects)")
    if level == "clear":
        return Decision(True, f"{origin} may go anywhere", "tlp-clear")
    if recipient.kind is RecipientKind.PUBLIC:
        return Decision(False, f"{origin} never goes to a public collection", "tlp-public")
    if level == "red":
        return Decision(False, f"{origin} never leaves this node", "tlp-red")
    if level == "green":
        if recipient.role == "community":
            return Decision(True, f"{origin} may go to community peers", "tlp-green-community")
        return Decision(False, f"{origin} goes only to community peers; {recipient.name} is a {recipient.role} peer",
                        "tlp-green-not-community")
    if level in ("amber", "amber+strict"):
        if received_from_peer:
            return Decision(False, f"{origin} received from a peer is never forwarded", "tlp-amber-forward")
        if level in recipient.cleared_for:
            return Decision(True, f"{origin} may go to {recipient.name}, cleared for it", "tlp-amber-cleared")
        return Decision(False, f"{origin} goes only to peers cleared for it; {recipient.name} is not",
                        "tlp-amber-not-cleared")
    return Decision(False, f"unknown TLP level {level!r}: not shared", "tlp-unknown")
