"""Many compiled STIX patterns over a stream of observations, without testing every pair.

- Patterns with exact keys (disjunctions of equalities) are found by dictionary
  lookups of each observation's canonical values: the same keys, and the same
  reading (canonical forms, subdomains of a domain key), as the exact-observable
  index of `match.protocol`.
- `[ipv4-addr:value ISSUBSET 'net/len']` patterns (and IPv6) go into a range
  index: one dictionary probe per prefix length in use, whatever their number.
- The others are indexed by the object types they name, so an observation is
  only tested against patterns about the objects it holds.
- Logs repeat their values (one resolver, a few hundred busy domains), so a leaf
  whose comparisons read top-level properties only remembers its verdict per
  combination of those values.
- A leaf that reads more than top-level properties (`dst_ref.value`, a list) is
  guarded by the part of it that does not: `[network-traffic:dst_port = 4444 AND
  network-traffic:dst_ref.value ISSUBSET '10.0.0.0/8']` is only evaluated on
  objects whose `dst_port` passes, and that verdict is remembered per port.
- Patterns that need several observations (AND, FOLLOWEDBY, qualifiers) keep only
  the observations that satisfy one of their leaves; the binding search runs
  over those at the end, which is exact: no other observation can be bound.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable

from threatmesh.match.pattern_model import CompAnd, CompExpr, CompOr, Comparison, Leaf
from threatmesh.match.pattern_values import _dotted_quad, _network
from threatmesh.match.patterns import CompiledStixPattern, Observation, compile_leaf
from threatmesh.match.protocol import ExactKey
from threatmesh.stix.observables import normalize, normalize_kind

_VALUE_KINDS = frozenset({"ipv4-addr", "ipv6-addr", "domain-name", "url", "email-addr", "mac-addr"})
_HASHED_TYPES = frozenset({"file", "artifact", "x509-certificate"})
_MEMO_LIMIT = 200_000  # remembered verdicts per leaf; past it, leaves are simply evaluated


_KEYS_CACHE: dict[tuple[str, str], tuple[ExactKey, ...]] = {}
_KEYS_CACHE_LIMIT = 1 << 18


def _value_keys(kind: str, raw: str) -> tuple[ExactKey, ...]:
    """The keys of one value (with its parent domains), remembered: logs repeat their values."""
    cached = _KEYS_CACHE.get((kind, raw))
    if cached is not None:
        return cached
    try:
        # A plain dotted quad is its own canonical form; `ipaddress` is the slow way to learn that.
        value = raw if kind == "ipv4-addr" and _dotted_quad(raw) is not None else normalize(kind, raw)
    except ValueError:
        found: tuple[ExactKey, ...] = ()
    else:
        found = ((kind, value),)
        if kind == "domain-name":  # an indicator on evil.com also fires on a.b.evil.com
            labels = value.split(".")
            found += tuple((kind, ".".join(labels[i:])) for i in range(1, len(labels) - 1))
    if len(_KEYS_CACHE) >= _KEYS_CACHE_LIMIT:
        _KEYS_CACHE.clear()
    _KEYS_CACHE[(kind, raw)] = found
    return found


def observation_keys(observation: Observation) -> set[ExactKey]:
    """The canonical (kind, value) keys of an observation's objects, with every parent domain."""
    keys: set[ExactKey] = set()
    for obj in observation.objects.values():
        if type(obj) is not dict:
            continue
        kind = obj.get("type")
        if kind in _VALUE_KINDS and type(obj.get("value")) is str:
            keys.update(_value_keys(kind, obj["value"]))
        elif kind in _HASHED_TYPES and type(obj.get("hashes")) is dict:
            for name, digest in obj["hashes"].items():
                hkind = normalize_kind(f"{kind}:hashes.{name}")
                try:
                    keys.add((hkind, normalize(hkind, digest)))
                except ValueError:
                    continue
    return keys


def _memo_keys(expr: CompExpr) -> tuple[str, ...] | None:
    """The top-level properties a leaf reads, when that is all it reads (no refs, lists or binaries)."""
    props: dict[str, None] = {}
    stack: list[CompExpr] = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, Comparison):
            if len(node.path) != 1 or type(node.path[0]) is not str or \
                    node.path[0].endswith(("_ref", "_refs", "_hex", "_bin")):
                return None
            props[node.path[0]] = None
        else:
            assert isinstance(node, (CompAnd, CompOr))
            stack.extend(node.items)
    return tuple(props)


def _guard(expr: CompExpr) -> CompExpr | None:
    """A part of `expr` that reads top-level properties only and holds whenever `expr` holds
    on the same object (a conjunct, or a guard of every branch of an OR); None if there is none."""
    if _memo_keys(expr) is not None:
        return expr
    if isinstance(expr, CompAnd):
        parts = [g for g in (_guard(item) for item in expr.items) if g is not None]
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else CompAnd(tuple(parts))
    if isinstance(expr, CompOr):
        branches = [_guard(item) for item in expr.items]
        if any(b is None for b in branches):
            return None
        return CompOr(tuple(b for b in branches if b is not None))
    return None


@dataclass
class _Leaf:
    test: Callable[[Observation], bool]
    types: frozenset[str]
    props: tuple[str, ...] | None
    memo: dict[Hashable, bool] = field(default_factory=dict)
    expr: CompExpr | None = None  # the comparison expression tested

    def __call__(self, observation: Observation) -> bool:
        if self.props is None:
            return self.test(observation)
        # The verdict depends only on (type, props) of each object: remember it per object.
        for obj in observation.objects.values():
            if type(obj) is not dict or obj.get("type") not in self.types:
                continue
            try:
                key = (obj["type"], *(obj.get(p) for p in self.props))
                hit = self.memo.get(key)
            except TypeError:  # an unhashable value (a list): evaluate
                if self.test(Observation({"0": obj}, observation.first, observation.last, observation.count)):
                    return True
                continue
            if hit is None:
                hit = self.test(Observation({"0": obj}, observation.first, observation.last, observation.count))
                if len(self.memo) < _MEMO_LIMIT:
                    self.memo[key] = hit
            if hit:
                return True
        return False


class PatternSet:
    """A set of compiled patterns, by id, matched together against observations."""

    def __init__(self, patterns: Mapping[str, CompiledStixPattern]) -> None:
        self.patterns = dict(patterns)
        self.exact: dict[ExactKey, list[str]] = {}
        self.by_type: dict[str, list[tuple[str, _Leaf]]] = {}
        self.multi: dict[str, list[tuple[int, _Leaf]]] = {}
        # (object type, IP version, prefix length) -> {network int: [pattern ids]}
        self.ranges: dict[tuple[str, int, int], dict[int, list[str]]] = {}
        for pid, compiled in self.patterns.items():
            keys = compiled.exact_keys()
            if keys is not None:
                for key in keys:
                    self.exact.setdefault(key, []).append(pid)
                continue
            if compiled.single_observation and all(_range_of(leaf) for leaf in compiled.parsed.leaves):
                for parsed_leaf in compiled.parsed.leaves:
                    object_type, (version, net, prefix) = _range_of(parsed_leaf)  # type: ignore[misc]
                    bits = 32 if version == 4 else 128
                    by_net = self.ranges.setdefault((object_type, version, prefix), {})
                    by_net.setdefault(net >> (bits - prefix), []).append(pid)
                continue
            leaves = [(leaf.index, _Leaf(compile_leaf(leaf), _types(leaf.expr), _memo_keys(leaf.expr),
                                        expr=leaf.expr))
                      for leaf in compiled.parsed.leaves]
            if compiled.single_observation:
                for _, leaf in leaves:
                    for t in leaf.types:
                        self.by_type.setdefault(t, []).append((pid, leaf))
            else:
                self.multi[pid] = leaves

    def _buckets(self) -> tuple[dict[str, tuple[tuple[str, ...], list[tuple[str, int, _Leaf]]]],
                                dict[str, list[tuple[str, int, _Leaf]]]]:
        """Per object type: the memo-able leaves with the properties they read, and the others.

        Entries are (pattern id, leaf index or -1 for single-observation patterns, leaf)."""
        memo: dict[str, tuple[dict[str, None], list[tuple[str, int, _Leaf]]]] = {}
        other: dict[str, list[tuple[str, int, _Leaf]]] = {}
        entries = [(pid, -1, leaf) for t, items in self.by_type.items() for pid, leaf in items if len(leaf.types) == 1]
        entries += [(pid, -1, leaf) for t, items in self.by_type.items() for pid, leaf in items if len(leaf.types) > 1
                    and t == min(leaf.types)]  # a leaf naming several types is listed under each; keep one
        entries += [(pid, index, leaf) for pid, leaves in self.multi.items() for index, leaf in leaves]
        for pid, index, leaf in entries:
            for t in sorted(leaf.types):
                if leaf.props is not None:
                    props, items = memo.setdefault(t, ({}, []))
                    props.update(dict.fromkeys(leaf.props))
                    items.append((pid, index, leaf))
                else:
                    other.setdefault(t, []).append((pid, index, leaf))
        return {t: (tuple(props), items) for t, (props, items) in memo.items()}, other

    def _guards(self, other: dict[str, list[tuple[str, int, _Leaf]]]) -> tuple[
            dict[str, tuple[tuple[str, ...], list[tuple[str, int, _Leaf, _Leaf]]]],
            dict[str, list[tuple[str, int, _Leaf]]]]:
        """Split the leaves evaluated on every object into those with a guard (per type: the
        properties the guards read and (pattern id, leaf index, guard, leaf)) and the rest."""
        guarded: dict[str, tuple[dict[str, None], list[tuple[str, int, _Leaf, _Leaf]]]] = {}
        unguarded: dict[str, list[tuple[str, int, _Leaf]]] = {}
        for t, items in other.items():
            for pid, index, leaf in items:
                expr = leaf.expr
                guard = _guard(expr) if expr is not None and _types(expr) == frozenset((t,)) else None
                if guard is None:
                    unguarded.setdefault(t, []).append((pid, index, leaf))
                    continue
                props = _memo_keys(guard)
                assert props is not None
                guard_leaf = _Leaf(compile_leaf(Leaf(guard, 0)), frozenset((t,)), props)
                names, entries = guarded.setdefault(t, ({}, []))
                names.update(dict.fromkeys(props))
                entries.append((pid, index, guard_leaf, leaf))
        return {t: (tuple(names), entries) for t, (names, entries) in guarded.items()}, unguarded

    def scan(self, observations: Sequence[Observation]) -> dict[str, list[int]]:
        """Pattern id -> indexes of the observations behind its matches (single-observation
        patterns: every observation that matches; the others: the first binding found)."""
        hits: dict[str, list[int]] = {}
        leaf_hits: dict[str, dict[int, set[int]]] = {pid: {} for pid in self.multi}
        memo_buckets, other = self._buckets()
        guard_buckets, other = self._guards(other)
        # (type, values of the properties read) -> what the memo-able leaves of that type say.
        verdicts: dict[Hashable, tuple[tuple[str, int], ...]] = {}
        # (type, values of the properties the guards read) -> the leaves whose guard passes.
        passing: dict[Hashable, tuple[tuple[str, int, _Leaf], ...]] = {}
        for i, observation in enumerate(observations):
            matched: set[str] = set()
            for key in observation_keys(observation):
                matched.update(self.exact.get(key, ()))
            if self.ranges:
                self._range_hits(observation, matched)
            found: set[tuple[str, int]] = set()
            types: set[str] = set()
            for obj in observation.objects.values():
                if type(obj) is not dict:
                    continue
                t = str(obj.get("type"))
                types.add(t)
                bucket = memo_buckets.get(t)
                if bucket is None:
                    continue
                props, items = bucket
                try:
                    signature = (t, *(obj.get(p) for p in props))
                    verdict = verdicts.get(signature)
                except TypeError:  # an unhashable value: no memo for this object
                    signature, verdict = None, None
                if verdict is None:
                    alone = Observation({"0": obj}, observation.first, observation.last, observation.count)
                    verdict = tuple((pid, index) for pid, index, leaf in items if leaf.test(alone))
                    if signature is not None and len(verdicts) < _MEMO_LIMIT:
                        verdicts[signature] = verdict
                found.update(verdict)
            for obj in observation.objects.values() if guard_buckets else ():
                if type(obj) is not dict:
                    continue
                t = str(obj.get("type"))
                gbucket = guard_buckets.get(t)
                if gbucket is None:
                    continue
                gprops, gitems = gbucket
                try:
                    gsig: Hashable | None = (t, *(obj.get(p) for p in gprops))
                    candidates = passing.get(gsig)
                except TypeError:
                    gsig, candidates = None, None
                if candidates is None:
                    alone = Observation({"0": obj}, observation.first, observation.last, observation.count)
                    candidates = tuple((pid, index, leaf) for pid, index, guard, leaf in gitems
                                       if guard.test(alone))
                    if gsig is not None and len(passing) < _MEMO_LIMIT:
                        passing[gsig] = candidates
                for pid, index, leaf in candidates:
                    if (pid, index) not in found and leaf.test(observation):
                        found.add((pid, index))
            for t in types:
                for pid, index, leaf in other.get(t, ()):
                    if (pid, index) not in found and leaf.test(observation):
                        found.add((pid, index))
            for pid, index in found:
                if index < 0:
                    matched.add(pid)
                else:
                    leaf_hits[pid].setdefault(index, set()).add(i)
            for pid in matched:
                hits.setdefault(pid, []).append(i)
        for pid, per_leaf in leaf_hits.items():
            compiled = self.patterns[pid]
            relevant = sorted({i for seen in per_leaf.values() for i in seen})
            if not relevant:
                continue
            subset = [observations[i] for i in relevant]
            binding = next(compiled.bindings(subset), None)
            if binding is not None:
                hits[pid] = sorted({relevant[j] for j in binding})
        return hits

    def _range_hits(self, observation: Observation, matched: set[str]) -> None:
        for obj in observation.objects.values():
            if type(obj) is not dict or obj.get("type") not in ("ipv4-addr", "ipv6-addr"):
                continue
            parsed = _network(obj.get("value"))
            if parsed is None:
                continue
            version, value, own_prefix = parsed
            bits = 32 if version == 4 else 128
            for (object_type, v, prefix), by_net in self.ranges.items():
                if v == version and object_type == obj["type"] and own_prefix >= prefix:
                    matched.update(by_net.get(value >> (bits - prefix), ()))


def _range_of(leaf: Leaf) -> tuple[str, tuple[int, int, int]] | None:
    """(object type, (version, network, prefix)) for a leaf `[ipvX-addr:value ISSUBSET 'net']`."""
    c = leaf.expr
    if isinstance(c, Comparison) and c.op == "ISSUBSET" and not c.negated and c.path == ("value",) \
            and c.object_type in ("ipv4-addr", "ipv6-addr"):
        parsed = _network(c.literal)
        if parsed is not None and parsed[0] == (4 if c.object_type == "ipv4-addr" else 6) and parsed[2] > 0:
            return c.object_type, parsed
    return None


def _types(expr: CompExpr) -> frozenset[str]:
    if isinstance(expr, Comparison):
        return frozenset((expr.object_type,))
    return frozenset(t for item in expr.items for t in _types(item))


def compile_all(patterns: Iterable[tuple[str, str]]) -> PatternSet:
    from threatmesh.match.patterns import compile_pattern

    return PatternSet({pid: compile_pattern(text) for pid, text in patterns})
