"""The TAXII 2.1 client side of the node: discover, pull and push, over `taxii2-client`.

`taxii2-client` (the OASIS library) does the HTTP, the media types, `as_pages`
and status polling. Two things it does not do are added here:

- it hides response headers, so a requests hook records each page's
  `X-TAXII-Date-Added-Last`: that is where a pull resumes next time
  (`added_after`, exclusive), kept per server and collection in the store;
- it sends an envelope as given, so push cuts the selection into envelopes
  that stay under the server's `max_content_length`.

Everything pushed goes through the egress policy first; what it refuses is
counted and never sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import chain
from typing import Any, Callable, Iterable

import requests
from requests.auth import AuthBase
from taxii2client.exceptions import TAXIIServiceException
from taxii2client.v21 import ApiRoot, Collection as RemoteCollection, Server, as_pages

from threatmesh.errors import InvalidObject, ThreatmeshError
from threatmesh.share.outbound import Outbound
from threatmesh.share.policy import Recipient
from threatmesh.share.redact import RedactionSettings
from threatmesh.stix.parse import parse_object
from threatmesh.store.protocol import Store, StoredVersion
from threatmesh.taxii import resources

PULL_STATE_PREFIX = "taxii.pull."
DEFAULT_PAGE = 1000
# Room left in each pushed envelope for the envelope's own bytes.
_ENVELOPE_OVERHEAD = 64


class TaxiiClientError(ThreatmeshError):
    """A remote TAXII server refused or failed a request."""


class _Bearer(AuthBase):
    def __init__(self, key: str) -> None:
        self.key = key

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.key}"
        return request


@dataclass(frozen=True, slots=True)
class Credentials:
    user: str | None = None
    password: str | None = None
    key: str | None = None  # a threatmesh API key, sent as Bearer
    verify: bool | str = True  # False, or a CA bundle path, for private PKI

    def kwargs(self) -> dict[str, Any]:
        if self.key:
            return {"auth": _Bearer(self.key), "verify": self.verify}
        return {"user": self.user, "password": self.password, "verify": self.verify}


def _remote(call: Callable[[], Any], what: str) -> Any:
    try:
        return call()
    except (TAXIIServiceException, requests.RequestException) as exc:
        raise TaxiiClientError(f"{what}: {exc}") from exc


def discover(url: str, credentials: Credentials = Credentials()) -> dict[str, Any]:
    """The discovery resource of a server, with each API root's information."""
    server = Server(url, **credentials.kwargs())
    _remote(server.refresh, f"discovery at {url}")
    roots = []
    for root in server.api_roots:
        entry: dict[str, Any] = {"url": root.url}
        try:
            root.refresh_information()
            entry.update(title=root.title, versions=root.versions, max_content_length=root.max_content_length)
            root.refresh_collections()
            entry["collections"] = [
                {"id": c.id, "title": c.title, "can_read": c.can_read, "can_write": c.can_write}
                for c in root.collections
            ]
        except (TAXIIServiceException, requests.RequestException) as exc:
            entry["error"] = str(exc)
        roots.append(entry)
    return {"url": url, "title": server.title, "description": server.description, "default": getattr(
        server.default, "url", None), "api_roots": roots}


def _api_root(url: str, credentials: Credentials) -> ApiRoot:
    """An API root from its URL, or the default root of a discovery URL."""
    root = ApiRoot(url, **credentials.kwargs())
    try:
        root.refresh_information()
        return root
    except (TAXIIServiceException, requests.RequestException):
        server = Server(url, **credentials.kwargs())
        _remote(server.refresh, f"{url} is neither an API root nor a discovery endpoint")
        if server.default is None:
            raise TaxiiClientError(f"{url} names no default API root; give the API root's URL") from None
        server.default.refresh_information()
        return server.default


def _collection(url: str, collection_id: str, credentials: Credentials) -> tuple[ApiRoot, RemoteCollection]:
    root = _api_root(url, credentials)
    collection = RemoteCollection(root.url + f"collections/{collection_id}/", **credentials.kwargs())
    _remote(collection.refresh, f"collection {collection_id} at {root.url}")
    return root, collection


@dataclass
class PullReport:
    pages: int = 0
    received: int = 0
    stored: int = 0
    unchanged: int = 0
    rejected: list[str] = field(default_factory=list)  # one reason per rejected object
    resumed_from: str | None = None
    resume_point: str | None = None


def pull_state_key(url: str, collection_id: str) -> str:
    return f"{PULL_STATE_PREFIX}{url}|{collection_id}"


def pull(
    store: Store,
    url: str,
    collection_id: str,
    *,
    into: str,
    peer: str,
    credentials: Credentials = Credentials(),
    added_after: str | None = None,
    page_size: int = DEFAULT_PAGE,
    on_page: Callable[[int], None] | None = None,
) -> PullReport:
    """Copy a remote collection into local collection `into`, resuming where the last pull stopped.

    `added_after` overrides the remembered point. Each page is stored before
    the resume point moves past it, so an interrupted pull repeats at most
    one page, and repeating is harmless (stores are idempotent).
    """
    _, remote = _collection(url, collection_id, credentials)
    if not remote.can_read:
        raise TaxiiClientError(f"the server does not let these credentials read collection {collection_id}")
    state_key = pull_state_key(url, collection_id)
    start = added_after or store.get_meta(state_key)
    report = PullReport(resumed_from=start)
    last_header: list[str] = []

    def remember(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        value = response.headers.get("X-TAXII-Date-Added-Last")
        if value:
            last_header.append(value)

    remote._conn.session.hooks["response"].append(remember)
    filters: dict[str, Any] = {"added_after": start} if start else {}
    try:
        pages = as_pages(remote.get_objects, per_request=page_size, **filters)
        while True:
            envelope = _remote(lambda: next(pages, None), f"objects of {collection_id}")
            if envelope is None:
                break
            report.pages += 1
            raw_objects = envelope.get("objects", [])
            report.received += len(raw_objects)
            _store_page(store, raw_objects, into=into, peer=peer, report=report)
            if last_header:
                report.resume_point = last_header[-1]
                store.set_meta(state_key, last_header[-1])
            if on_page:
                on_page(len(raw_objects))
    finally:
        remote._conn.session.hooks["response"].remove(remember)
    return report


def _store_page(store: Store, raw_objects: list[Any], *, into: str, peer: str, report: PullReport) -> None:
    valid = []
    for index, raw in enumerate(raw_objects):
        try:
            valid.append(parse_object(raw))
        except InvalidObject as exc:
            exc.source = exc.source or peer
            exc.index = index if exc.index is None else exc.index
            report.rejected.append(exc.describe())
    if not valid:
        return
    for result in store.put_objects(valid, collection_id=into, source=f"peer:{peer}"):
        if result.outcome.value == "unchanged":
            report.unchanged += 1
        else:
            report.stored += 1


@dataclass
class PushReport:
    envelopes: int = 0
    sent: int = 0
    succeeded: int = 0
    failed: list[str] = field(default_factory=list)  # "id: message" from the server's status
    withheld: int = 0  # refused by the egress policy
    withheld_rules: dict[str, int] = field(default_factory=dict)


def envelopes_within(objects: Iterable[bytes], max_bytes: int, max_objects: int) -> Iterable[list[bytes]]:
    """Group serialised objects into envelopes no larger than `max_bytes` (one object per
    envelope at least: an object larger than the limit is sent alone and the server judges it)."""
    batch: list[bytes] = []
    size = _ENVELOPE_OVERHEAD
    for raw in objects:
        if batch and (size + len(raw) + 1 > max_bytes or len(batch) >= max_objects):
            yield batch
            batch, size = [], _ENVELOPE_OVERHEAD
        batch.append(raw)
        size += len(raw) + 1
    if batch:
        yield batch


def push(
    store: Store,
    url: str,
    collection_id: str,
    selection: Iterable[StoredVersion],
    *,
    recipient: Recipient,
    default_tlp: str,
    credentials: Credentials = Credentials(),
    batch_size: int = DEFAULT_PAGE,
    on_batch: Callable[[int], None] | None = None,
    redaction: RedactionSettings = RedactionSettings(),
) -> PushReport:
    """Send the selected object versions that the egress path (share.outbound) lets go to
    `recipient`, in the form it lets them go (redacted copies where needed)."""
    root, remote = _collection(url, collection_id, credentials)
    if not remote.can_write:
        raise TaxiiClientError(f"the server does not let these credentials write to collection {collection_id}")
    limit = int(root.max_content_length or 10 * 1024 * 1024)
    report = PushReport()

    outbound = Outbound(store, recipient, default_tlp=default_tlp, redaction=redaction)

    def allowed() -> Iterable[bytes]:
        chunk: list[StoredVersion] = []
        for item in chain(selection, [None]):
            if item is not None:
                chunk.append(item)
            if chunk and (item is None or len(chunk) >= batch_size):
                prepared = outbound.prepare(chunk)
                chunk = []
                for entry in prepared.withheld:
                    report.withheld += 1
                    report.withheld_rules[entry.rule] = report.withheld_rules.get(entry.rule, 0) + 1
                yield from prepared.objects

    for batch in envelopes_within(allowed(), limit, batch_size):
        body = resources.envelope(batch)
        status = _remote(
            lambda: remote.add_objects(body, wait_for_completion=True, timeout=300),
            f"POST to collection {collection_id}",
        )
        report.envelopes += 1
        report.sent += len(batch)
        report.succeeded += int(status.success_count)
        for failure in status.failures or []:
            report.failed.append(f"{failure.get('id')}: {failure.get('message', 'refused')}")
        if on_batch:
            on_batch(len(batch))
    return report

