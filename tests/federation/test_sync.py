"""One sync round at a time, between two nodes served in this process on 127.0.0.1:
resumable pulls with paging, idempotent pushes, no echo, policy refusals, and the
`peer` / `sync` commands."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import orjson
import pytest

from tests.federation.mesh import indicator
from tests.taxii.support import LiveServer
from threatmesh.cli import main
from threatmesh.federation import sync as sync_module
from threatmesh.federation.node_sync import context_for
from threatmesh.federation.peers import add_peer
from threatmesh.federation.sync import PULL, PUSH, sync_peer
from threatmesh.federation.transport import PeerClient
from threatmesh.node import Node, init_node
from threatmesh.stix.parse import parse_object
from threatmesh.store.protocol import Peer
from threatmesh.web.app import create_app


class Pair:
    """Node `a` and node `b`, each served, each registered as the other's peer."""

    def __init__(self, tmp: Path) -> None:
        created_a, created_b = init_node(tmp / "a", "a", environ={}), init_node(tmp / "b", "b", environ={})
        self.a, self.b = created_a.node, created_b.node
        self.admin_keys = {"a": created_a.admin_key, "b": created_b.admin_key}
        self.servers = [LiveServer(create_app(n.settings, n.store)) for n in (self.a, self.b)]
        for server in self.servers:
            server.__enter__()
        url_a, url_b = (f"{s.url}/taxii2/default/" for s in self.servers)
        key_for_a = add_peer(self.b.store, self.b.default_collection.id,
                             Peer("a", url_a, "", role="community", cleared_for=("amber",))).key
        key_for_b = add_peer(self.a.store, self.a.default_collection.id,
                             Peer("b", url_b, "", role="community", cleared_for=("amber",))).key
        self.a.store.update_peer(replace(self.a.store.get_peer("b"), credential=key_for_a))
        self.b.store.update_peer(replace(self.b.store.get_peer("a"), credential=key_for_b))

    def seed(self, node: Node, objects: list[dict[str, Any]]) -> None:
        node.store.put_objects([parse_object(o) for o in objects], collection_id=node.default_collection.id,
                               source="seed")

    def held(self, node: Node) -> set[str]:
        return {v.id for v in node.store.iter_objects(node.default_collection.id)}

    def close(self) -> None:
        for server in self.servers:
            server.__exit__(None, None, None)
        self.a.close()
        self.b.close()


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    p = Pair(tmp_path)
    yield p
    p.close()


def test_pull_pages_to_the_end_and_resumes_from_its_cursor(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sync_module, "PAGE_SIZE", 7)
    pair.seed(pair.a, [indicator(f"p{i}", "clear") for i in range(30)])
    first = sync_peer(context_for(pair.b), pair.b.store.get_peer("a"), push=False)
    assert first.error is None and first.received == 31  # 30 + a's identity (b is cleared for AMBER)
    cursor = pair.b.store.get_sync_cursor("a", PULL, "default")
    assert cursor
    again = sync_peer(context_for(pair.b), pair.b.store.get_peer("a"), push=False)
    assert (again.received, again.unchanged) == (0, 0)  # resumed after the cursor: nothing re-sent
    pair.seed(pair.a, [indicator("late", "clear")])
    later = sync_peer(context_for(pair.b), pair.b.store.get_peer("a"), push=False)
    assert later.received == 1
    assert all(v.source == "peer:a" for v in pair.b.store.iter_objects(pair.b.default_collection.id)
               if v.id != pair.b.identity_id)


def test_push_is_idempotent_and_never_echoes(pair: Pair) -> None:
    pair.seed(pair.a, [indicator("clear", "clear"), indicator("red", "red"), indicator("amber", "amber")])
    ctx_a = context_for(pair.a)
    report = sync_peer(ctx_a, pair.a.store.get_peer("b"), pull=False)
    assert report.error is None
    assert report.sent == 3  # clear, amber (b is cleared), a's identity (unmarked = AMBER default)
    assert report.refused == 1 and any("RED" in rule for rule in report.refused_rules)
    assert indicator("red", "red")["id"] not in pair.held(pair.b)

    # Nothing new: the next round sends nothing; a lost cursor resends nothing the peer is known to hold.
    assert sync_peer(ctx_a, pair.a.store.get_peer("b"), pull=False).sent == 0
    pair.a.store.set_sync_cursor("b", PUSH, "default", "0")
    assert sync_peer(ctx_a, pair.a.store.get_peer("b"), pull=False).sent == 0
    # And a batch delivered twice (a retry after a lost answer) is stored once at the receiver.
    versions_before = pair.b.store.stats().versions
    client = PeerClient(pair.a.store.get_peer("b"))
    raw = [orjson.dumps(indicator("clear", "clear"))]
    assert client.post_envelope("default", raw).successes == 1
    assert client.post_envelope("default", raw).successes == 1
    client.close()
    assert pair.b.store.stats().versions == versions_before

    # What b received from a never goes back to a, by push or by a's pull.
    back = sync_peer(context_for(pair.b), pair.b.store.get_peer("a"))
    assert back.error is None and back.sent == 1  # only b's own identity
    pulled = sync_peer(ctx_a, pair.a.store.get_peer("b"), push=False)
    assert pulled.unchanged == 0


def test_a_pull_skips_what_the_puller_holds_in_bounded_reads(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a peer sent here or holds is left out of its pulls before being read, a bounded
    window of the collection per read: pages may come back empty with `more`, and the
    puller pages on to exactly what it lacks."""
    from threatmesh.store import sqlite as sqlite_store

    monkeypatch.setattr(sqlite_store, "HELD_WINDOW", 4)
    monkeypatch.setattr(sync_module, "PAGE_SIZE", 3)
    pair.seed(pair.a, [indicator(f"w{i}", "clear") for i in range(20)])
    pushed = sync_peer(context_for(pair.a), pair.a.store.get_peer("b"), pull=False)
    assert pushed.error is None and pushed.sent == 21  # the seeds and a's identity
    pair.seed(pair.b, [indicator(f"own{i}", "clear") for i in range(5)])
    pulled = sync_peer(context_for(pair.a), pair.a.store.get_peer("b"), push=False)
    # b's five and b's identity; nothing a sent comes back.
    assert pulled.error is None and (pulled.received, pulled.unchanged) == (6, 0)
    assert {indicator(f"own{i}", "clear")["id"] for i in range(5)} <= pair.held(pair.a)


def test_amber_received_from_a_peer_is_not_forwarded_by_push_or_pull(pair: Pair, tmp_path: Path) -> None:
    pair.seed(pair.a, [indicator("amber", "amber"), indicator("green", "green")])
    sync_peer(context_for(pair.a), pair.a.store.get_peer("b"), pull=False)
    # A third node c, cleared for AMBER by b: gets the GREEN one only.
    c = init_node(tmp_path / "c", "c", environ={}).node
    with LiveServer(create_app(c.settings, c.store)) as server:
        key_for_b = add_peer(c.store, c.default_collection.id,
                             Peer("b", "http://127.0.0.1:9/", "", role="community")).key
        added = add_peer(pair.b.store, pair.b.default_collection.id,
                         Peer("c", f"{server.url}/taxii2/default/", "", role="community",
                              cleared_for=("amber",), pull=()))
        pair.b.store.update_peer(replace(added.peer, credential=key_for_b))
        report = sync_peer(context_for(pair.b), pair.b.store.get_peer("c"))
        assert report.error is None
        held = {v.id for v in c.store.iter_objects(c.default_collection.id)}
        assert indicator("green", "green")["id"] in held
        assert indicator("amber", "amber")["id"] not in held
        # c reading b directly (as the peer it is there) gets no more than the push gave it.
        import requests

        media = "application/taxii+json;version=2.1"
        answer = requests.get(f"{pair.servers[1].url}/taxii2/default/collections/default/objects/",
                              headers={"Accept": media, "Authorization": f"Bearer {added.key}"}, timeout=30)
        ids = {o["id"] for o in answer.json().get("objects", [])}
        assert indicator("amber", "amber")["id"] not in ids
    c.close()


def test_peer_and_sync_commands(pair: Pair, capsys: pytest.CaptureFixture[str]) -> None:
    home_a = str(pair.a.settings.home)
    pair.seed(pair.a, [indicator("cli", "green"), indicator("cli-red", "red")])
    assert main(["--home", home_a, "sync", "--peer", "b", "--json"]) == 0
    (report,) = json.loads(capsys.readouterr().out)
    assert report["peer"] == "b" and report["sent"] >= 2 and report["refused"] >= 1
    assert main(["--home", home_a, "peer", "list", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["name"] == "b" and row["last_sync"] != "never" and row["error"] is None
    assert main(["--home", home_a, "peer", "explain", indicator("cli-red", "red")["id"], "b", "--json"]) == 0
    explained = json.loads(capsys.readouterr().out)
    assert explained["allowed"] is False and "RED" in explained["rule"]
    assert main(["--home", home_a, "peer", "set", "b", "--role", "partner", "--clear-for", "none"]) == 0
    capsys.readouterr()
    assert main(["--home", home_a, "peer", "explain", indicator("cli", "green")["id"], "b", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["allowed"] is False
    assert main(["--home", home_a, "peer", "add", "x", "http://127.0.0.1:9/", "--json"]) == 0
    added = json.loads(capsys.readouterr().out)
    assert added["key"].startswith("tm_") and added["account"] == "peer:x"
    assert main(["--home", home_a, "peer", "add", "x", "http://127.0.0.1:9/"]) == 1  # exists: one-line error
    assert main(["--home", home_a, "peer", "remove", "x"]) == 0
    assert main(["--home", home_a, "peer", "show", "x"]) == 1
    # The removed peer's key no longer opens anything.
    from threatmesh.auth import hash_key

    account = pair.a.store.account_by_key_hash(hash_key(added["key"]))
    assert account is not None and account.revoked
    # A down peer: the round reports the error, exits 3, and the state keeps it.
    assert main(["--home", home_a, "peer", "add", "down", "http://127.0.0.1:9/taxii2/default/"]) == 0
    assert main(["--home", home_a, "sync", "--peer", "down"]) == 3
    assert pair.a.store.get_sync_state("down").last_error


def test_tampered_object_in_a_pulled_page_is_refused_and_reported(pair: Pair) -> None:
    """A peer's page whose object was changed after signing: that object is refused, the rest stored."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from threatmesh.federation.signatures import Signer
    from threatmesh.share.keys import load_node_key

    signer = Signer(load_node_key(pair.a.settings.home), pair.a.identity_id)
    good, bad = indicator("pulled-good", "clear"), indicator("pulled-bad", "clear")
    raws = [orjson.dumps(good), orjson.dumps(bad)]
    manifest = signer.manifest(raws)
    tampered = orjson.dumps({**bad, "name": "changed on the way"})
    media = "application/taxii+json;version=2.1"

    async def root(request: Request) -> Response:
        return Response(orjson.dumps({"title": "fake", "versions": [media], "max_content_length": 10_000_000}),
                        media_type=media)

    async def objects(request: Request) -> Response:
        body = b'{"more":false,"objects":[' + b",".join([manifest, raws[0], tampered]) + b"]}"
        return Response(body, media_type=media, headers={"X-TAXII-Date-Added-Last": "2024-01-01T00:00:00.000000Z"})

    app = Starlette(routes=[Route("/taxii2/default/", root), Route("/taxii2/default/collections/default/objects/",
                                                                    objects)])
    with LiveServer(app) as server:
        added = add_peer(pair.b.store, pair.b.default_collection.id,
                         Peer("fake", f"{server.url}/taxii2/default/", "", credential="tm_unused", push=(),
                              public_key=signer.public_key))
        report = sync_peer(context_for(pair.b), added.peer, push=False)
    assert report.error is None and report.received == 1 and report.rejected == 1, report
    assert pair.b.store.get_latest(good["id"]) is not None
    assert pair.b.store.get_latest(bad["id"]) is None
    (rejection,) = pair.b.store.peer_rejections("fake")
    assert rejection.object_id == bad["id"] and "signature" in rejection.reason
    (receipt,) = pair.b.store.provenance(good["id"])
    assert receipt.verified and receipt.peer == "fake"


def test_pages_served_to_a_keyed_peer_are_signed_and_verified(pair: Pair) -> None:
    """Between threatmesh nodes that exchanged keys, a pull is verified like a push."""
    from threatmesh.share.keys import META_PUBLIC_KEY

    for here, there, name in ((pair.a, pair.b, "b"), (pair.b, pair.a, "a")):
        here.store.update_peer(replace(here.store.get_peer(name), public_key=there.store.get_meta(META_PUBLIC_KEY)))
    pair.seed(pair.a, [indicator("signed-pull", "clear")])
    report = sync_peer(context_for(pair.b), pair.b.store.get_peer("a"), push=False)
    assert report.error is None and report.rejected == 0 and report.received >= 1
    receipts = pair.b.store.provenance(indicator("signed-pull", "clear")["id"])
    assert receipts and receipts[0].verified and receipts[0].signer == pair.a.identity_id
    assert not any(v.id.startswith("x-threatmesh-batch-signature--")
                   for v in pair.b.store.iter_objects(pair.b.default_collection.id))


def _post(url: str, key: str, objects: list[bytes]) -> dict[str, Any]:
    import requests

    media = "application/taxii+json;version=2.1"
    response = requests.post(url, data=b'{"objects":[' + b",".join(objects) + b"]}", timeout=30,
                             headers={"Authorization": f"Bearer {key}", "Accept": media, "Content-Type": media})
    assert response.status_code == 202, response.text
    return dict(response.json())


def test_a_peer_whose_key_is_known_must_sign_and_others_need_not(pair: Pair) -> None:
    """Issue 4: from a threatmesh peer (its public key exchanged) an unsigned or tampered
    object is refused and reported; a peer with no key (a third-party server) and an
    account bound to no peer (a plain TAXII client) are accepted, unverified."""
    from threatmesh.federation.signatures import Signer
    from threatmesh.share.keys import META_PUBLIC_KEY, load_node_key

    url_a = f"{pair.servers[0].url}/taxii2/default/collections/{pair.a.default_collection.id}/objects/"
    key_of_b = pair.b.store.get_meta(META_PUBLIC_KEY)
    b_at_a = pair.b.store.get_peer("a").credential  # what b presents to a
    assert b_at_a
    unsigned = indicator("unsigned-from-keyed-peer", "clear")

    # a does not know b's key yet: b is like a third-party server, unsigned is accepted.
    status = _post(url_a, b_at_a, [orjson.dumps(indicator("before-key", "clear"))])
    assert status["success_count"] == 1
    (receipt,) = pair.a.store.provenance(indicator("before-key", "clear")["id"])
    assert receipt.peer == "b" and not receipt.verified

    # Once a holds b's key, b must sign.
    pair.a.store.update_peer(replace(pair.a.store.get_peer("b"), public_key=key_of_b))
    status = _post(url_a, b_at_a, [orjson.dumps(unsigned)])
    assert status["success_count"] == 0 and status["failure_count"] == 1
    assert status["failures"][0]["id"] == unsigned["id"] and "unsigned" in status["failures"][0]["message"]
    assert pair.a.store.get_latest(unsigned["id"]) is None
    assert [r.object_id for r in pair.a.store.peer_rejections("b")] == [unsigned["id"]]

    # Signed by b: accepted and recorded as verified; the same bytes altered after signing: refused.
    signer = Signer(load_node_key(pair.b.settings.home), pair.b.identity_id)
    good, bad = indicator("signed-by-b", "clear"), indicator("altered-after-signing", "clear")
    raws = [orjson.dumps(good), orjson.dumps(bad)]
    status = _post(url_a, b_at_a, [signer.manifest(raws), raws[0], orjson.dumps({**bad, "name": "altered"})])
    assert (status["success_count"], status["failure_count"]) == (1, 1)
    assert status["failures"][0]["id"] == bad["id"] and "signature" in status["failures"][0]["message"]
    (receipt,) = pair.a.store.provenance(good["id"])
    assert receipt.verified and receipt.signer == pair.b.identity_id

    # A plain TAXII client (the admin account, bound to no peer): no signature asked for.
    plain = indicator("from-a-plain-client", "clear")
    assert _post(url_a, pair.admin_keys["a"], [orjson.dumps(plain)])["success_count"] == 1
    assert pair.a.store.get_latest(plain["id"]) is not None


def test_a_keyed_peer_serving_unsigned_pages_is_refused(pair: Pair) -> None:
    """The pull side of the same rule: a page from a peer whose key is known, without a
    manifest, is stored nowhere and reported."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from threatmesh.share.keys import META_PUBLIC_KEY

    media = "application/taxii+json;version=2.1"
    obj = indicator("pulled-unsigned", "clear")

    async def root(request: Request) -> Response:
        return Response(orjson.dumps({"title": "fake", "versions": [media]}), media_type=media)

    async def objects(request: Request) -> Response:
        return Response(orjson.dumps({"more": False, "objects": [obj]}), media_type=media,
                        headers={"X-TAXII-Date-Added-Last": "2024-01-01T00:00:00.000000Z"})

    app = Starlette(routes=[Route("/taxii2/default/", root), Route("/taxii2/default/collections/default/objects/",
                                                                    objects)])
    with LiveServer(app) as server:
        url = f"{server.url}/taxii2/default/"
        keyed = add_peer(pair.b.store, pair.b.default_collection.id, Peer(
            "keyed", url, "", credential="tm_unused", push=(), public_key=pair.a.store.get_meta(META_PUBLIC_KEY)))
        report = sync_peer(context_for(pair.b), keyed.peer, push=False)
        assert report.error is None and report.received == 0 and report.rejected == 1, report
        assert "unsigned" in report.rejections[0]
        assert pair.b.store.get_latest(obj["id"]) is None
        # The same server as a peer with no key exchanged (a third-party TAXII server): accepted.
        unkeyed = add_peer(pair.b.store, pair.b.default_collection.id,
                           Peer("unkeyed", url, "", credential="tm_unused", push=()))
        report = sync_peer(context_for(pair.b), unkeyed.peer, push=False)
        assert report.error is None and report.received == 1, report


def test_push_pages_are_shared_between_peer_workers_only_when_full_and_fresh(pair: Pair) -> None:
    from threatmesh.federation.sync import PushPages

    pages = PushPages(ttl=60.0)
    collection = pair.a.default_collection.id
    pair.seed(pair.a, [indicator(f"pp{i}", "clear") for i in range(5)])
    total = pair.a.store.stats().versions  # the seeds and a's identity
    full = pages.read(pair.a.store, collection, 0, total)
    assert len(full.items) == total and not full.more  # read when nothing followed
    pair.seed(pair.a, [indicator("pp-late", "clear")])
    reused = pages.read(pair.a.store, collection, 0, total)
    assert reused.items is full.items  # shared, not read again
    # Objects may have arrived since the page was read: a reused page never says "no more",
    # or a worker would stop short of them until something else arrived (seen in the bench).
    assert reused.more
    after = pages.read(pair.a.store, collection, full.items[-1].date_added, 10)
    assert [v.id for v in after.items] == [indicator("pp-late", "clear")["id"]]
    assert pages.read(pair.a.store, collection, full.items[-1].date_added, 10).items is not after.items  # short
    assert PushPages(ttl=0.0).read(pair.a.store, collection, 0, total).items is not full.items


def test_a_push_asks_for_a_status_without_the_list_of_successes(pair: Pair) -> None:
    """RFC 7240 `Prefer: return=minimal` on a POST: counts and failures only (TAXII 2.1 §4.3.1
    makes `successes` optional); the stored status still lists every success."""
    import requests

    media = "application/taxii+json;version=2.1"
    url = f"{pair.servers[0].url}/taxii2/default/"
    objects = [indicator(f"minimal-{i}", "clear") for i in range(3)] + [{"type": "indicator", "id": "bad"}]
    headers = {"Authorization": f"Bearer {pair.admin_keys['a']}", "Accept": media, "Content-Type": media}
    body = orjson.dumps({"objects": objects})
    response = requests.post(f"{url}collections/{pair.a.default_collection.id}/objects/", data=body, timeout=30,
                             headers={**headers, "Prefer": "return=minimal"})
    status = response.json()
    assert response.status_code == 202 and response.headers["Preference-Applied"] == "return=minimal"
    assert "successes" not in status and status["success_count"] == 3 and status["total_count"] == 4
    assert [f["id"] for f in status["failures"]] == ["bad"]
    stored = requests.get(f"{url}status/{status['id']}/", headers=headers, timeout=30).json()
    assert len(stored["successes"]) == 3
    # Without the preference, the answer lists the successes as before.
    plain = requests.post(f"{url}collections/{pair.a.default_collection.id}/objects/", data=body, timeout=30,
                          headers=headers).json()
    assert len(plain["successes"]) == 3


def test_the_loop_forwards_a_new_version_at_once_not_at_its_next_poll(pair: Pair) -> None:
    """The loop's watcher wakes the workers as soon as the store's newest date_added moves: with
    workers that would look again only after a minute, a version stored after the first round
    still reaches the peer within seconds (in a line of peers that wait is paid at every hop)."""
    import time

    from threatmesh.federation.loop import LoopTiming, SyncLoop

    timing = LoopTiming(watch=0.05, poll=60.0, pull_every=600.0, pull_every_signed=600.0)
    loop = SyncLoop(context_for(pair.a), timing).start()
    try:
        deadline = time.monotonic() + 20
        while not pair.a.store.get_sync_state("b").last_attempt and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pair.a.store.get_sync_state("b").last_attempt, "the first round did not happen"
        late = indicator("woken-by-the-watcher", "clear")
        pair.seed(pair.a, [late])
        stored = time.monotonic()
        while late["id"] not in pair.held(pair.b) and time.monotonic() - stored < 10:
            time.sleep(0.05)
        assert late["id"] in pair.held(pair.b), "not pushed within 10 s of being stored"
    finally:
        loop.stop()


def test_what_peers_send_is_stored_at_once_and_indexed_on_the_first_read(pair: Pair) -> None:
    """A push (TAXII POST by the peer) and a pull both store the versions and leave their
    search and match rows to later (store/sqlite_index.py); a read indexes them first."""
    pair.seed(pair.a, [indicator(f"later{i}", "clear", description="lighthouse") for i in range(7)])
    pushed = sync_peer(context_for(pair.a), pair.a.store.get_peer("b"), pull=False)
    assert pushed.error is None and pushed.sent == 8  # the seeds and a's identity
    assert pair.b.store.index_lag() == 8
    assert len(pair.b.store.search("lighthouse")) == 7 and pair.b.store.index_lag() == 0
    pair.seed(pair.b, [indicator(f"back{i}", "clear", description="foghorn") for i in range(3)])
    pulled = sync_peer(context_for(pair.a), pair.a.store.get_peer("b"), push=False)
    assert pulled.error is None and pulled.received == 4  # b's three and b's identity
    assert pair.a.store.index_lag() == 4
    assert {v.id for v in pair.a.store.search("foghorn")} == {indicator(f"back{i}", "clear")["id"] for i in range(3)}
