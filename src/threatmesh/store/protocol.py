"""The one Store protocol: the contract every backend (SQLite, PostgreSQL) keeps.

One method per capability. The contract test suite in `tests/store/` runs
against every implementation. Stores raise only `errors.StoreError` and its
children; they know nothing of HTTP.

Time in the store is integer microseconds since the Unix epoch (UTC).
`date_added` is assigned per collection membership and is strictly increasing
across the whole store (so within a collection too), even for objects written
in one batch: TAXII pagination relies on it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, AbstractSet, Iterator, NamedTuple, Protocol, Sequence, runtime_checkable

from threatmesh.stix.model import StixObject

if TYPE_CHECKING:  # analytics.facts reads StoredVersion from here: no import cycle at run time
    from threatmesh.analytics.actors import ActorIndex
    from threatmesh.analytics.facts import Fact
    from threatmesh.analytics.summary import FactSummary
    from threatmesh.analytics.visibility import Kept, ReachTables
    from threatmesh.share.redact import RedactionSettings


class PutOutcome(enum.Enum):
    NEW = "new"  # the id was not in the store
    UPDATED = "updated"  # a newer version than the latest one: it becomes the latest
    OLDER = "older"  # a version older than the latest: kept in history
    UNCHANGED = "unchanged"  # this id + version is already stored


@dataclass(frozen=True, slots=True)
class PutResult:
    id: str
    version: str
    outcome: PutOutcome
    # The same id + version was stored before with different content; the first is kept.
    content_differs: bool = False
    # The store's own key of the stored version (as PageRow.pk), for `record_provenance`.
    pk: int = 0


@dataclass(frozen=True, slots=True)
class Collection:
    id: str  # a UUID (TAXII collection id)
    title: str
    api_root: str = "default"
    description: str = ""
    alias: str | None = None  # short unique name used on the CLI
    public: bool = False  # anonymous read
    media_types: tuple[str, ...] = ("application/stix+json;version=2.1",)


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    key_hash: str  # never the key itself
    is_admin: bool = False
    revoked: bool = False
    created: int = 0  # µs since epoch


@dataclass(frozen=True, slots=True)
class StoredVersion:
    """One stored object version, as read back."""

    id: str
    type: str
    version: str
    spec_version: str
    json: bytes
    date_added: int  # µs; within a collection when read through one, else the first time stored
    tlp: str | None  # effective TLP: the strictest of the object's own and the one it was received under
    source: str  # 'file:PATH', 'peer:NAME', 'user:NAME', 'demo'
    revoked: bool = False
    upgraded_from: str | None = None
    is_latest: bool = True


@dataclass(frozen=True, slots=True)
class ObjectQuery:
    """A parsed, validated query over one collection (TAXII §3.4 filters).

    `versions` holds 'last', 'first', 'all' and/or normalised timestamps
    ('YYYY-MM-DDTHH:MM:SS.ffffffZ'); the default is ('last',). Results come in
    ascending `date_added`; `added_after` is exclusive.
    """

    collection_id: str
    added_after: int | None = None
    ids: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    versions: tuple[str, ...] = ("last",)
    spec_versions: tuple[str, ...] = ()
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class QueryPage:
    items: tuple[StoredVersion, ...]
    more: bool  # further matching items exist after the last one returned


class PageRow(NamedTuple):
    """One object version of a query page, light: what the egress policy and the TAXII
    envelope need, with the stored JSON bytes as they are (see `Store.query_rows`)."""

    date_added: int  # µs; the membership's date_added in the queried collection
    id: str
    type: str
    version: str
    spec_version: str
    tlp: str | None  # effective TLP, as in StoredVersion
    source: str
    json: bytes
    # The store's own key of the version (0 for a row made elsewhere): what the sync
    # passes to `held_pks` and `mark_held_pks`.
    pk: int = 0


# Memberships one `query_rows(not_held_by=...)` call examines at most: a peer that holds
# everything is answered in pages of this many examined rows, each a bounded read.
HELD_WINDOW = 100_000


@dataclass(frozen=True, slots=True)
class RowPage:
    rows: tuple[PageRow, ...]
    more: bool  # further matching items exist after the last one returned
    # The date_added through which the collection was examined: the next page's
    # `added_after`. Past the last row when rows were left out (`query_rows(not_held_by=)`);
    # None when nothing was examined.
    examined_to: int | None = None


@dataclass(frozen=True, slots=True)
class StoreStats:
    objects: int  # distinct ids
    versions: int
    by_type: dict[str, int] = field(default_factory=dict)  # latest versions per type
    by_tlp: dict[str, int] = field(default_factory=dict)  # latest versions per TLP ('unmarked' for None)
    by_collection: dict[str, int] = field(default_factory=dict)  # collection id -> distinct ids
    size_bytes: int = 0


@dataclass(frozen=True, slots=True)
class FactsRefresh:
    """What one refresh of the analytics fact table did (see store/sqlite_facts.py)."""

    current: bool  # the table now reflects every stored version (False: a read-only store behind)
    full: bool = False  # rebuilt from scratch rather than updated
    versions: int = 0  # versions read: stored since the last refresh (full: every latest version)
    recomputed: int = 0  # facts written
    seconds: float = 0.0


# -- TAXII serving: API roots, rights, statuses, audit --------------------------------


@dataclass(frozen=True, slots=True)
class ApiRoot:
    """A TAXII API root (TAXII 2.1 §4.2): served at /taxii2/{name}/ with its own collections."""

    name: str  # one URL path segment
    title: str
    description: str = ""
    max_content_length: int | None = None  # None: the node's setting


@dataclass(frozen=True, slots=True)
class Rights:
    """What one account may do in one collection (TAXII can_read / can_write)."""

    read: bool = False
    write: bool = False


@dataclass(frozen=True, slots=True)
class StatusDetail:
    """TAXII 2.1 §4.3.2 status-details: a STIX id, its version, and a message for failures."""

    id: str
    version: str
    message: str | None = None


@dataclass(frozen=True, slots=True)
class TaxiiStatus:
    """The outcome of one TAXII POST (§4.3.1), kept so that it can be read again later."""

    id: str  # a UUID v4
    api_root: str
    account: str | None
    complete: bool
    request_timestamp: int  # µs
    successes: tuple[StatusDetail, ...] = ()
    failures: tuple[StatusDetail, ...] = ()
    pendings: tuple[StatusDetail, ...] = ()


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One request served, as the audit log keeps it."""

    time: int  # µs
    account: str | None  # None: anonymous
    method: str
    endpoint: str
    status: int
    objects: int  # objects returned, posted or deleted



# -- federation: peers and their sync state (issue 4) ---------------------------------


@dataclass(frozen=True, slots=True)
class Peer:
    """Another node (or any TAXII 2.1 server) this node shares with."""

    name: str
    url: str  # the peer's TAXII API root (or discovery) URL
    account: str  # the local account the peer uses to reach this node
    credential: str | None = None  # what this node presents there: an API key, or 'user:password'
    role: str = "partner"  # 'community' peers may receive TLP:GREEN
    cleared_for: tuple[str, ...] = ()  # 'amber', 'amber+strict'
    groups: tuple[str, ...] = ()  # sharing groups the peer belongs to
    pull: tuple[str, ...] = ("default",)  # remote collections (ids or aliases) to pull
    push: tuple[str, ...] = ("default",)  # remote collections to push to
    public_key: str | None = None  # the peer's signing key, once exchanged
    created: int = 0  # µs


@dataclass(frozen=True, slots=True)
class PeerSyncState:
    """Health and running totals of the sync with one peer."""

    peer: str
    last_attempt: int = 0  # µs
    last_success: int = 0  # µs; 0: never
    last_error: str | None = None
    failures: int = 0  # consecutive failed rounds: drives the retry backoff
    sent: int = 0
    received: int = 0
    refused: int = 0  # withheld by the egress policy
    failed: int = 0  # refused by the peer, or lost to an error
    rejected: int = 0  # sent by the peer but refused here (tampered, invalid)
    bytes_sent: int = 0  # HTTP bodies and URLs this node sent to the peer
    bytes_received: int = 0  # HTTP bodies this node received from the peer


@dataclass(frozen=True, slots=True)
class PeerRejection:
    peer: str
    time: int  # µs
    object_id: str
    version: str
    reason: str



@dataclass(frozen=True, slots=True)
class ProvenanceRecord:
    """One receipt of an object version from a peer (the first receipt per peer is kept)."""

    object_id: str
    version: str
    peer: str  # the peer that sent it here
    received: int  # µs
    signer: str = ""  # the signing node's identity id, from the batch manifest
    key_fingerprint: str = ""  # share.signing.key_fingerprint of the key that verified it
    verified: bool = False
    derived: bool = False  # the sender's modified copy (redacted, or refs cut)
    path: tuple[str, ...] = ()  # nodes it passed through before the sender, oldest first

@runtime_checkable
class Store(Protocol):
    # -- lifecycle --------------------------------------------------------
    def close(self) -> None: ...

    def check_integrity(self) -> list[str]:
        """Problems found by the backend's own consistency check; [] when sound."""
        ...

    # -- node metadata (identity, settings that live with the data) --------
    def get_meta(self, key: str) -> str | None: ...

    def set_meta(self, key: str, value: str) -> None: ...

    # -- collections ---------------------------------------------------------
    def add_collection(self, collection: Collection) -> Collection:
        """Create a collection; Conflict if its id or alias exists."""
        ...

    def get_collection(self, id_or_alias: str) -> Collection:
        """NotFound if neither an id nor an alias matches."""
        ...

    def list_collections(self, api_root: str | None = None) -> list[Collection]: ...

    # -- accounts ------------------------------------------------------------
    def add_account(self, account: Account) -> Account:
        """Conflict if the name exists."""
        ...

    def account_by_key_hash(self, key_hash: str) -> Account | None: ...

    def list_accounts(self) -> list[Account]: ...

    def revoke_account(self, name: str) -> None: ...

    # -- objects -------------------------------------------------------------
    def put_objects(
        self,
        objects: Sequence[StixObject],
        *,
        collection_id: str,
        source: str,
        tlp: str | None = None,
        defer_index: bool = False,
    ) -> list[PutResult]:
        """Store a batch in one transaction, atomically; one result per object, in order.

        `tlp` is the level the batch was received under; the stored effective TLP is
        the stricter of it and the object's own. A version already stored is not
        stored again, but it joins `collection_id` if it was not a member.

        With `defer_index`, the store may write the batch's full-text, observable and
        match-key rows later (`catch_up_index`); `search`, `find_observable` and the
        matcher's reads never miss a stored version either way.
        """
        ...

    def index_lag(self) -> int:
        """How many stored versions the search and match indexes do not hold yet."""
        ...

    def catch_up_index(self, *, limit: int | None = None) -> int:
        """Index up to `limit` of those versions (all when None); how many were indexed."""
        ...

    def seconds_since_put(self) -> float:
        """Seconds since this process last stored a batch."""
        ...

    def get_versions(self, object_id: str, collection_id: str | None = None) -> list[StoredVersion]:
        """Every stored version of an id, oldest first ([] if none)."""
        ...

    def get_latest(self, object_id: str) -> StoredVersion | None: ...

    def query(self, query: ObjectQuery) -> QueryPage: ...

    def query_rows(self, query: ObjectQuery, *, not_held_by: str | None = None) -> RowPage:
        """`query` with light rows: the same versions, in the same order, with the same
        `more`, as `PageRow`s (for the hot paths that send pages of stored JSON).

        With `not_held_by=PEER`, the versions that peer sent here (first source or a
        receipt) or is known to hold are left out, without being read: what a peer's pull
        is served. Then a call examines at most `HELD_WINDOW` memberships past
        `added_after`; `examined_to` says how far it got (rows may be fewer than the
        limit, even none, while `more` is true)."""
        ...

    def iter_objects(
        self, collection_id: str | None = None, *, all_versions: bool = False
    ) -> Iterator[StoredVersion]:
        """Latest versions (or every version) in storage order, streamed."""
        ...

    def search(self, text: str, *, limit: int = 50) -> list[StoredVersion]:
        """Full-text search over names, descriptions, aliases and observable values (latest versions)."""
        ...

    def find_observable(self, kind: str, value: str) -> list[StoredVersion]:
        """Latest versions indexed under a normalised observable value."""
        ...

    def related(self, object_id: str) -> list[tuple[str, str]]:
        """(property, other id) pairs for every reference from or to an object's latest version."""
        ...

    def stats(self) -> StoreStats: ...

    # -- TAXII API roots -------------------------------------------------------
    def add_api_root(self, root: ApiRoot) -> ApiRoot:
        """Create an API root; Conflict if the name exists."""
        ...

    def get_api_root(self, name: str) -> ApiRoot:
        """NotFound if there is none with this name."""
        ...

    def list_api_roots(self) -> list[ApiRoot]:
        """Every API root, by name."""
        ...

    # -- rights ----------------------------------------------------------------
    def grant(self, account: str, collection_id: str, *, read: bool, write: bool) -> None:
        """Set (replace) an account's rights on a collection; NotFound for an unknown
        account or collection. read=write=False takes every right away."""
        ...

    def rights(self, account: str, collection_id: str) -> Rights:
        """The rights granted (Rights() when none, or for an unknown account)."""
        ...

    # -- TAXII status resources ----------------------------------------------
    def put_status(self, status: TaxiiStatus) -> None:
        """Keep a status (replacing one with the same id)."""
        ...

    def get_status(self, status_id: str) -> TaxiiStatus:
        """NotFound if unknown or purged."""
        ...

    def purge_statuses(self, *, older_than: int) -> int:
        """Drop statuses whose request_timestamp is before `older_than` (µs); how many went."""
        ...

    # -- audit log -----------------------------------------------------------
    def audit(self, account: str | None, method: str, endpoint: str, status: int, objects: int) -> None:
        """Record one request served, stamped with the current time."""
        ...

    def audit_log(
        self, *, account: str | None = None, since: int | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        """Entries newest first; `since` (µs) is exclusive."""
        ...

    # -- deleting from a collection --------------------------------------------
    def delete_object(
        self,
        collection_id: str,
        object_id: str,
        versions: Sequence[str] = ("all",),
        *,
        spec_versions: Sequence[str] = (),
    ) -> int:
        """Take versions of an object out of a collection (TAXII §5.7); how many went.

        `versions` holds 'all', 'first', 'last' and/or normalised version keys,
        as in ObjectQuery; `spec_versions` narrows further when given. The
        versions stay in the store (history, other collections); the collection's
        first/last markers of the id are recomputed.
        """
        ...

    # -- federation: peers, cursors, what peers hold -----------------------------
    def add_peer(self, peer: Peer) -> Peer:
        """Conflict if the name or its account is taken."""
        ...

    def get_peer(self, name: str) -> Peer:
        """NotFound if there is no such peer."""
        ...

    def list_peers(self) -> list[Peer]: ...

    def update_peer(self, peer: Peer) -> None:
        """Replace a peer's settings (by name); NotFound if unknown."""
        ...

    def remove_peer(self, name: str) -> None:
        """Forget a peer with its cursors and state; NotFound if unknown."""
        ...

    def peer_for_account(self, account: str) -> Peer | None:
        """The peer bound to a local account, if any."""
        ...

    def get_sync_cursor(self, peer: str, direction: str, collection: str) -> str | None: ...

    def set_sync_cursor(self, peer: str, direction: str, collection: str, position: str) -> None: ...

    def mark_held_pks(self, peer: str, pks: Sequence[int], *, received: bool) -> None:
        """Record that a peer holds these stored versions, named by their `PageRow.pk`: it
        sent them (received=True) or accepted them from this node. A pk the store does not
        hold is not recorded."""
        ...

    def held_pks(self, peer: str, pks: Sequence[int]) -> set[int]:
        """The subset of these stored versions (by `PageRow.pk`) the peer is known to hold:
        it sent them (a receipt, or `mark_held_pks(received=True)`) or accepted them from
        here. A version's first source is not consulted: `PageRow.source` says it."""
        ...

    def received_from(self, object_id: str) -> list[tuple[str, str, int]]:
        """(peer, version, µs) for every version of an object a peer sent, oldest first."""
        ...

    def get_sync_state(self, peer: str) -> PeerSyncState: ...

    def put_sync_state(self, state: PeerSyncState) -> None: ...

    def add_peer_rejection(self, rejection: PeerRejection) -> None: ...

    def peer_rejections(self, peer: str | None = None, *, limit: int = 100) -> list[PeerRejection]:
        """Newest first."""
        ...

    def last_date_added(self) -> int:
        """The highest date_added handed out so far (µs); 0 for an empty store. Cheap:
        the sync loop polls it to notice new objects."""
        ...

    # -- provenance -----------------------------------------------------------
    def record_provenance(self, records: Sequence[ProvenanceRecord], pks: Sequence[int] | None = None) -> int:
        """Keep receipts of stored versions (a receipt of a version the store does not hold is
        not kept); a (id, version, peer) already recorded keeps its first record. How many were new.
        `pks`, one per record, are the versions' keys when the caller has them (`PutResult.pk`
        of the put that stored them): the store then need not look each (id, version) up."""
        ...

    def provenance(self, object_id: str) -> list[ProvenanceRecord]:
        """Every receipt of every version of an object, oldest first."""
        ...

    def senders_of(self, versions: Sequence[tuple[str, str]]) -> dict[tuple[str, str], set[str]]:
        """For each (id, version), the peers that sent it here (provenance and peer holds);
        pairs that no peer sent are absent."""
        ...

    # -- analytics facts (issue 7) --------------------------------------------
    def refresh_facts(self, *, full: bool = False, redaction: RedactionSettings | None = None) -> FactsRefresh:
        """Bring the fact table up to date with every version stored since the last refresh
        (only those, and the facts they change); `full` rebuilds it. Cheap when nothing is new.
        `redaction`: the settings whose rewrites of fact text mark reaches ALTERED (None: those
        of the last refresh); other settings than last time rebuild it."""
        ...

    def load_facts(self, kind: str, *, collection_id: str | None = None,
                   reaches: AbstractSet[int] | None = None) -> list[Fact]:
        """The facts of one kind ('incident', ...) in stored order; with a collection, only
        objects that have a version in it; with `reaches`, only facts of those reaches."""
        ...

    def facts_by_id(self, object_ids: Sequence[str], *, reaches: AbstractSet[int] | None = None) -> dict[str, Fact]: ...

    def fact_summary(self, *, reaches: AbstractSet[int] | None = None, view: str | None = None) -> FactSummary:
        """The pre-aggregated counts of the fact table (analytics/summary.py); with `reaches`, those
        of the objects and facts of these reaches, plus the kept entries of `view` (`keep_view`)."""
        ...

    def fact_actors(self) -> tuple[ActorIndex, dict[str, tuple[str, ...]]]:
        """The actor index the facts were named with, and each canonical actor's sponsors."""
        ...

    def reach_tables(self) -> ReachTables:
        """Visibility classes, reaches and the objects and facts per reach (analytics/visibility.py)."""
        ...

    def kept_view(self, view: str, reaches: AbstractSet[int]) -> Kept:
        """The facts and objects of these reaches that one recipient view (web/dashboard/view.py)
        has no current kept entry for (none at all when the view was kept at the present clock)."""
        ...

    def keep_view(self, view: str, clock: int, facts: Sequence[tuple[int, str, int, Fact | None]],
                  objects: Sequence[tuple[int, int, str, str, bool]]) -> None:
        """Drop a view's stale entries and keep its rebuilt facts ((pk, id, stamp, fact), None:
        withheld) and object verdicts ((pk, stamp, type, TLP, goes)) under the stamps `kept_view`
        gave, at the clock it gave; the view's counts follow. A read-only store keeps nothing."""
        ...

    def kept_facts(self, view: str) -> dict[str, Fact | None]:
        """Every fact a view keeps, as it counts it (None: withheld)."""
        ...

    def fact_neighbourhood(self, object_ids: Sequence[str]) -> list[tuple[StoredVersion, int]]:
        """Latest versions `build_facts` reads for the facts of these objects (with every actor and
        its links), in stored order, each with its object's reach (-1: none recorded): facts built
        over them equal a pass over the store's."""
        ...
