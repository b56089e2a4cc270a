"""Full STIX 2.1 patterning over log events and observed-data (STIX 2.1 §9).

    compiled = compile_pattern("[domain-name:value = 'evil.example'] FOLLOWEDBY "
                               "[file:hashes.'SHA-256' = '...'] WITHIN 600 SECONDS")
    compiled.exact_keys()          # None: needs evaluating (an equality-only pattern gives its keys)
    compiled.evaluate(events)      # every match, each as the LogEvents that satisfied it
    compiled.matches(observed)     # True/False over observed-data style observations

An observation is what one log line, or one observed-data object, says was
seen: its cyber-observable objects, a time interval (`first_observed`,
`last_observed`) and `number_observed`. Observation expressions (`[...]`) are
bound to observations; a pattern matches when every observation expression
of it can be bound at once (§9.5): AND and FOLLOWEDBY need different
observations (an observed-data counted N times is N observations),
FOLLOWEDBY needs them in time order, WITHIN inside a window, START/STOP
inside an interval (stop excluded), REPEATS n needs n different bindings.

How a match is searched: each leaf `[...]` is tested once per observation
(this is the costly part, and it is linear); then bindings are combined
bottom-up as multisets of observation indexes. Instances of one observation
are interchangeable, so a binding keeps how many of each it uses, not
which: that keeps `number_observed: 10000` from becoming 10000 bindings.
Combinations are produced lazily, so a pattern that matches stops at the
first binding it finds.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from threatmesh.match.pattern_model import (
    CompAnd, CompExpr, CompOr, Comparison, Leaf, ObsExpr, ObsOp, ParsedPattern, PatternError, Repeats,
    StartStop, Within, parse_pattern,
)
from threatmesh.match.pattern_values import RootTest, compile_comparison
from threatmesh.match.protocol import ExactKey, LogEvent
from threatmesh.stix.observables import normalize, normalize_kind
from threatmesh.stix.timestamps import timestamp_to_micros

__all__ = ["Observation", "CompiledStixPattern", "PatternError", "compile_pattern", "observations_from_stix",
           "observation_from_dict", "observation_from_event"]

# Kinds whose `value` the exact-observable index holds (see stix.observables).
_VALUE_KINDS = frozenset({"ipv4-addr", "ipv6-addr", "domain-name", "url", "email-addr", "mac-addr"})
_HASHED_TYPES = frozenset({"file", "artifact", "x509-certificate"})
# Cap on the bindings `evaluate` reports for one pattern: a REPEATS over many
# events has combinatorially many; a verdict never needs more than one.
DEFAULT_MAX_MATCHES = 10_000


@dataclass(frozen=True, slots=True)
class Observation:
    """One observation: its objects by id, its time interval in µs, how many times it was seen."""

    objects: Mapping[str, Any]
    first: int | None  # µs; None when the source carries no time
    last: int | None
    count: int = 1


def _micros(value: Any) -> int | None:
    if value is None:
        return None
    if type(value) is int:
        return value
    return timestamp_to_micros(str(value))


def observation_from_dict(data: Mapping[str, Any]) -> Observation:
    """An observed-data style dict: `objects` (by id), `first_observed`, `last_observed`, `number_observed`.

    Timestamps may be STIX strings or µs integers; `number_observed` defaults to 1.
    """
    count = data.get("number_observed", 1)
    if type(count) is not int or count < 1:
        raise ValueError(f"number_observed must be a positive integer, not {count!r}")
    first = _micros(data.get("first_observed"))
    last = _micros(data.get("last_observed", data.get("first_observed")))
    if first is not None and last is not None and last < first:
        raise ValueError("last_observed is before first_observed")
    objects = data.get("objects") or {}
    if isinstance(objects, list):  # a list of SCOs with ids (STIX 2.1 style)
        objects = {o["id"]: o for o in objects if isinstance(o, dict) and "id" in o}
    return Observation(objects, first, last, count)


def observations_from_stix(objects: Iterable[Mapping[str, Any]]) -> list[Observation]:
    """STIX 2.1 observed-data objects, with the SCOs their `object_refs` name (§4.13).

    Observed-data that still embeds `objects` (deprecated in 2.1) is read as is.
    """
    scos: dict[str, Any] = {}
    observed: list[Mapping[str, Any]] = []
    for obj in objects:
        if obj.get("type") == "observed-data":
            observed.append(obj)
        elif isinstance(obj.get("id"), str):
            scos[obj["id"]] = obj
    out = []
    for od in observed:
        if "objects" in od:
            embedded = od["objects"]
        else:
            embedded = {ref: scos[ref] for ref in od.get("object_refs", ()) if ref in scos}
        out.append(observation_from_dict({**od, "objects": embedded}))
    return out


def observation_from_event(event: LogEvent) -> Observation:
    return Observation(event.objects(), event.time, event.time, 1)


# -- compiling comparison expressions -----------------------------------------------------

ObservationTest = Callable[[Observation], bool]


def _comparisons(expr: CompExpr) -> Iterator[Comparison]:
    if isinstance(expr, Comparison):
        yield expr
    else:
        for item in expr.items:
            yield from _comparisons(item)


def _compile_expr(expr: CompExpr) -> RootTest:
    if isinstance(expr, Comparison):
        return compile_comparison(expr)
    tests = tuple(_compile_expr(item) for item in expr.items)
    if isinstance(expr, CompAnd):
        # §9.3: AND holds when one and the same object satisfies both sides.
        return lambda root, objects: all(t(root, objects) for t in tests)
    return lambda root, objects: any(t(root, objects) for t in tests)


def compile_leaf(leaf: Leaf) -> ObservationTest:
    """Does an observation have an object that satisfies the leaf's comparison expression?"""
    test = _compile_expr(leaf.expr)
    types = frozenset(c.object_type for c in _comparisons(leaf.expr))

    def observation_test(observation: Observation) -> bool:
        objects = observation.objects
        for root in objects.values():
            # Only roots of a type the expression names can satisfy it: skip the rest cheaply.
            if type(root) is dict and root.get("type") in types and test(root, objects):  # type: ignore[arg-type]
                return True
        return False

    return observation_test


# -- exact keys -----------------------------------------------------------------------------


def _exact_comparison_keys(comparison: Comparison) -> list[ExactKey] | None:
    if comparison.negated or comparison.op not in ("=", "IN"):
        return None
    values = comparison.literal if comparison.op == "IN" else (comparison.literal,)
    if not values or any(type(v) is not str for v in values):
        return None
    path = comparison.path
    if comparison.object_type in _VALUE_KINDS and path == ("value",):
        kind = comparison.object_type
    elif comparison.object_type in _HASHED_TYPES and len(path) == 2 and path[0] == "hashes" \
            and type(path[1]) is str:
        kind = normalize_kind(f"{comparison.object_type}:hashes.{path[1]}")
    else:
        return None
    try:
        return [(kind, normalize(kind, v)) for v in values]
    except ValueError:
        return None  # a value the index cannot hold: evaluate the pattern instead


def _exact_keys(node: ObsExpr) -> list[ExactKey] | None:
    """Keys when `node` is an OR of leaves that are each an OR of indexable equalities."""
    if isinstance(node, ObsOp) and node.op == "OR":
        left, right = _exact_keys(node.left), _exact_keys(node.right)
        return None if left is None or right is None else left + right
    if isinstance(node, Leaf):
        items = node.expr.items if isinstance(node.expr, CompOr) else (node.expr,)
        keys: list[ExactKey] = []
        for item in items:
            if not isinstance(item, Comparison):
                return None
            found = _exact_comparison_keys(item)
            if found is None:
                return None
            keys.extend(found)
        return keys
    return None


def _single_observation(node: ObsExpr) -> bool:
    """True when one observation satisfying any leaf is a match (leaves joined by OR only)."""
    if isinstance(node, Leaf):
        return True
    return isinstance(node, ObsOp) and node.op == "OR" and _single_observation(node.left) \
        and _single_observation(node.right)


# -- bindings ---------------------------------------------------------------------------------

Binding = tuple[int, ...]  # sorted observation indexes, an index repeated once per instance used


class _Search:
    """Lazy, bottom-up enumeration of the bindings of one pattern over one set of observations."""

    def __init__(self, observations: Sequence[Observation], leaf_hits: Sequence[Sequence[int]]) -> None:
        self.observations = observations
        self.leaf_hits = leaf_hits

    def fits(self, binding: Binding) -> bool:
        # A binding may use an observation as many times as it was observed.
        if len(binding) < 2:
            return True
        for index, used in Counter(binding).items():
            if used > self.observations[index].count:
                return False
        return True

    def times(self, binding: Binding) -> list[tuple[int, int]] | None:
        spans = []
        for index in set(binding):
            obs = self.observations[index]
            if obs.first is None or obs.last is None:
                return None  # an observation without a time cannot satisfy a time constraint
            spans.append((obs.first, obs.last))
        return spans

    def bindings(self, node: ObsExpr) -> Iterator[Binding]:
        seen: set[Binding] = set()
        for binding in self._bindings(node):
            if binding not in seen:
                seen.add(binding)
                yield binding

    def _bindings(self, node: ObsExpr) -> Iterator[Binding]:
        if isinstance(node, Leaf):
            return ((i,) for i in self.leaf_hits[node.index])
        if isinstance(node, ObsOp):
            if node.op == "OR":
                # One side bound is enough; binding both would only use up observations.
                return _chain(self.bindings(node.left), self.bindings(node.right))
            accept = self._followed_by if node.op == "FOLLOWEDBY" else None
            return self._join(self.bindings(node.left), self.bindings(node.right), accept)
        if isinstance(node, Within):
            return (b for b in self.bindings(node.expr) if self._within(b, node.micros))
        if isinstance(node, StartStop):
            if node.start >= node.stop:
                return iter(())
            return (b for b in self.bindings(node.expr) if self._inside(b, node.start, node.stop))
        if isinstance(node, Repeats):
            return self._repeats(node)
        raise PatternError(f"unsupported node {node!r}")  # pragma: no cover

    def _join(self, left: Iterator[Binding], right: Iterator[Binding],
              accept: Callable[[Binding, Binding], bool] | None) -> Iterator[Binding]:
        # Both sides are pulled in turn and cached, so a match on the first few
        # bindings of each side is found without enumerating either side fully.
        left_seen: list[Binding] = []
        right_seen: list[Binding] = []
        left_open = right_open = True
        rb: Binding | None
        while left_open or right_open:
            if left_open:
                lb: Binding | None = next(left, None)
                if lb is None:
                    left_open = False
                    if not left_seen:
                        return
                else:
                    for seen_rb in right_seen:
                        joined = self._combine(lb, seen_rb, accept)
                        if joined is not None:
                            yield joined
                    left_seen.append(lb)
            if right_open:
                rb = next(right, None)
                if rb is None:
                    right_open = False
                    if not right_seen:
                        return
                else:
                    for seen_lb in left_seen:
                        joined = self._combine(seen_lb, rb, accept)
                        if joined is not None:
                            yield joined
                    right_seen.append(rb)

    def _combine(self, lb: Binding, rb: Binding, accept: Callable[[Binding, Binding], bool] | None) -> Binding | None:
        joined = tuple(sorted(lb + rb))
        if not self.fits(joined):
            return None
        if accept is not None and not accept(lb, rb):
            return None
        return joined

    def _followed_by(self, lb: Binding, rb: Binding) -> bool:
        # Timestamps may be chosen anywhere in each interval: the earliest for the
        # left side and the latest for the right side is the most favourable choice.
        left, right = self.times(lb), self.times(rb)
        if left is None or right is None:
            return False
        return max(first for first, _ in left) <= min(last for _, last in right)

    def _within(self, binding: Binding, micros: int) -> bool:
        # A window of the given length can meet every interval iff the latest start
        # is no later than the earliest end plus the length.
        spans = self.times(binding)
        if spans is None:
            return False
        return max(first for first, _ in spans) <= min(last for _, last in spans) + micros

    def _inside(self, binding: Binding, start: int, stop: int) -> bool:
        spans = self.times(binding)
        if spans is None:
            return False
        # START is inclusive and STOP exclusive (§9.5.1): some instant of each interval is in [start, stop).
        return all(first < stop and last >= start for first, last in spans)

    def _repeats(self, node: Repeats) -> Iterator[Binding]:
        # n bindings of the operand that use different observations (instances), in
        # non-decreasing order of position so each combination is produced once.
        pool = list(self.bindings(node.expr))
        times = node.times

        def extend(start: int, acc: Binding, depth: int) -> Iterator[Binding]:
            if depth == times:
                yield acc
                return
            for i in range(start, len(pool)):
                joined = tuple(sorted(acc + pool[i]))
                if self.fits(joined):
                    yield from extend(i, joined, depth + 1)

        return extend(0, (), 0)


def _chain(*iterators: Iterator[Binding]) -> Iterator[Binding]:
    for it in iterators:
        yield from it


# -- the compiled pattern -----------------------------------------------------------------------


class CompiledStixPattern:
    """A STIX 2.1 pattern compiled once; implements `match.protocol.CompiledPattern`."""

    __slots__ = ("text", "parsed", "leaf_tests", "types", "single_observation", "_keys")

    def __init__(self, parsed: ParsedPattern) -> None:
        self.text = parsed.text
        self.parsed = parsed
        self.leaf_tests: tuple[ObservationTest, ...] = tuple(compile_leaf(leaf) for leaf in parsed.leaves)
        # The object types any observation must hold for some leaf to hold: a cheap prefilter.
        self.types: frozenset[str] = frozenset(
            c.object_type for leaf in parsed.leaves for c in _comparisons(leaf.expr))
        self.single_observation = _single_observation(parsed.root)
        keys = _exact_keys(parsed.root)
        self._keys = frozenset(keys) if keys is not None else None

    def __repr__(self) -> str:
        return f"CompiledStixPattern({self.text!r})"

    def exact_keys(self) -> frozenset[ExactKey] | None:
        """(kind, canonical value) keys when the pattern is a disjunction of equalities on
        indexable values (`[ipv4-addr:value = '…' OR domain-name:value = '…'] OR [...]`), else None.

        Looking these keys up is the index's reading of the pattern: canonical forms
        (case, trailing dots, default ports) and, per `match.protocol`, CIDR ranges and
        subdomains; `matches` compares the literal strings as §9.7 says.
        """
        return self._keys

    def observation_matches(self, observation: Observation) -> bool:
        """Does this single observation satisfy some leaf (any `[...]` of the pattern)?"""
        return any(test(observation) for test in self.leaf_tests)

    def leaf_hits(self, observations: Sequence[Observation]) -> list[list[int]]:
        return [[i for i, obs in enumerate(observations) if test(obs)] for test in self.leaf_tests]

    def bindings(self, observations: Sequence[Observation]) -> Iterator[Binding]:
        """Distinct bindings (observation indexes, repeated per instance used), lazily."""
        hits = self.leaf_hits(observations)
        return _Search(observations, hits).bindings(self.parsed.root)

    def matches(self, observations: Iterable[Observation | Mapping[str, Any] | LogEvent]) -> bool:
        """The verdict over a set of observations (Observation, observed-data dicts or LogEvents)."""
        items = [_as_observation(o) for o in observations]
        if self.single_observation:
            return any(self.observation_matches(o) for o in items)
        return any(True for _ in itertools.islice(self.bindings(items), 1))

    def evaluate(self, events: Sequence[LogEvent], *, max_matches: int = DEFAULT_MAX_MATCHES
                 ) -> list[tuple[LogEvent, ...]]:
        """Every match over `events`, each as the events that satisfied it (at most `max_matches`).

        A single-observation pattern gives one match per event; otherwise each
        distinct binding is one match, its events in input order.
        """
        observations = [observation_from_event(e) for e in events]
        if self.single_observation:
            singles: list[tuple[LogEvent, ...]] = [
                (events[i],) for i, obs in enumerate(observations) if self.observation_matches(obs)]
            return singles[:max_matches]
        out: list[tuple[LogEvent, ...]] = []
        for binding in self.bindings(observations):
            out.append(tuple(events[i] for i in sorted(set(binding))))
            if len(out) >= max_matches:
                break
        return out


def _as_observation(item: Observation | Mapping[str, Any] | LogEvent) -> Observation:
    if isinstance(item, Observation):
        return item
    if isinstance(item, LogEvent):
        return observation_from_event(item)
    return observation_from_dict(item)


def compile_pattern(text: str) -> CompiledStixPattern:
    """Compile a STIX 2.1 pattern; PatternError (a ValueError) when it is invalid."""
    return CompiledStixPattern(parse_pattern(text))
