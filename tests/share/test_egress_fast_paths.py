"""The egress path's shortcuts against the plain walks they stand for.

`share.outbound` remembers policy decisions per (TLP, origin, markings), passes by
objects whose keys hold no ref, and skips redaction where the pre-screen finds no
trigger; `share.redact` looks for custom properties only in objects with a key
that STIX does not define, and pre-screens text with plain substring tests, guarded
regexes and a byte translation. Each test here runs the same input through the
shortcut and through the plain path (the shortcuts turned off with monkeypatch) and
requires the same result: bytes sent, withheld rules, findings and log lines.
"""

from __future__ import annotations

import random
import re
import uuid
from pathlib import Path
from typing import Any, Iterator

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from threatmesh.share import outbound, redact
from threatmesh.share.outbound import EgressCache, Outbound
from threatmesh.share.policy import (
    Recipient,
    RecipientKind,
    Subject,
    decide,
    sharing_group_marking,
    sharing_group_marking_id,
)
from threatmesh.share.redact import DETECTORS, RedactionSettings, redact_object
from threatmesh.stix.markings import TLP2_MARKING_IDS
from threatmesh.stix.parse import parse_object
from threatmesh.store.protocol import Collection, ObjectQuery, PageRow
from threatmesh.store.sqlite import SQLiteStore

TS = "2024-01-01T00:00:00.000Z"
FULL = RedactionSettings(internal_domains=("stexample.local", "corp.st-example-health.org"),
                         internal_networks=("10.0.0.0/8", "fd12:3456:789a::/48"), anonymise_sightings=True,
                         sector="healthcare", country="DE")
SETTINGS = [RedactionSettings(), FULL, RedactionSettings(enabled=False)]
RECIPIENTS = [
    Recipient("isac", RecipientKind.PEER, role="community", cleared_for=frozenset({"amber"}),
              groups=frozenset({"health-eu"})),
    Recipient("partner", RecipientKind.PEER, role="partner"),
    Recipient("a", RecipientKind.PEER, role="community"),  # the peer that sent some of the objects
    Recipient.public(),
    Recipient.operator(),
]
TEXTS = [
    "benchmark object {n}", "indicator bench-{n}", "Loader seen in the wild", "C2 over HTTPS to 203.0.113.9",
    "version 10.4.2.1 of the agent", "build 2024.01.15 ({n})", "script encrypted, attempt to opt out",
    "Überwachung des Netzes {n}", "contact jane.doe{n}@example.org", "attacker{n}@evil.example",
    "call +44 20 7946 0958", "call (555) 123-4567 today", "SSN: 123-45-6789", "DOB: 12/04/1990",
    "MRN: A12345{n}", "Patient: Jane Roe", "patient John Smith was admitted", "pt Maria de la Cruz",
    "next of kin: Bob Roe", "host ws{n}.stexample.local", "from 10.2.3.{n}", "seen at fd12:3456:789a::{n}",
    "born on 3 March 1982", "d.o.b 1990-04-12", "Patientin Müller, DOB 1.2.1980", "ref 1234.5678",
    "ids 12-34 56(78)", "mr. x of corp.st-example-health.org", "Medical record 77-12", "",
]


def _id(kind: str, n: int) -> str:
    return f"{kind}--{uuid.UUID(int=n, version=4)}"


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(TEXTS).format(n=n) for _ in range(rng.randint(1, 3))).strip()


def _varied_objects(seed: int, count: int) -> list[tuple[dict[str, Any], str]]:
    """(object, source) pairs of many shapes, text fields drawn from `TEXTS`."""
    rng = random.Random(seed)
    identity = {"type": "identity", "spec_version": "2.1", "id": _id("identity", 1), "created": TS, "modified": TS,
                "name": "St. Example", "identity_class": "organization",
                "object_marking_refs": [TLP2_MARKING_IDS["red"]]}
    made: list[tuple[dict[str, Any], str]] = [(identity, "test"), (sharing_group_marking("health-eu"), "test"),
                                              (sharing_group_marking("finance"), "peer:a")]
    for n in range(10, 10 + count):
        kind = rng.choice(["indicator"] * 5 + ["malware", "note", "opinion", "report", "sighting", "relationship",
                                               "email-addr"])
        tlp = rng.choice(["clear", "clear", "green", "amber", "red", None])
        marks = ([TLP2_MARKING_IDS[tlp]] if tlp else []) + (
            [sharing_group_marking_id(rng.choice(["health-eu", "finance"]))] if rng.random() < 0.1 else [])
        earlier = [o["id"] for o, _ in made if o["type"] not in ("marking-definition", "email-addr")]
        obj: dict[str, Any] = {"type": kind, "spec_version": "2.1", "id": _id(kind, n), "created": TS, "modified": TS}
        if kind == "indicator":
            literal = rng.choice([f"198.51.{n % 250}.{n // 250}", f"attacker{n}@evil.example"])
            key = "email-addr" if "@" in literal else "ipv4-addr"
            obj.update(name=_text(rng, n), pattern=f"[{key}:value = '{literal}']", pattern_type="stix",
                       valid_from=TS, description=_text(rng, n))
        elif kind == "malware":
            obj.update(name=_text(rng, n), is_family=True)
        elif kind == "note":
            obj.update(abstract=_text(rng, n), content=_text(rng, n), object_refs=rng.sample(earlier, 2))
        elif kind == "opinion":
            obj.update(explanation=_text(rng, n), opinion="agree", object_refs=rng.sample(earlier, 1))
        elif kind == "report":
            obj.update(name=_text(rng, n), published=TS, object_refs=rng.sample(earlier, 3))
        elif kind == "sighting":
            obj.update(sighting_of_ref=rng.choice(earlier), where_sighted_refs=[identity["id"]],
                       description=_text(rng, n))
        elif kind == "relationship":
            obj.update(relationship_type="indicates", source_ref=rng.choice(earlier), target_ref=rng.choice(earlier))
        else:
            obj = {"type": "email-addr", "spec_version": "2.1", "id": _id("email-addr", n),
                   "value": f"jane{n}@example.org"}
        if kind != "email-addr":
            if marks:
                obj["object_marking_refs"] = marks
            if rng.random() < 0.3:
                obj["x_notes"] = {"summary": _text(rng, n), "lines": [_text(rng, n), {"deep": _text(rng, n)}, 7]}
            if rng.random() < 0.2:
                obj["x_contact"] = _text(rng, n)
            if rng.random() < 0.3:
                obj["external_references"] = [{"source_name": "ticket", "description": _text(rng, n)},
                                              {"source_name": "cve", "external_id": "CVE-2024-0001"}]
            if rng.random() < 0.2:
                obj["labels"] = ["benchmark"]
        made.append((obj, rng.choice(["test", "test", "peer:a"])))
    return made


def _odd_rows(start: int) -> list[PageRow]:
    """Rows whose JSON the parser would refuse: the egress path reads stored bytes as they
    are, so its shortcuts must hold for marking refs that are no strings (one of them
    unhashable) or no list, and for text that is no string."""
    rows = []
    odd: list[Any] = [[TLP2_MARKING_IDS["clear"], 5], [{"id": TLP2_MARKING_IDS["clear"]}], TLP2_MARKING_IDS["red"],
                      [TLP2_MARKING_IDS["green"], None]]
    for i, marks in enumerate(odd):
        data = {"type": "malware", "spec_version": "2.1", "id": _id("malware", 900 + i), "created": TS,
                "modified": TS, "name": 12345678 if i == 3 else "Patient: Jane Roe", "is_family": True,
                "object_marking_refs": marks}
        rows.append(PageRow(start + i, data["id"], "malware", TS, "2.1", None, "test", orjson.dumps(data)))
    return rows


@pytest.fixture
def rows(tmp_path: Path) -> Iterator[tuple[SQLiteStore, list[PageRow]]]:
    store = SQLiteStore(tmp_path / "t.db")
    store.add_collection(Collection(id="c", title="c"))
    for obj, source in _varied_objects(7, 400):
        store.put_objects([parse_object(obj)], collection_id="c", source=source)
    page = store.query_rows(ObjectQuery("c", limit=10_000))
    yield store, list(page.rows) + _odd_rows(page.rows[-1].date_added + 1)
    store.close()


class _OneRegex:
    """The pre-screen as one regex of every trigger (how it first was): the reference."""

    def __init__(self, settings: RedactionSettings) -> None:
        triggers = [part for _, t in DETECTORS if t is not None for part in t.split("|")]
        triggers += [re.escape(d.strip(".").lower()) for d in settings.internal_domains if d.strip(".")]
        if settings.internal_networks:
            triggers += [r"\d\.\d", r"[0-9a-f]:[0-9a-f]"]
        union = "|".join(dict.fromkeys(triggers))
        self.lower, self.any_case = re.compile(union), re.compile("(?i)" + union)

    def may_match(self, text: str) -> bool:
        return (self.lower.search(text.lower()) if text.isascii() else self.any_case.search(text)) is not None


def _plain_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """Turn every shortcut off: the plain walks and one-regex pre-screen decide alone."""

    def plain_decide(self: Outbound, version: Any, data: Any, senders: Any, from_peer: bool) -> Any:
        return decide(Subject.of(version, data, senders), self.recipient, default_tlp=self.default_tlp)

    monkeypatch.setattr(Outbound, "_decide", plain_decide)
    monkeypatch.setattr(outbound, "_REFLESS", frozenset())
    monkeypatch.setattr(outbound, "findings_prescreen", lambda settings: lambda data: settings.enabled)
    monkeypatch.setattr(redact, "STIX_PROPERTIES", frozenset())
    monkeypatch.setattr(redact, "_prescreen", _OneRegex)


def _outcome(store: SQLiteStore, versions: list[PageRow], recipient: Recipient, redaction: RedactionSettings,
             caplog: pytest.LogCaptureFixture) -> tuple[Any, ...]:
    caplog.clear()
    cache = EgressCache()
    shapes = []
    for _ in range(2):  # the second pass through the cache, as a hub's next peer of the class
        batch = Outbound(store, recipient, default_tlp="green", redaction=redaction, cache=cache).prepare(versions)
        shapes.append(([(i.id, i.version, i.json) for i in batch.items], batch.derived, batch.extra,
                       batch.withheld, batch.redactions))
    return tuple(shapes), [r.getMessage() for r in caplog.records]


@pytest.mark.parametrize("redaction", SETTINGS, ids=["default", "internal", "off"])
def test_the_egress_shortcuts_send_what_the_plain_path_sends(
    rows: tuple[SQLiteStore, list[PageRow]], redaction: RedactionSettings, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, versions = rows
    caplog.set_level("INFO", logger="threatmesh.share.outbound")
    fast = [_outcome(store, versions, r, redaction, caplog) for r in RECIPIENTS]
    with monkeypatch.context() as patch:
        _plain_paths(patch)
        plain = [_outcome(store, versions, r, redaction, caplog) for r in RECIPIENTS]
    for recipient, got, want in zip(RECIPIENTS, fast, plain):
        assert got == want, recipient.name
    # The sample exercises what it is meant to: redactions, withholding, cut containers.
    first = fast[0][0][0]
    if redaction.enabled:
        assert len(first[4]) > 50 and fast[0][1]
    assert {w.code for w in first[3]} >= {"tlp-red", "reference", "group-nonmember"} and first[1]


def test_redaction_with_and_without_the_shortcuts(monkeypatch: pytest.MonkeyPatch) -> None:
    objects = [obj for obj, _ in _varied_objects(11, 600)]
    objects += [orjson.loads(r.json) for r in _odd_rows(0)]
    for redaction in SETTINGS:
        fast = [redact_object(obj, redaction) for obj in objects]
        hints = [redact.findings_prescreen(redaction)(obj) for obj in objects]
        with monkeypatch.context() as patch:
            patch.setattr(redact, "STIX_PROPERTIES", frozenset())
            patch.setattr(redact, "_prescreen", _OneRegex)
            plain = [redact_object(obj, redaction) for obj in objects]
        assert fast == plain
        # A version that the pre-screen passes by is one redact_object leaves as it is.
        assert all(hint or not result.changed for hint, result in zip(hints, fast))
        if redaction.enabled:
            assert sum(r.changed for r in fast) > 100 and sum(not h for h in hints) > 20


def test_stix_properties_name_no_custom_property() -> None:
    assert not [k for k in redact.STIX_PROPERTIES if k.startswith("x_")]


_TOKENS = st.sampled_from([
    "Patient", "pt", " pt.", "ptx", "DOB", "d.o.b", "D/O/B", "born", "MRN", "mr", "SSN", "social", "next", " of ",
    "kin", "\n", "\t", "\x0b", "\x1c", " ", ".", "-", "(", ")", "+", "/", ":", "@", "0", "1", "7", "12", "044",
    "555", "2024", "x@y.org", "10.4", "fd12:3456", "a:b", "stexample.local", "CORP.ST-EXAMPLE-HEALTH.ORG", "host",
    "é", "K", "ſ", "Smith",
])


@settings(max_examples=600, deadline=None)
@given(st.lists(_TOKENS, max_size=16).map("".join))
def test_the_prescreen_is_the_one_regex_of_its_triggers(text: str) -> None:
    for redaction in (RedactionSettings(), FULL):
        assert redact._prescreen(redaction).may_match(text) == _OneRegex(redaction).may_match(text), text


@settings(max_examples=600, deadline=None)
@given(st.text(alphabet="0123456789 .()+-/:\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f\x85a", max_size=40))
def test_the_digit_run_without_a_regex(text: str) -> None:
    if text.isascii():
        assert redact._ascii_digit_run(text) == (re.search(redact._DIGIT_RUN, text) is not None), text


_SHAPES = [r"\bpt\b", r"next\s+of\s+kin", r"ab?c", r"ab*", r"x{2}y", r"\bd\.o\.b", r"mr\s*#", r"ab+c", r"(?:ab|c)d"]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(_SHAPES), st.text(alphabet="abcdxy.#ptmrnexofkin \n", max_size=24))
def test_a_shape_is_tried_only_without_missing_a_match(shape: str, text: str) -> None:
    """The string a shape is guarded by is in every one of its matches."""
    match = re.search(shape, text)
    if match is not None:
        assert redact._needed(shape) in match.group(), (shape, text)
