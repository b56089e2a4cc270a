"""Fixtures of the Store contract suite.

Every test that takes `store` (or `open_store`) runs once per backend in
BACKENDS. Adding PostgreSQL is one entry: a function that, given a pytest
request, tmp_path and a storage name, opens a store on that storage (the same
name opens the same data again, for reopen tests).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import orjson
import pytest

from threatmesh.stix.model import ObjectIndex, StixObject
from threatmesh.store.protocol import Collection, Store
from threatmesh.store.sqlite import SQLiteStore


def _open_sqlite(request: pytest.FixtureRequest, tmp_path: Path, name: str) -> Store:
    return SQLiteStore(tmp_path / f"{name}.sqlite")


BACKENDS: dict[str, Callable[[pytest.FixtureRequest, Path, str], Store]] = {
    "sqlite": _open_sqlite,
}

OpenStore = Callable[..., Store]


@pytest.fixture(params=sorted(BACKENDS))
def open_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenStore]:
    """open_store(name='main') -> a Store on the storage called `name`; all closed at teardown."""
    base = tmp_path_factory.mktemp(f"store-{request.param}")
    opened: list[Store] = []

    def open_(name: str = "main") -> Store:
        store = BACKENDS[request.param](request, base, name)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: OpenStore) -> Store:
    """An empty store with two collections, 'c1' (alias 'one') and 'c2'."""
    s = open_store()
    s.add_collection(Collection(id=C1, title="first", alias="one"))
    s.add_collection(Collection(id=C2, title="second"))
    return s


C1 = "91a7b528-80eb-42ed-a74d-c6fbd5a26116"
C2 = "52892447-4d7e-4f70-b94d-d7f22742ff63"


@pytest.fixture
def c1() -> str:
    return C1


@pytest.fixture
def c2() -> str:
    return C2


@pytest.fixture
def make() -> Callable[..., StixObject]:
    """The object factory below, for tests (conftest modules are not imported)."""
    return make_object


def ts(n: int) -> str:
    """A normalised version key; larger n is later."""
    return f"2024-01-01T00:{n // 60:02d}:{n % 60:02d}.000000Z"


def make_object(
    object_id: str,
    version: str | None = None,
    *,
    data: dict[str, Any] | None = None,
    tlp: str | None = None,
    spec_version: str = "2.1",
    refs: tuple[tuple[str, str], ...] = (),
    markings: tuple[str, ...] = (),
    text: tuple[tuple[str, str], ...] = (),
    observables: tuple[tuple[str, str], ...] = (),
    revoked: bool = False,
) -> StixObject:
    """A StixObject built directly (no parser). SCOs get version '' by default,
    other objects ts(0)."""
    object_type = object_id.split("--", 1)[0]
    is_sco = object_type in {"domain-name", "ipv4-addr", "ipv6-addr", "url", "file", "email-addr"}
    if version is None:
        version = "" if is_sco else ts(0)
    body: dict[str, Any] = {"type": object_type, "spec_version": spec_version, "id": object_id}
    if version:
        body["created"] = body["modified"] = version
    body.update(data or {})
    created_by = next((target for path, target in refs if path == "created_by_ref"), None)
    return StixObject(
        id=object_id,
        type=object_type,
        spec_version=spec_version,
        version=version,
        data=body,
        json=orjson.dumps(body),
        tlp=tlp,
        revoked=revoked,
        created_by_ref=created_by,
        index=ObjectIndex(refs=refs, markings=markings, text=text, observables=observables),
    )
