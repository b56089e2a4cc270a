"""MISP feeds: a folder with manifest.json + event files + hashes.csv, and the same feed over HTTP on 127.0.0.1."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import corpus_path
from tests.helpers import run_cli
from tests.misp.support import event


def _feed(folder: Path) -> list[str]:
    """A feed of two corpus events and one small event, laid out as MISP publishes feeds."""
    folder.mkdir()
    events = [event()]
    for name in ("existing_event.json",):
        events.append(json.loads(corpus_path("misp", "events", "pymisp-tests", "tests", "mispevent_testfiles",
                                             name).read_text()))
    manifest = {}
    for body in events:
        (folder / f"{body['uuid']}.json").write_text(json.dumps({"Event": body}))
        manifest[body["uuid"]] = {"info": body.get("info", ""), "timestamp": body.get("timestamp", "")}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "hashes.csv").write_text("0123456789abcdef0123456789abcdef,11111111-2222-4333-8444-555555555555\n")
    return list(manifest)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    uuids = _feed(tmp_path / "feed")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "feed"))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", uuids
    server.shutdown()
    server.server_close()


def test_feed_folder_ingests_every_event(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    uuids = _feed(tmp_path / "feed")
    home = tmp_path / "node"
    run_cli(capsys, home, "init")
    result = run_cli(capsys, home, "ingest", str(tmp_path / "feed"), "--json")
    assert result.code == 0, result.err
    for event_uuid in uuids:
        assert run_cli(capsys, home, "show", f"report--{event_uuid}").code == 0


def test_missing_event_of_a_feed_folder_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    uuids = _feed(tmp_path / "feed")
    (tmp_path / "feed" / f"{uuids[0]}.json").unlink()
    home = tmp_path / "node"
    run_cli(capsys, home, "init")
    result = run_cli(capsys, home, "ingest", str(tmp_path / "feed"), "--json")
    assert result.code == 3
    rejections = [r for s in result.json()["sources"] for r in s["rejections"]]
    assert len(rejections) == 1 and uuids[0] in rejections[0]["location"]


def test_feed_url_on_loopback(tmp_path: Path, capsys: pytest.CaptureFixture[str], served: tuple[str, list[str]]) -> None:
    url, uuids = served
    home = tmp_path / "node"
    run_cli(capsys, home, "init")
    result = run_cli(capsys, home, "misp-feed", url, "--json")
    assert result.code == 0, result.err
    assert result.json()["new"] > 100
    for event_uuid in uuids:
        assert run_cli(capsys, home, "show", f"report--{event_uuid}").code == 0
    again = run_cli(capsys, home, "misp-feed", url, "--json").json()
    assert again["new"] == 0 and again["unchanged"] == result.json()["new"] + result.json()["unchanged"]


def test_a_feed_url_without_manifest_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  served: tuple[str, list[str]]) -> None:
    url, uuids = served
    home = tmp_path / "node"
    run_cli(capsys, home, "init")
    result = run_cli(capsys, home, "misp-feed", url + "missing/", "--json")
    assert result.code == 3 and "manifest.json" in result.json()["error"] and "404" in result.json()["error"]
