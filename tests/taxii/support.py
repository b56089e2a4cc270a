"""Helpers of the TAXII tests: STIX object makers, headers, a served node."""

from __future__ import annotations

import base64
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.testclient import TestClient

from threatmesh.node import Node
from threatmesh.store.protocol import Collection
from threatmesh.taxii.media import TAXII_MEDIA_TYPE

TLP_IDS = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "red": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
ACCEPT = {"Accept": TAXII_MEDIA_TYPE}
POST_HEADERS = {"Accept": TAXII_MEDIA_TYPE, "Content-Type": TAXII_MEDIA_TYPE}


def stix_ts(n: int) -> str:
    """A STIX timestamp with millisecond precision; larger n is later."""
    return f"2024-01-01T{n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}.000Z"


def indicator(n: int, version: int = 0, tlp: str | None = "clear", **extra: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid.UUID(int=n, version=4)}",
        "created": stix_ts(0),
        "modified": stix_ts(version),
        "name": f"indicator {n}",
        "pattern": f"[ipv4-addr:value = '10.0.{n // 256 % 256}.{n % 256}']",
        "pattern_type": "stix",
        "valid_from": stix_ts(0),
    }
    if tlp:
        obj["object_marking_refs"] = [TLP_IDS[tlp]]
    obj.update(extra)
    return obj


def malware(n: int, version: int = 0, tlp: str | None = "clear") -> dict[str, Any]:
    obj: dict[str, Any] = {
        "type": "malware",
        "spec_version": "2.1",
        "id": f"malware--{uuid.UUID(int=n, version=4)}",
        "created": stix_ts(0),
        "modified": stix_ts(version),
        "name": f"malware {n}",
        "is_family": True,
    }
    if tlp:
        obj["object_marking_refs"] = [TLP_IDS[tlp]]
    return obj


def bearer(key: str) -> dict[str, str]:
    return {**ACCEPT, "Authorization": f"Bearer {key}"}


def basic(key: str, user: str = "anyone") -> dict[str, str]:
    token = base64.b64encode(f"{user}:{key}".encode()).decode()
    return {**ACCEPT, "Authorization": f"Basic {token}"}


@dataclass
class Served:
    node: Node
    client: TestClient
    admin_key: str
    collection: Collection  # the node's default collection (api root 'default')

    @property
    def admin(self) -> dict[str, str]:
        return bearer(self.admin_key)

    def url(self, rest: str = "", collection: Collection | None = None) -> str:
        c = collection or self.collection
        return f"/taxii2/{c.api_root}/collections/{c.id}/{rest}"

    def post(self, objects: list[dict[str, Any]], key: str | None = None, collection: Collection | None = None) -> Any:
        headers = {**POST_HEADERS, "Authorization": f"Bearer {key or self.admin_key}"}
        response = self.client.post(self.url("objects/", collection), headers=headers, json={"objects": objects})
        assert response.status_code == 202, response.text
        return response.json()


class LiveServer:
    """A real uvicorn server on 127.0.0.1, on a port the OS picked, in a thread."""

    def __init__(self, app: Any) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()
