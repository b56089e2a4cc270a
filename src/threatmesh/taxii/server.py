"""The TAXII 2.1 server: every endpoint of §4 and §5, as Starlette routes.

URLs: discovery at `/taxii2/`, and each API root at `/taxii2/{name}/` (kept
under one prefix so that the dashboard and other pages never collide with an
API root's name). `/taxii2/openapi.json` describes the API.

Order of checks on every request, chosen so that nothing leaks to a caller
without access (Appendix B): Accept (406), credentials (401), API root and
collection (404, or 401 for an anonymous caller), rights (403/404 per the
§5.7 matrix), then parameters (400) and body (415, 413, 400, 422).

Every answer, errors and 500 included, is TAXII JSON with the TAXII media
type; every request is written to the audit log (account, method, path,
status, number of objects). HTTP status codes for threatmesh errors are
chosen here, in `_problem_for`.

Reads go through the node's egress policy: an object version that may not go
to the caller is left out of the page, and the page is filled up from later
results, so `limit`, `more` and `next` stay true.
"""

from __future__ import annotations

import logging
import secrets
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any, Awaitable, Callable, Sequence

import orjson
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from threatmesh.errors import (
    AuthError,
    BadParameter,
    Conflict,
    InputError,
    InvalidObject,
    NotFound,
    ThreatmeshError,
)
from threatmesh.settings import Settings
from threatmesh.share.policy import Recipient
from threatmesh.stix.parse import parse_object
from threatmesh.stix.timestamps import micros_to_timestamp
from threatmesh.store.protocol import (
    ApiRoot,
    Collection,
    ObjectQuery,
    PageRow,
    Rights,
    StatusDetail,
    Store,
    StoredVersion,
    TaxiiStatus,
)
from threatmesh.share.outbound import Outbound
from threatmesh.share.redact import RedactionSettings
from threatmesh.taxii import resources
from threatmesh.federation.receive import record_push, screen_push
from threatmesh.federation.revocations import revoke_deleted
from threatmesh.federation.signatures import manifest_for_caller
from threatmesh.taxii.access import (
    ANONYMOUS,
    WWW_AUTHENTICATE,
    Caller,
    authenticate,
    collection_rights,
    recipient_for,
    source_for,
)
from threatmesh.taxii.filters import Endpoint, parse_query
from threatmesh.taxii.media import STIX_MEDIA_TYPE, TAXII_MEDIA_TYPE, accepts_taxii, content_type_supported
from threatmesh.taxii.openapi import openapi_spec
from threatmesh.taxii.pagination import PageTokens, continue_after

log = logging.getLogger(__name__)

PREFIX = "/taxii2"
META_TOKEN_SECRET = "taxii_next_token_secret"
# Statuses are kept a week: the interop profile asks for at least 24 hours.
STATUS_RETENTION_US = 7 * 24 * 3600 * 1_000_000
# How many store pages one response may scan to fill a page that the egress
# policy thinned; after that the page goes out short, with `more` and `next`.
_MAX_FILL_ROUNDS = 20


class _Problem(Exception):
    """An HTTP answer other than success, decided while handling a request."""

    def __init__(
        self,
        status: int,
        title: str,
        description: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(description or title)
        self.status = status
        self.title = title
        self.description = description
        self.headers = headers or {}
        self.details = details


def _unauthorized(description: str = "this endpoint needs an API key") -> _Problem:
    return _Problem(401, "Unauthorized", description, headers={"WWW-Authenticate": WWW_AUTHENTICATE})


def _forbidden(caller: Caller, description: str) -> _Problem:
    # Without credentials the answer is "authenticate", not "you may not" (§1.6.9).
    if caller.anonymous:
        return _unauthorized()
    return _Problem(403, "Forbidden", description)


def _not_found(description: str = "no such resource, or no access to it") -> _Problem:
    return _Problem(404, "Not Found", description)


def _problem_for(exc: Exception) -> _Problem:
    """The one mapping of threatmesh errors to HTTP statuses."""
    if isinstance(exc, _Problem):
        return exc
    if isinstance(exc, BadParameter):
        return _Problem(400, "Bad Request", str(exc.reason), details={"parameter": exc.param})
    if isinstance(exc, AuthError):
        return _unauthorized(str(exc))
    if isinstance(exc, NotFound):
        return _not_found(str(exc))
    if isinstance(exc, InputError):
        return _Problem(400, "Bad Request", exc.describe())
    if isinstance(exc, Conflict):
        return _Problem(409, "Conflict", str(exc))
    if isinstance(exc, ThreatmeshError):
        log.error("TAXII request failed: %s", exc)
        return _Problem(500, "Internal Server Error", "the server could not complete the request")
    log.exception("unexpected error in a TAXII request")
    return _Problem(500, "Internal Server Error", "the server could not complete the request")


def _json_response(body: dict[str, Any] | bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return Response(content, status_code=status, media_type=TAXII_MEDIA_TYPE, headers=headers)


def _error_response(problem: _Problem) -> Response:
    body = resources.error(
        problem.title, http_status=problem.status, description=problem.description, details=problem.details
    )
    return _json_response(body, problem.status, problem.headers)


def _version_of(item: StoredVersion | PageRow) -> str:
    """The TAXII `version` of a stored object: its `modified`, else `created`, as sent
    (§5.3.1); objects with neither get their date_added, which is fixed per collection."""
    if item.version:
        try:
            data = orjson.loads(item.json)
        except orjson.JSONDecodeError:
            data = {}
        for name in ("modified", "created"):
            if isinstance(data.get(name), str):
                return str(data[name])
        return item.version
    return micros_to_timestamp(item.date_added)


SCANNED_LAST_HEADER = "X-Threatmesh-Scanned-Last"


def _date_added_headers(items: Sequence[StoredVersion | PageRow]) -> dict[str, str]:
    if not items:
        return {}
    return {
        "X-TAXII-Date-Added-First": micros_to_timestamp(items[0].date_added),
        "X-TAXII-Date-Added-Last": micros_to_timestamp(items[-1].date_added),
    }


@dataclass(slots=True)
class _Outcome:
    """What a handler reports besides its response: for the audit log."""

    caller: str = ""
    objects: int = 0


@dataclass(frozen=True, slots=True)
class _Page:
    items: list[PageRow]
    more: bool
    next_token: str | None
    scanned_last: int | None = None  # date_added of the last item examined, sent or withheld


Handler = Callable[[Request, _Outcome], Awaitable[Response]]


class TaxiiServer:
    """The endpoints of one node; built once by `taxii_routes`."""

    def __init__(self, settings: Settings, store: Store, tokens: PageTokens) -> None:
        self.settings = settings
        self.store = store
        self.tokens = tokens

    # -- plumbing ----------------------------------------------------------------

    def endpoint(self, methods: dict[str, Handler]) -> Callable[[Request], Awaitable[Response]]:
        """Wrap handlers: method dispatch, TAXII errors for everything, audit."""
        if "GET" in methods:
            methods = {**methods, "HEAD": methods["GET"]}
        allowed = ", ".join(sorted(methods))

        async def handle(request: Request) -> Response:
            outcome = _Outcome()
            try:
                handler = methods.get(request.method)
                if handler is None:
                    raise _Problem(
                        405, "Method Not Allowed", f"use {allowed}", headers={"Allow": allowed}
                    )
                response = await handler(request, outcome)
            except Exception as exc:  # every failure answers TAXII JSON, 500 included
                response = _error_response(_problem_for(exc))
            response.background = BackgroundTask(
                self._audit, outcome.caller, request.method, request.url.path, response.status_code, outcome.objects
            )
            return response

        return handle

    def _audit(self, account: str, method: str, path: str, status: int, objects: int) -> None:
        try:
            self.store.audit(account or None, method, path, status, objects)
        except Exception:  # the answer has gone; a failed audit write must be seen, not raised
            log.exception("cannot write the audit log")

    def _caller(self, request: Request, outcome: _Outcome, *, allow_stix: bool = False) -> Caller:
        if not accepts_taxii(request.headers.get("accept"), allow_stix=allow_stix):
            raise _Problem(
                406, "Not Acceptable", f"this endpoint answers {TAXII_MEDIA_TYPE}; send it in Accept"
            )
        caller = authenticate(request.headers.get("authorization"), self.store)
        outcome.caller = caller.name
        return caller

    def _api_root(self, caller: Caller, name: str) -> ApiRoot:
        try:
            root = self.store.get_api_root(name)
        except NotFound:
            if caller.anonymous:
                raise _unauthorized() from None
            raise _not_found(f"no API root {name!r}") from None
        if caller.anonymous and not any(c.public for c in self.store.list_collections(root.name)):
            raise _unauthorized()
        return root

    def _collection(self, caller: Caller, root_name: str, ref: str) -> tuple[ApiRoot, Collection, Rights]:
        root = self._api_root(caller, root_name)
        try:
            collection: Collection | None = self.store.get_collection(ref)
        except NotFound:
            collection = None
        rights = Rights()
        if collection is not None and collection.api_root == root.name:
            rights = collection_rights(caller, collection, self.store)
        if collection is None or not (rights.read or rights.write):
            # The same answer whether it does not exist or is not visible (Appendix B).
            if caller.anonymous:
                raise _unauthorized()
            raise _not_found(f"no collection {ref!r} in API root {root.name!r}, or no access to it")
        assert collection is not None
        return root, collection, rights

    def _readable(self, caller: Caller, root_name: str, ref: str) -> Collection:
        _, collection, rights = self._collection(caller, root_name, ref)
        if not rights.read:
            raise _forbidden(caller, "this account may not read the collection")
        return collection

    def _max_content_length(self, root: ApiRoot) -> int:
        return root.max_content_length or self.settings.max_content_length

    # -- reading pages through the egress policy ----------------------------------

    def _outbound(self, recipient: Recipient) -> Outbound:
        """The one egress path (policy, references, redaction) for one response."""
        return Outbound(self.store, recipient, default_tlp=self.settings.default_tlp,
                        redaction=RedactionSettings.from_settings(self.settings))

    def _page(self, request: Request, caller: Caller, endpoint: Endpoint, collection: Collection,
              object_id: str | None = None) -> _Page:
        parsed = parse_query(
            request.query_params.multi_items(),
            endpoint=endpoint,
            collection_id=collection.id,
            object_id=object_id,
            page_size_default=self.settings.page_size_default,
            page_size_max=self.settings.page_size_max,
        )
        original = parsed.query
        query = original
        if parsed.next_token is not None:
            cursor = self.tokens.open(parsed.next_token, endpoint=endpoint.value, query=original, account=caller.name)
            query = continue_after(original, cursor)
        items, more, last_seen = self._fetch(query, recipient_for(caller), caller)
        next_token = None
        if more and last_seen is not None:
            next_token = self.tokens.issue(after=last_seen, endpoint=endpoint.value, query=original, account=caller.name)
        elif more:
            # Nothing was examined yet more is claimed: cannot happen with a positive limit.
            more = False
        return _Page(items, more, next_token, last_seen)

    def _fetch(
        self, query: ObjectQuery, recipient: Recipient, caller: Caller = ANONYMOUS
    ) -> tuple[list[PageRow], bool, int | None]:
        wanted = query.limit or self.settings.page_size_default
        items: list[PageRow] = []
        last_seen: int | None = None
        outbound = self._outbound(recipient)
        # A peer is never sent back what it sent here or is known to hold (it would only
        # bounce around the mesh): the store leaves those out, unread.
        peer = caller.peer.name if caller.peer is not None else None
        for _ in range(_MAX_FILL_ROUNDS):
            page = self.store.query_rows(replace(query, limit=wanted - len(items)), not_held_by=peer)
            if page.examined_to is not None:
                last_seen = page.examined_to
            # Every row goes through the egress path (the operator's is a pass-through there).
            items.extend(outbound.prepare_rows(page.rows))
            if not page.more or len(items) >= wanted or last_seen is None:
                return items, page.more, last_seen
            query = continue_after(query, last_seen)
        return items, True, last_seen

    def _object_visible(self, caller: Caller, collection: Collection, object_id: str) -> list[StoredVersion]:
        """The versions of an object in a collection that the caller may see; 404 if none."""
        found = self._outbound(recipient_for(caller)).prepare(self.store.get_versions(object_id, collection.id)).items
        if not found:
            raise _not_found(f"no object {object_id!r} in this collection")
        return found

    # -- §4.1 discovery ------------------------------------------------------------

    async def discovery(self, request: Request, outcome: _Outcome) -> Response:
        def work() -> Response:
            caller = self._caller(request, outcome)
            roots = self.store.list_api_roots()
            if caller.anonymous and not any(c.public for c in self.store.list_collections()):
                raise _unauthorized()
            urls = [f"{PREFIX}/{root.name}/" for root in roots]
            default = f"{PREFIX}/default/" if f"{PREFIX}/default/" in urls else (urls[0] if urls else None)
            body = resources.discovery(
                self.settings.node_name,
                description="threatmesh node: STIX 2.1 intelligence over TAXII 2.1",
                default=default,
                api_roots=urls,
            )
            return _json_response(body)

        return await run_in_threadpool(work)

    async def openapi(self, request: Request, outcome: _Outcome) -> Response:
        return Response(orjson.dumps(openapi_spec()), media_type="application/json")

    # -- §4.2 API root -----------------------------------------------------------

    async def api_root(self, request: Request, outcome: _Outcome) -> Response:
        def work() -> Response:
            caller = self._caller(request, outcome)
            root = self._api_root(caller, request.path_params["api_root"])
            body = resources.api_root(
                root.title, description=root.description or None, max_content_length=self._max_content_length(root)
            )
            return _json_response(body)

        return await run_in_threadpool(work)

    # -- §4.3 status -------------------------------------------------------------

    async def status(self, request: Request, outcome: _Outcome) -> Response:
        def work() -> Response:
            caller = self._caller(request, outcome)
            root = self._api_root(caller, request.path_params["api_root"])
            if caller.anonymous:
                raise _unauthorized()
            try:
                found = self.store.get_status(request.path_params["status_id"])
            except NotFound:
                found = None
            if found is None or found.api_root != root.name or not (caller.is_admin or found.account == caller.name):
                raise _not_found("no such status, or it has expired")
            return _json_response(_status_resource(found))

        return await run_in_threadpool(work)

    # -- §5.1 / §5.2 collections ---------------------------------------------------

    async def collections(self, request: Request, outcome: _Outcome) -> Response:
        def work() -> Response:
            caller = self._caller(request, outcome)
            root = self._api_root(caller, request.path_params["api_root"])
            shown = []
            for collection in sorted(self.store.list_collections(root.name), key=lambda c: c.id):
                rights = collection_rights(caller, collection, self.store)
                if rights.read or rights.write:
                    shown.append(resources.collection(collection, can_read=rights.read, can_write=rights.write))
            outcome.objects = len(shown)
            return _json_response(resources.collections(shown))

        return await run_in_threadpool(work)

    async def collection(self, request: Request, outcome: _Outcome) -> Response:
        def work() -> Response:
            caller = self._caller(request, outcome)
            _, found, rights = self._collection(
                caller, request.path_params["api_root"], request.path_params["collection_id"]
            )
            return _json_response(resources.collection(found, can_read=rights.read, can_write=rights.write))

        return await run_in_threadpool(work)

    # -- §5.3 manifest, §5.4 objects, §5.6 object, §5.8 versions -------------------

    async def manifest(self, request: Request, outcome: _Outcome) -> Response:
        def work() -> Response:
            caller = self._caller(request, outcome, allow_stix=True)
            found = self._readable(caller, request.path_params["api_root"], request.path_params["collection_id"])
            page = self._page(request, caller, Endpoint.MANIFEST, found)
            media_type = STIX_MEDIA_TYPE if STIX_MEDIA_TYPE in found.media_types else found.media_types[0]
            records = [
                resources.ManifestRecord(item.id, item.date_added, _version_of(item), media_type)
                for item in page.items
            ]
            outcome.objects = len(records)
            body = resources.manifest(records, more=page.more, next_token=page.next_token)
            return _json_response(body, headers=_date_added_headers(page.items))

        return await run_in_threadpool(work)

    async def objects(self, request: Request, outcome: _Outcome) -> Response:
        def work() -> Response:
            caller = self._caller(request, outcome, allow_stix=True)
            found = self._readable(caller, request.path_params["api_root"], request.path_params["collection_id"])
            page = self._page(request, caller, Endpoint.OBJECTS, found)
            outcome.objects = len(page.items)
            sent = [i.json for i in page.items]
            # To a threatmesh peer (its key exchanged): the page's signed manifest rides first.
            manifest = manifest_for_caller(caller, sent, self.settings.home, self.store)
            body = resources.envelope(([manifest] if manifest else []) + sent, more=page.more,
                                      next_token=page.next_token)
            headers = _date_added_headers(page.items)
            if page.scanned_last is not None:
                # An extension header: where a resuming client may continue even when the
                # policy withheld the page's tail (the standard headers name sent objects only).
                headers[SCANNED_LAST_HEADER] = micros_to_timestamp(page.scanned_last)
            return _json_response(body, headers=headers)

        return await run_in_threadpool(work)

    async def get_object(self, request: Request, outcome: _Outcome) -> Response:
        def work() -> Response:
            caller = self._caller(request, outcome, allow_stix=True)
            found = self._readable(caller, request.path_params["api_root"], request.path_params["collection_id"])
            object_id = request.path_params["object_id"]
            self._object_visible(caller, found, object_id)
            page = self._page(request, caller, Endpoint.OBJECT, found, object_id)
            outcome.objects = len(page.items)
            body = resources.envelope([i.json for i in page.items], more=page.more, next_token=page.next_token)
            return _json_response(body, headers=_date_added_headers(page.items))

        return await run_in_threadpool(work)

    async def versions(self, request: Request, outcome: _Outcome) -> Response:
        def work() -> Response:
            caller = self._caller(request, outcome, allow_stix=True)
            found = self._readable(caller, request.path_params["api_root"], request.path_params["collection_id"])
            object_id = request.path_params["object_id"]
            self._object_visible(caller, found, object_id)
            page = self._page(request, caller, Endpoint.VERSIONS, found, object_id)
            outcome.objects = len(page.items)
            body = resources.versions(
                [_version_of(i) for i in page.items], more=page.more, next_token=page.next_token
            )
            return _json_response(body, headers=_date_added_headers(page.items))

        return await run_in_threadpool(work)

    # -- §5.7 delete ---------------------------------------------------------------

    async def delete_object(self, request: Request, outcome: _Outcome) -> Response:
        def work() -> Response:
            caller = self._caller(request, outcome, allow_stix=True)
            _, found, rights = self._collection(
                caller, request.path_params["api_root"], request.path_params["collection_id"]
            )
            if not (rights.read and rights.write):
                raise _forbidden(caller, "deleting needs both can_read and can_write")
            object_id = request.path_params["object_id"]
            parsed = parse_query(
                request.query_params.multi_items(),
                endpoint=Endpoint.DELETE,
                collection_id=found.id,
                object_id=object_id,
                page_size_default=self.settings.page_size_default,
                page_size_max=self.settings.page_size_max,
            )
            removed = self.store.delete_object(
                found.id, object_id, parsed.query.versions, spec_versions=parsed.query.spec_versions
            )
            if removed == 0:
                raise _not_found(f"no object {object_id!r} with those versions in this collection")
            # Peers already hold it: withdrawing it from the shared collection revokes it there too.
            revoke_deleted(self.store, found.id, object_id)
            outcome.objects = removed
            return Response(b"", status_code=200, media_type=TAXII_MEDIA_TYPE)

        return await run_in_threadpool(work)

    # -- §5.5 add objects ------------------------------------------------------------

    async def add_objects(self, request: Request, outcome: _Outcome) -> Response:
        def check() -> tuple[Caller, ApiRoot, Collection]:
            caller = self._caller(request, outcome, allow_stix=True)
            root, found, rights = self._collection(
                caller, request.path_params["api_root"], request.path_params["collection_id"]
            )
            if not rights.write:
                raise _forbidden(caller, "this account may not add objects to the collection")
            if not content_type_supported(request.headers.get("content-type"), allow_stix=True):
                raise _Problem(
                    415, "Unsupported Media Type", f"send the envelope as {TAXII_MEDIA_TYPE}"
                )
            return caller, root, found

        caller, root, found = await run_in_threadpool(check)
        body = await _read_limited(request, self._max_content_length(root))
        request_time = time.time_ns() // 1000

        # RFC 7240 `Prefer: return=minimal`: the answer leaves out the list of successes
        # (optional in the status resource, TAXII 2.1 §4.3.1; the counts and failures stay,
        # and GET status/{id}/ still lists them). Peers pushing large batches ask for it.
        minimal = "return=minimal" in request.headers.get("prefer", "").replace(" ", "").lower()

        def work() -> Response:
            status = self._store_envelope(body, caller, root, found, request_time)
            outcome.objects = len(status.successes) + len(status.failures)
            # Minimal: the successes are not even listed (10,000 of them in a peer's push).
            resource = _status_resource(status, list_successes=not minimal)
            if not minimal:
                return _json_response(resource, 202)
            return _json_response(resource, 202, headers={"Preference-Applied": "return=minimal"})

        return await run_in_threadpool(work)

    def _store_envelope(
        self, body: bytes | bytearray, caller: Caller, root: ApiRoot, collection: Collection, request_time: int
    ) -> TaxiiStatus:
        try:
            envelope = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise _Problem(400, "Bad Request", f"the body is not JSON: {exc}") from None
        if not isinstance(envelope, dict):
            raise _Problem(422, "Unprocessable Entity", "the body must be a TAXII envelope (a JSON object)")
        raw_objects = envelope.get("objects", [])
        if not isinstance(raw_objects, list):
            raise _Problem(422, "Unprocessable Entity", "the envelope's objects must be a list")

        fallback_version = micros_to_timestamp(request_time)
        failures: list[StatusDetail] = []
        # From a peer: signature manifests come out, objects that fail their signature are refused.
        push = screen_push(self.store, caller, raw_objects)
        raw_objects = push.accepted_raw
        failures.extend(StatusDetail(i or "unknown", v or fallback_version, why) for i, v, why in push.refused)
        valid = []
        for index, raw in enumerate(raw_objects):
            try:
                valid.append(parse_object(raw))
            except InvalidObject as exc:
                failures.append(
                    StatusDetail(_raw_id(raw, index), _raw_version(raw) or fallback_version, exc.describe())
                )
        successes: list[StatusDetail] = []
        if valid:
            # What a peer sends is forwarded at once; its search and match rows can follow
            # (store/sqlite_index.py: every read of them catches up first).
            results = self.store.put_objects(valid, collection_id=collection.id, source=source_for(caller),
                                             defer_index=caller.peer is not None)
            record_push(self.store, push, valid, results)
            for obj, result in zip(valid, results):
                version = _raw_version(obj.data) or self._unversioned_version(obj.id, collection.id)
                if result.content_differs:
                    failures.append(
                        StatusDetail(
                            obj.id,
                            version,
                            "another object with this id and version is already stored; it is kept",
                        )
                    )
                else:
                    successes.append(StatusDetail(obj.id, version))
        status = TaxiiStatus(
            id=str(uuid.uuid4()),
            api_root=root.name,
            account=caller.name,
            complete=True,
            request_timestamp=request_time,
            successes=tuple(successes),
            failures=tuple(failures),
            pendings=(),
        )
        self.store.put_status(status)
        self.store.purge_statuses(older_than=request_time - STATUS_RETENTION_US)
        return status

    def _unversioned_version(self, object_id: str, collection_id: str) -> str:
        stored = self.store.get_versions(object_id, collection_id)
        return micros_to_timestamp(stored[-1].date_added) if stored else micros_to_timestamp(0)

    def not_found_endpoint(self) -> Callable[[Request], Awaitable[Response]]:
        async def not_found(request: Request, outcome: _Outcome) -> Response:
            if not request.url.path.endswith("/") and request.method in ("GET", "HEAD"):
                # TAXII URLs end in '/' (§3.1); taxii2-client builds status URLs without it.
                target = request.url.replace(path=request.url.path + "/")
                return Response(status_code=307, headers={"Location": str(target)}, media_type=TAXII_MEDIA_TYPE)
            raise _not_found(f"no TAXII endpoint at {request.url.path}")

        methods = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")
        return self.endpoint({m: not_found for m in methods})


def _raw_id(raw: object, index: int) -> str:
    if isinstance(raw, dict) and isinstance(raw.get("id"), str) and raw["id"]:
        return str(raw["id"])
    return f"objects[{index}]"


def _raw_version(raw: object) -> str | None:
    if isinstance(raw, dict):
        for name in ("modified", "created"):
            if isinstance(raw.get(name), str) and raw[name]:
                return str(raw[name])
    return None


def _status_resource(status: TaxiiStatus, *, list_successes: bool = True) -> dict[str, Any]:
    return resources.status(
        status.id,
        complete=status.complete,
        request_timestamp=status.request_timestamp,
        successes=status.successes,
        failures=status.failures,
        pendings=status.pendings,
        list_successes=list_successes,
    )


async def _read_limited(request: Request, limit: int) -> bytearray:
    """The request body, read as a stream and refused (413) once it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise _Problem(400, "Bad Request", "Content-Length is not a number")
        if int(declared) > limit:
            raise _Problem(413, "Payload Too Large", f"the body is larger than max_content_length ({limit} bytes)")
    received = bytearray()
    async for chunk in request.stream():
        if len(received) + len(chunk) > limit:
            raise _Problem(413, "Payload Too Large", f"the body is larger than max_content_length ({limit} bytes)")
        received += chunk
    return received  # not copied into bytes: a push's body is megabytes, and orjson reads either


def node_page_tokens(store: Store) -> PageTokens:
    """`next` tokens keyed by a secret kept in the store, so they outlive a restart."""
    secret = store.get_meta(META_TOKEN_SECRET)
    if not secret:
        secret = secrets.token_hex(32)
        store.set_meta(META_TOKEN_SECRET, secret)
    return PageTokens.from_secret(secret)


def taxii_routes(settings: Settings, store: Store, *, tokens: PageTokens | None = None) -> list[BaseRoute]:
    """Every TAXII 2.1 route of the node, for `create_app` to mount."""
    server = TaxiiServer(settings, store, tokens or node_page_tokens(store))
    root = PREFIX + "/{api_root}"
    collection = root + "/collections/{collection_id}"
    table: list[tuple[str, dict[str, Handler]]] = [
        (PREFIX + "/", {"GET": server.discovery}),
        (PREFIX + "/openapi.json", {"GET": server.openapi}),
        (root + "/", {"GET": server.api_root}),
        (root + "/status/{status_id}/", {"GET": server.status}),
        (root + "/collections/", {"GET": server.collections}),
        (collection + "/", {"GET": server.collection}),
        (collection + "/manifest/", {"GET": server.manifest}),
        (collection + "/objects/", {"GET": server.objects, "POST": server.add_objects}),
        (collection + "/objects/{object_id}/", {"GET": server.get_object, "DELETE": server.delete_object}),
        (collection + "/objects/{object_id}/versions/", {"GET": server.versions}),
    ]
    routes: list[BaseRoute] = [Route(path, _AnyMethod(server.endpoint(methods))) for path, methods in table]
    # Anything else under the prefix still answers TAXII JSON.
    routes.append(Route(PREFIX + "/{rest:path}", _AnyMethod(server.not_found_endpoint())))
    return routes


class _AnyMethod:
    """An ASGI endpoint, so that Starlette passes every method through and the
    handler answers 405 itself, in TAXII JSON, instead of Starlette's plain text."""

    def __init__(self, handle: Callable[[Request], Awaitable[Response]]) -> None:
        self.handle = handle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.handle(Request(scope, receive))
        await response(scope, receive, send)
