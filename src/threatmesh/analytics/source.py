"""Facts of the node's own view, read from the store's fact table instead of a pass over the store.

The store keeps one fact per countable object up to date (store/sqlite_facts.py);
`stored_facts` brings it up to date (only what was stored since the last
refresh is read) and hands out a `FactBase` that reads each kind's facts on
first use. These are the operator's facts: every object counts. Another
recipient's figures come from the same table through reaches
(analytics/visibility.py, web/dashboard/view.py): the facts it may see whole
as they are, the others rebuilt through the egress path; report/render.py
still takes a pass through the egress path for them.
"""

from __future__ import annotations

from threatmesh.analytics.facts import Fact, FactBase, build_facts
from threatmesh.store.protocol import Store


def stored_facts(store: Store, *, collection_id: str | None = None) -> FactBase | None:
    """The fact table as a FactBase; None when it cannot be brought up to date (a read-only store)."""
    if not store.refresh_facts().current:
        return None
    actors, sponsors = store.fact_actors()

    def load(kind: str) -> list[Fact]:
        return store.load_facts(kind, collection_id=collection_id)

    return FactBase(actors=actors, actor_sponsors=sponsors, loader=load)


def operator_facts(store: Store, *, collection_id: str | None = None) -> FactBase:
    """Every fact of the store (or of the objects in one collection), as the operator counts them."""
    found = stored_facts(store, collection_id=collection_id)
    return found if found is not None else build_facts(store.iter_objects(collection_id))
