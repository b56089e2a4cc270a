"""HTTP to a peer's TAXII 2.1 API root: read pages of objects, post envelopes.

The sync talks to peers with a plain `requests.Session` rather than
`taxii2-client` (which `taxii/client.py` uses for one-off pulls): a session
per peer keeps its connection alive across the many small rounds of a
near-real-time loop, every byte on the wire is counted for the sync report,
and the response headers (where a pull resumes) are at hand.

TAXII 2.1 §3.4 (added_after, limit, next), §3.3.1 (X-TAXII-Date-Added-Last),
§5.4 get objects, §5.5 add objects (status resource, §4.3).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urljoin

import orjson
import requests

from threatmesh.errors import ThreatmeshError
from threatmesh.store.protocol import Peer

TAXII_MEDIA_TYPE = "application/taxii+json;version=2.1"
SCANNED_LAST_HEADER = "X-Threatmesh-Scanned-Last"
_CONNECT_TIMEOUT = 3.0
_READ_TIMEOUT = 120.0
DEFAULT_MAX_CONTENT = 10 * 1024 * 1024


class PeerUnreachable(ThreatmeshError):
    """A peer did not answer, or answered with an error: the round is retried later."""

    def __init__(self, peer: str, reason: str) -> None:
        self.peer = peer
        self.reason = reason
        super().__init__(f"peer {peer}: {reason}")


@dataclass(frozen=True, slots=True)
class Page:
    objects: list[dict[str, Any]]
    more: bool
    next_token: str | None
    resume_after: str | None  # where the next pull starts (exclusive)


@dataclass(frozen=True, slots=True)
class PostOutcome:
    successes: int
    failures: tuple[str, ...]  # "id: message"


def _authorization(credential: str | None) -> str | None:
    """A threatmesh API key goes as Bearer; 'user:password' (medallion and most
    other servers) as HTTP Basic."""
    if not credential:
        return None
    if ":" in credential and not credential.startswith("tm_"):
        return "Basic " + base64.b64encode(credential.encode("utf-8")).decode("ascii")
    return f"Bearer {credential}"


class PeerClient:
    """One peer's TAXII API root, over one keep-alive session."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.session = requests.Session()
        self.session.headers["Accept"] = TAXII_MEDIA_TYPE
        auth = _authorization(peer.credential)
        if auth:
            self.session.headers["Authorization"] = auth
        self.bytes_sent = 0
        self.bytes_received = 0
        self._root: str | None = None
        self._max_content: int | None = None

    def close(self) -> None:
        self.session.close()

    # -- plumbing ------------------------------------------------------------------

    def _request(self, method: str, url: str, *, params: Mapping[str, str] | None = None,
                 body: bytes | None = None) -> requests.Response:
        # On a POST, `Prefer: return=minimal` (RFC 7240) asks for a status without the list of
        # successes (the counts and failures are all a push needs); servers that do not know
        # the preference ignore it.
        headers = {"Content-Type": TAXII_MEDIA_TYPE, "Prefer": "return=minimal"} if body is not None else None
        try:
            response = self.session.request(method, url, params=params, data=body, headers=headers,
                                            timeout=(_CONNECT_TIMEOUT, _READ_TIMEOUT), allow_redirects=True)
        except requests.RequestException as exc:
            raise PeerUnreachable(self.peer.name, f"{method} {url}: {type(exc).__name__}: {exc}") from exc
        self.bytes_sent += len(body or b"") + len(response.request.url or "")
        self.bytes_received += len(response.content)
        if response.status_code >= 400:
            detail = response.text[:300].replace("\n", " ")
            raise PeerUnreachable(self.peer.name, f"{method} {url}: HTTP {response.status_code}: {detail}")
        return response

    def _json(self, response: requests.Response) -> Any:
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise PeerUnreachable(self.peer.name, f"{response.url}: answer is not JSON: {exc}") from exc

    def api_root(self) -> str:
        """The API root URL: the peer's URL, or the default root of a discovery URL (§4.1)."""
        if self._root is None:
            url = self.peer.url if self.peer.url.endswith("/") else self.peer.url + "/"
            info = self._json(self._request("GET", url))
            if isinstance(info, dict) and "api_roots" in info:
                default = info.get("default") or (info["api_roots"] or [None])[0]
                if not default:
                    raise PeerUnreachable(self.peer.name, f"{url} is a discovery endpoint with no API root")
                url = urljoin(url, default)
                if not url.endswith("/"):
                    url += "/"
                info = self._json(self._request("GET", url))
            self._max_content = int(info.get("max_content_length") or DEFAULT_MAX_CONTENT) if isinstance(
                info, dict) else DEFAULT_MAX_CONTENT
            self._root = url
        return self._root

    def max_content_length(self) -> int:
        self.api_root()
        return self._max_content or DEFAULT_MAX_CONTENT

    def _objects_url(self, collection: str) -> str:
        return f"{self.api_root()}collections/{collection}/objects/"

    # -- §5.4 get objects, §5.5 add objects ------------------------------------------

    def get_page(self, collection: str, *, added_after: str | None, next_token: str | None,
                 limit: int) -> Page:
        params: dict[str, str] = {"limit": str(limit)}
        if added_after:
            params["added_after"] = added_after
        if next_token:
            params["next"] = next_token
        response = self._request("GET", self._objects_url(collection), params=params)
        envelope = self._json(response) if response.content else {}
        if not isinstance(envelope, dict):
            raise PeerUnreachable(self.peer.name, "the objects answer is not a TAXII envelope")
        objects = envelope.get("objects") or []
        resume = response.headers.get(SCANNED_LAST_HEADER) or response.headers.get("X-TAXII-Date-Added-Last")
        return Page(
            objects=[o for o in objects if isinstance(o, dict)],
            more=bool(envelope.get("more")),
            next_token=envelope.get("next") if isinstance(envelope.get("next"), str) else None,
            resume_after=resume,
        )

    def post_envelope(self, collection: str, objects: list[bytes]) -> PostOutcome:
        body = b'{"objects":[' + b",".join(objects) + b"]}"
        status = self._json(self._request("POST", self._objects_url(collection), body=body))
        if not isinstance(status, dict):
            raise PeerUnreachable(self.peer.name, "the add-objects answer is not a status resource")
        failures = tuple(
            f"{f.get('id')}: {f.get('message', 'refused')}" for f in status.get("failures") or [] if isinstance(f, dict)
        )
        successes = status.get("success_count")
        if successes is None:
            successes = len(status.get("successes") or [])
        return PostOutcome(int(successes), failures)
