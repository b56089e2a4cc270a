"""Analytics: who attacks whom, which sectors, how fast it grows, from the node's own objects.

Pure core: works on `StoredVersion`s read through the Store protocol (or any
iterable of them, such as the egress-filtered stream of `export.select`), and
imports no web framework, HTTP client or database driver.

    facts = build_facts(store.iter_objects())          # facts.py: the graph flattened
    table = breakdown(facts.of("incidents"), Query("incidents", by=("sponsor",), period="year"))
    top(facts.of("incidents"), "sector", 5); most_targeted(...); surges(...)

A store keeps the same facts in a table, updated from what was stored since
the last refresh (store/sqlite_facts.py), with the counts of `summary.py`
pre-aggregated: `source.operator_facts(store)` gives them as a FactBase without
a pass over the store. The table also records, per fact, the visibility
classes of everything behind it (its reach, `visibility.py`), so that the
figures of a recipient the egress policy restricts come from it too.
"""

from threatmesh.analytics.aggregate import Breakdown, Query, Ranked, Row, breakdown, label, most_targeted, select, top
from threatmesh.analytics.facts import FIELDS, KINDS, Fact, FactBase, build_facts
from threatmesh.analytics.surges import Surge, surges

__all__ = [
    "FIELDS", "KINDS", "Breakdown", "Fact", "FactBase", "Query", "Ranked", "Row", "Surge",
    "breakdown", "build_facts", "label", "most_targeted", "select", "surges", "top",
]
