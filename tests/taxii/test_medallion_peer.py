"""The judge of the client: medallion (the OASIS reference TAXII 2.1 server) as a real peer.

medallion runs as its own process on 127.0.0.1 with its memory backend, loaded
from a data file this test writes. threatmesh's CLI (`taxii pull` / `taxii
push`, over `threatmesh.taxii.client`) pulls one of its collections and pushes
to another; the objects must arrive intact both ways, compared as JSON.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from tests.taxii.support import TLP_IDS, indicator, malware
from threatmesh.node import open_node

pytest.importorskip("medallion", reason="medallion (the OASIS reference server) is in the test extras")

API_ROOT = "api1"
SOURCE = str(uuid.UUID(int=0xA11CE, version=4))  # medallion collection threatmesh pulls from
TARGET = str(uuid.UUID(int=0xB0B, version=4))  # medallion collection threatmesh pushes to
USER, PASSWORD = "peer", "peer-password"
ACCEPT = {"Accept": "application/taxii+json;version=2.1"}
# medallion pages by its own max_page_size; keep it below the object count so paging is exercised.
MEDALLION_PAGE = 20


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _remote_objects() -> list[dict[str, Any]]:
    """What the peer holds: the shapes a pull must carry unchanged (unicode, custom
    properties, nested lists, SROs, a custom object, two versions of one object)."""
    objects: list[dict[str, Any]] = [indicator(n) for n in range(40)]
    objects += [malware(n) for n in range(10)]
    objects.append(indicator(1000, version=1))
    objects.append(indicator(1000, version=2, description="second version: the one a default pull returns"))
    objects.append({
        "type": "intrusion-set",
        "spec_version": "2.1",
        "id": "intrusion-set--" + str(uuid.UUID(int=7, version=4)),
        "created": "2023-03-01T10:00:00.123Z",
        "modified": "2023-03-01T10:00:00.123Z",
        "name": "Ünïcødé Bear 熊",
        "aliases": ["APT-Ω", "Sandstorm"],
        "x_threatmesh_test": {"nested": [1, 2.5, None, True, "ß"]},
        "object_marking_refs": [TLP_IDS["clear"]],
    })
    objects.append({
        "type": "relationship",
        "spec_version": "2.1",
        "id": "relationship--" + str(uuid.UUID(int=8, version=4)),
        "created": "2023-03-02T00:00:00.000Z",
        "modified": "2023-03-02T00:00:00.000Z",
        "relationship_type": "uses",
        "source_ref": "intrusion-set--" + str(uuid.UUID(int=7, version=4)),
        "target_ref": malware(3)["id"],
        "object_marking_refs": [TLP_IDS["clear"]],
    })
    objects.append({
        "type": "x-threatmesh-probe",
        "spec_version": "2.1",
        "id": "x-threatmesh-probe--" + str(uuid.UUID(int=9, version=4)),
        "created": "2023-03-03T00:00:00.000Z",
        "modified": "2023-03-03T00:00:00.000Z",
        "x_score": 97,
    })
    return objects


def _medallion_data(objects: list[dict[str, Any]], port: int) -> dict[str, Any]:
    manifest = []
    for n, obj in enumerate(objects):
        manifest.append({
            "id": obj["id"],
            "date_added": f"2024-02-01T00:00:{n // 1_000_000:02d}.{n % 1_000_000:06d}Z",
            "version": obj["modified"],
            "media_type": "application/stix+json;version=2.1",
        })
    collection_common = {"media_types": ["application/stix+json;version=2.1"]}
    return {
        "/discovery": {
            "title": "medallion peer",
            "description": "the OASIS reference server, as a threatmesh peer",
            "default": f"http://127.0.0.1:{port}/{API_ROOT}/",
            "api_roots": [f"http://127.0.0.1:{port}/{API_ROOT}/"],
        },
        API_ROOT: {
            "information": {
                "title": "peer API root",
                "versions": ["application/taxii+json;version=2.1"],
                "max_content_length": 9_765_625,
            },
            "status": [],
            "collections": [
                {"id": SOURCE, "title": "shared with threatmesh", "can_read": True, "can_write": False,
                 "objects": objects, "manifest": manifest, **collection_common},
                {"id": TARGET, "title": "inbox for threatmesh", "can_read": True, "can_write": True,
                 "objects": [], "manifest": [], **collection_common},
            ],
        },
    }


@pytest.fixture
def medallion(tmp_path: Path) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A medallion process on 127.0.0.1; yields its API root URL and the objects it was loaded with."""
    port = _free_port()
    objects = _remote_objects()
    data_file = tmp_path / "medallion-data.json"
    data_file.write_text(json.dumps(_medallion_data(objects, port)), encoding="utf-8")
    config_file = tmp_path / "medallion-config.json"
    config_file.write_text(json.dumps({
        "backend": {"module_class": "MemoryBackend", "module": "medallion.backends.memory_backend",
                    "filename": str(data_file)},
        "users": {USER: PASSWORD},
        "taxii": {"max_page_size": MEDALLION_PAGE},
    }), encoding="utf-8")
    executable = shutil.which("medallion", path=str(Path(sys.executable).parent))
    assert executable, "medallion is installed but its script is not next to the interpreter"
    log = (tmp_path / "medallion.log").open("wb")  # read when a test fails
    process = subprocess.Popen(
        [executable, "--host", "127.0.0.1", "--port", str(port), str(config_file)],
        stdout=log, stderr=subprocess.STDOUT,
    )
    root_url = f"http://127.0.0.1:{port}/{API_ROOT}/"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/taxii2/", headers=ACCEPT, auth=(USER, PASSWORD),
                                   timeout=2)
                if answer.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None:
                pytest.fail(f"medallion exited: {(tmp_path / 'medallion.log').read_text()}")
            assert time.monotonic() < deadline, "medallion did not start"
            time.sleep(0.1)
        yield root_url, objects
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "threatmesh.cli", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=120)


def _latest(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for obj in objects:
        if obj["id"] not in latest or obj["modified"] > latest[obj["id"]]["modified"]:
            latest[obj["id"]] = obj
    return latest


def _medallion_collection(root_url: str, collection_id: str) -> list[dict[str, Any]]:
    """Every object of a medallion collection, read with plain HTTP (following `next`)."""
    found: list[dict[str, Any]] = []
    # medallion 3.0.0 answers 500 to `next` without `limit`, so both go every time.
    params: dict[str, str] = {"match[version]": "all", "limit": str(MEDALLION_PAGE)}
    while True:
        page = httpx.get(f"{root_url}collections/{collection_id}/objects/", params=params, headers=ACCEPT,
                         auth=(USER, PASSWORD), timeout=30)
        assert page.status_code == 200, page.text
        body = page.json()
        found += body.get("objects", [])
        if not body.get("more"):
            return found
        params = {"match[version]": "all", "limit": str(MEDALLION_PAGE), "next": body["next"]}


def test_pull_from_medallion_then_push_to_it(tmp_path: Path, medallion: tuple[str, list[dict[str, Any]]]) -> None:
    root_url, remote = medallion
    home = tmp_path / "node"
    assert _cli(home, "init", "--name", "medallion's peer").returncode == 0
    assert _cli(home, "collection", "add", "From medallion", "--alias", "inbox").returncode == 0

    # Pull: everything medallion serves by default (the latest version of each object) arrives unchanged.
    pulled = _cli(home, "taxii", "pull", root_url, "--collection", SOURCE, "--peer", "medallion",
                  "--into", "inbox", "--user", USER, "--password", PASSWORD, "--page-size", "15")
    assert pulled.returncode == 0, pulled.stderr
    expected = _latest(remote)
    assert f"pulled {len(expected)} objects" in pulled.stdout
    node = open_node(home, environ={})
    try:
        inbox = node.collection("inbox").id
        stored = [json.loads(v.json) for v in node.store.iter_objects(inbox, all_versions=True)]
        sources = {v.source for v in node.store.iter_objects(inbox)}
    finally:
        node.close()
    assert len(stored) == len(expected)
    assert {o["id"]: o for o in stored} == expected
    assert sources == {"peer:medallion"}

    # A second pull resumes after the last X-TAXII-Date-Added-Last: nothing new, nothing repeated.
    again = _cli(home, "taxii", "pull", root_url, "--collection", SOURCE, "--peer", "medallion",
                 "--into", "inbox", "--user", USER, "--password", PASSWORD)
    assert again.returncode == 0, again.stderr
    assert "pulled 0 objects" in again.stdout

    # Push: a local collection of our own objects goes to medallion's inbox, TLP:RED held back.
    made = _cli(home, "collection", "add", "Outbound", "--alias", "outbound")
    assert made.returncode == 0, made.stderr
    outgoing = [indicator(5000 + n, tlp="clear", labels=["from-threatmesh"]) for n in range(45)]
    outgoing.append(malware(5000, tlp="green"))
    outgoing.append({**malware(5001, tlp=None), "name": "Ünïcødé ransomware 勒索", "x_family_score": 0.75,
                     "object_marking_refs": [TLP_IDS["clear"]]})
    secret = indicator(5999, tlp="red")
    bundle = tmp_path / "outgoing.json"
    bundle.write_text(json.dumps({"type": "bundle", "id": f"bundle--{uuid.uuid4()}",
                                  "objects": [*outgoing, secret]}), encoding="utf-8")
    ingested = _cli(home, "ingest", str(bundle), "--collection", "outbound")
    assert ingested.returncode == 0, ingested.stderr
    pushed = _cli(home, "taxii", "push", root_url, "--collection", TARGET, "--from", "outbound", "--community",
                  "--user", USER, "--password", PASSWORD, "--batch-size", "20")
    assert pushed.returncode == 0, pushed.stderr
    assert f"sent {len(outgoing)} objects in 3 requests: {len(outgoing)} accepted" in pushed.stdout
    assert "1 withheld" in pushed.stdout

    arrived = _medallion_collection(root_url, TARGET)
    assert len(arrived) == len(outgoing)
    assert {o["id"]: o for o in arrived} == {o["id"]: o for o in outgoing}
    assert secret["id"] not in {o["id"] for o in arrived}
