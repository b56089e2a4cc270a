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
from typing import Iterator, Protocol, Sequence, runtime_checkable

from threatmesh.stix.model import StixObject


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


@dataclass(frozen=True, slots=True)
class StoreStats:
    objects: int  # distinct ids
    versions: int
    by_type: dict[str, int] = field(default_factory=dict)  # latest versions per type
    by_tlp: dict[str, int] = field(default_factory=dict)  # latest versions per TLP ('unmarked' for None)
    by_collection: dict[str, int] = field(default_factory=dict)  # collection id -> distinct ids
    size_bytes: int = 0


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
    ) -> list[PutResult]:
        """Store a batch in one transaction, atomically; one result per object, in order.

        `tlp` is the level the batch was received under; the stored effective TLP is
        the stricter of it and the object's own. A version already stored is not
        stored again, but it joins `collection_id` if it was not a member.
        """
        ...

    def get_versions(self, object_id: str, collection_id: str | None = None) -> list[StoredVersion]:
        """Every stored version of an id, oldest first ([] if none)."""
        ...

    def get_latest(self, object_id: str) -> StoredVersion | None: ...

    def query(self, query: ObjectQuery) -> QueryPage: ...

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
