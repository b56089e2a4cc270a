"""`--follow`: hits in a growing file are written as sightings while the file is still being read."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import orjson

from threatmesh.match.engine import Hit
from threatmesh.match.index import build_index
from threatmesh.match.run import run_match
from threatmesh.match.sightings import SightingRecorder, sighting_id
from threatmesh.node import init_node

LINE = "Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186\n"


def test_follow_writes_sightings_as_lines_arrive(tmp_path: Path) -> None:
    node = init_node(tmp_path / "node", environ={}).node
    index = build_index([{"type": "indicator", "id": "indicator--00000001-0000-4000-8000-000000000000",
                          "pattern": "[ipv4-addr:value = '173.234.31.186']", "pattern_type": "stix",
                          "valid_from": "2000-01-01T00:00:00Z"}])
    recorder = SightingRecorder(node.store, node.identity_id, node.default_collection.id)
    log = tmp_path / "auth.log"
    log.write_text("Dec 10 06:55:40 LabSZ sshd[1]: Connection from 192.0.2.1\n")
    sid = sighting_id(node.identity_id, index.indicators[0].id)
    stop = threading.Event()
    stored_counts: list[int] = []

    def writer() -> None:
        for _ in range(2):
            time.sleep(0.2)
            with open(log, "a") as fh:
                fh.write(LINE)
        time.sleep(3)  # a safety net: the second hit normally stops the run first
        stop.set()

    def on_hit(hit: Hit, counted: bool) -> None:
        # Called once the hit's sighting is written, while the file is still followed.
        stored = node.store.get_latest(sid)
        assert stored is not None and counted
        stored_counts.append(orjson.loads(stored.json)["count"])
        if len(stored_counts) == 2:
            stop.set()

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    report = run_match([str(log)], index, recorder, fmt="syslog", follow=True, stop=stop.is_set,
                       reader_options={"year": 2018}, on_hit=on_hit)
    node.close()
    assert stored_counts == [1, 2]  # one new version per hit, as each line arrived
    assert report.hits == 2 and report.new_hits == 2 and report.read.lines == 3
