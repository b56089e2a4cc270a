"""STIX 2.1 patterns as a small tree of frozen dataclasses (STIX 2.1 §9).

The text is parsed by `stix2-patterns`, the maintained OASIS grammar; this
module only turns its ANTLR parse tree into nodes the evaluator can walk
without touching ANTLR again. Literals become Python values here, once:

    IntLiteral -> int        FloatLiteral -> float     BoolLiteral -> bool
    StringLiteral -> str     b'..' / h'..' -> bytes    t'..' -> Timestamp

Comparison expressions (§9.3, inside `[...]`) and observation expressions
(§9.5, between brackets) are separate node families, as in the grammar.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any, Union

from antlr4 import TerminalNode

from threatmesh.stix.timestamps import timestamp_to_micros

try:  # stix2-patterns 2.x
    from stix2patterns.exceptions import ParseException
    from stix2patterns.v21.grammars.STIXPatternParser import STIXPatternParser as P
    from stix2patterns.v21.pattern import Pattern as _GrammarPattern
except ImportError as exc:  # pragma: no cover - a declared dependency
    raise ImportError("threatmesh.match.patterns needs stix2-patterns>=2.0") from exc


class PatternError(ValueError):
    """A pattern that the STIX 2.1 grammar, or its semantics, rejects."""


@dataclass(frozen=True, slots=True, order=True)
class Timestamp:
    """A `t'...'` literal: µs since the epoch, a type of its own so that it never equals an int."""

    micros: int


STAR = "*"  # the `[*]` list step
PathStep = Union[str, int]  # a key, a list index, or STAR


@dataclass(frozen=True, slots=True)
class Comparison:
    """`type:path OP literal` (§9.3, §9.6); `negated` is the NOT before the operator."""

    object_type: str
    path: tuple[PathStep, ...]  # steps after the ':'; keys are str, indexes int, STAR for [*]
    op: str  # '=', '!=', '<', '<=', '>', '>=', 'IN', 'LIKE', 'MATCHES', 'ISSUBSET', 'ISSUPERSET', 'EXISTS'
    literal: Any  # a value, a tuple of values for IN, None for EXISTS
    negated: bool = False


@dataclass(frozen=True, slots=True)
class CompAnd:
    items: tuple["CompExpr", ...]


@dataclass(frozen=True, slots=True)
class CompOr:
    items: tuple["CompExpr", ...]


CompExpr = Union[Comparison, CompAnd, CompOr]


@dataclass(frozen=True, slots=True)
class Leaf:
    """`[ comparison expression ]`: one observation expression, bound to one observation."""

    expr: CompExpr
    index: int  # position among the pattern's leaves, for per-leaf results


@dataclass(frozen=True, slots=True)
class ObsOp:
    op: str  # 'AND', 'OR', 'FOLLOWEDBY'
    left: "ObsExpr"
    right: "ObsExpr"


@dataclass(frozen=True, slots=True)
class Within:
    expr: "ObsExpr"
    micros: int  # WITHIN n SECONDS, in µs


@dataclass(frozen=True, slots=True)
class Repeats:
    expr: "ObsExpr"
    times: int


@dataclass(frozen=True, slots=True)
class StartStop:
    expr: "ObsExpr"
    start: int  # µs
    stop: int  # µs


ObsExpr = Union[Leaf, ObsOp, Within, Repeats, StartStop]

_ESCAPE_RE = re.compile(r"\\(.)", re.S)


def _string(text: str) -> str:
    # The grammar allows exactly two escapes in a string literal: \' and \\.
    return _ESCAPE_RE.sub(r"\1", text[1:-1])


def _timestamp(text: str) -> Timestamp:
    try:
        return Timestamp(timestamp_to_micros(text[2:-1]))
    except ValueError as exc:
        raise PatternError(f"invalid timestamp literal {text}: {exc}") from None


def literal_value(token: TerminalNode) -> Any:
    """The Python value of one literal token."""
    kind = token.getSymbol().type
    text = token.getText()
    if kind in (P.IntPosLiteral, P.IntNegLiteral):
        return int(text)
    if kind in (P.FloatPosLiteral, P.FloatNegLiteral):
        return float(text)
    if kind == P.StringLiteral:
        return _string(text)
    if kind == P.BoolLiteral:
        return text.lower() == "true"
    if kind == P.BinaryLiteral:
        try:
            return base64.b64decode(text[2:-1], validate=True)
        except (binascii.Error, ValueError):
            raise PatternError(f"invalid binary literal {text}") from None
    if kind == P.HexLiteral:
        try:
            return bytes.fromhex(text[2:-1])
        except ValueError:
            raise PatternError(f"invalid hex literal {text}") from None
    if kind == P.TimestampLiteral:
        return _timestamp(text)
    raise PatternError(f"unsupported literal {text!r}")


def _first_terminal(ctx: Any) -> TerminalNode:
    node = ctx
    while not isinstance(node, TerminalNode):
        node = node.getChild(0)
    return node


class _Builder:
    """Turns the parse tree into nodes; numbers the leaves left to right."""

    def __init__(self) -> None:
        self.leaves: list[Leaf] = []

    # -- observation expressions (§9.5) ------------------------------------------
    def observations(self, ctx: Any) -> ObsExpr:
        if isinstance(ctx, P.PatternContext):
            return self.observations(ctx.observationExpressions())
        if isinstance(ctx, P.ObservationExpressionsContext):
            return self._binary(ctx, ctx.observationExpressions(), ctx.observationExpressionOr(), "FOLLOWEDBY")
        if isinstance(ctx, P.ObservationExpressionOrContext):
            return self._binary(ctx, ctx.observationExpressionOr(), ctx.observationExpressionAnd(), "OR")
        if isinstance(ctx, P.ObservationExpressionAndContext):
            return self._binary(ctx, ctx.observationExpressionAnd(), ctx.observationExpression(), "AND")
        if isinstance(ctx, P.ObservationExpressionSimpleContext):
            leaf = Leaf(self.comparison(ctx.comparisonExpression()), len(self.leaves))
            self.leaves.append(leaf)
            return leaf
        if isinstance(ctx, P.ObservationExpressionCompoundContext):
            return self.observations(ctx.observationExpressions())
        if isinstance(ctx, P.ObservationExpressionWithinContext):
            qualifier = ctx.withinQualifier()
            seconds = literal_value(qualifier.FloatPosLiteral() or qualifier.IntPosLiteral())
            if seconds <= 0:
                raise PatternError(f"WITHIN needs a positive number of seconds, not {seconds}")
            return Within(self.observations(ctx.observationExpression()), round(seconds * 1_000_000))
        if isinstance(ctx, P.ObservationExpressionRepeatedContext):
            times = literal_value(ctx.repeatedQualifier().IntPosLiteral())
            if times < 1:
                raise PatternError(f"REPEATS needs a positive count, not {times}")
            return Repeats(self.observations(ctx.observationExpression()), times)
        if isinstance(ctx, P.ObservationExpressionStartStopContext):
            qualifier = ctx.startStopQualifier()
            start = literal_value(qualifier.TimestampLiteral(0))
            stop = literal_value(qualifier.TimestampLiteral(1))
            return StartStop(self.observations(ctx.observationExpression()), start.micros, stop.micros)
        raise PatternError(f"unsupported observation expression {ctx.getText()!r}")

    def _binary(self, ctx: Any, same: list[Any], lower: Any, op: str) -> ObsExpr:
        if same:  # `<assoc=left> a OP b`: both operands are of this rule
            return ObsOp(op, self.observations(same[0]), self.observations(same[1]))
        return self.observations(lower)

    # -- comparison expressions (§9.3) -------------------------------------------
    def comparison(self, ctx: Any) -> CompExpr:
        if isinstance(ctx, P.ComparisonExpressionContext):
            parts = ctx.comparisonExpression()
            if parts:
                return _flatten(CompOr, self.comparison(parts[0]), self.comparison(parts[1]))
            return self.comparison(ctx.comparisonExpressionAnd())
        if isinstance(ctx, P.ComparisonExpressionAndContext):
            parts = ctx.comparisonExpressionAnd()
            if parts:
                return _flatten(CompAnd, self.comparison(parts[0]), self.comparison(parts[1]))
            return self.comparison(ctx.propTest())
        if isinstance(ctx, P.PropTestParenContext):
            return self.comparison(ctx.comparisonExpression())
        return self.prop_test(ctx)

    def prop_test(self, ctx: Any) -> Comparison:
        object_type, path = _object_path(ctx.objectPath())
        negated = ctx.NOT() is not None
        if isinstance(ctx, P.PropTestEqualContext):
            op = "=" if ctx.EQ() else "!="
            return Comparison(object_type, path, op, literal_value(_first_terminal(ctx.primitiveLiteral())), negated)
        if isinstance(ctx, P.PropTestOrderContext):
            op = (ctx.GT() or ctx.LT() or ctx.GE() or ctx.LE()).getText()
            return Comparison(object_type, path, op, literal_value(_first_terminal(ctx.orderableLiteral())), negated)
        if isinstance(ctx, P.PropTestSetContext):
            values = tuple(literal_value(_first_terminal(node)) for node in ctx.setLiteral().primitiveLiteral())
            _check_homogeneous(values, ctx.setLiteral().getText())
            return Comparison(object_type, path, "IN", values, negated)
        if isinstance(ctx, P.PropTestExistsContext):
            return Comparison(object_type, path, "EXISTS", None, negated)
        for cls, op in ((P.PropTestLikeContext, "LIKE"), (P.PropTestRegexContext, "MATCHES"),
                        (P.PropTestIsSubsetContext, "ISSUBSET"), (P.PropTestIsSupersetContext, "ISSUPERSET")):
            if isinstance(ctx, cls):
                return Comparison(object_type, path, op, _string(ctx.StringLiteral().getText()), negated)
        raise PatternError(f"unsupported comparison {ctx.getText()!r}")


def _flatten(cls: type[CompAnd] | type[CompOr], left: CompExpr, right: CompExpr) -> CompExpr:
    items: list[CompExpr] = []
    for part in (left, right):
        items.extend(part.items if isinstance(part, cls) else (part,))
    return cls(tuple(items))


def _check_homogeneous(values: tuple[Any, ...], text: str) -> None:
    # §9.6: the members of a set are of one type (ints and floats count as numbers).
    kinds = {"number" if type(v) in (int, float) else type(v).__name__ for v in values}
    if len(kinds) > 1:
        raise PatternError(f"the set {text} mixes types ({', '.join(sorted(kinds))})")


def _key(ctx: Any) -> str:
    ident = ctx.IdentifierWithoutHyphen()
    return ident.getText() if ident is not None else _string(ctx.StringLiteral().getText())


def _object_path(ctx: Any) -> tuple[str, tuple[PathStep, ...]]:
    type_ctx = ctx.objectType()
    object_type = (type_ctx.IdentifierWithoutHyphen() or type_ctx.IdentifierWithHyphen()).getText()
    steps: list[PathStep] = [_key(ctx.firstPathComponent())]
    component = ctx.objectPathComponent()
    if component is not None:
        _path_steps(component, steps)
    return object_type, tuple(steps)


def _path_steps(ctx: Any, out: list[PathStep]) -> None:
    if isinstance(ctx, P.PathStepContext):
        for part in ctx.objectPathComponent():
            _path_steps(part, out)
    elif isinstance(ctx, P.KeyPathStepContext):
        out.append(_key(ctx))
    elif isinstance(ctx, P.IndexPathStepContext):
        if ctx.ASTERISK() is not None:
            out.append(STAR)
        else:
            out.append(int((ctx.IntPosLiteral() or ctx.IntNegLiteral()).getText()))
    else:  # pragma: no cover - the grammar has no other step
        raise PatternError(f"unsupported path step {ctx.getText()!r}")


@dataclass(frozen=True, slots=True)
class ParsedPattern:
    text: str
    root: ObsExpr
    leaves: tuple[Leaf, ...]


def parse_pattern(text: str) -> ParsedPattern:
    """Parse a STIX 2.1 pattern into nodes; PatternError with the grammar's message if invalid."""
    if not isinstance(text, str) or not text.strip():
        raise PatternError("empty pattern")
    try:
        tree = _GrammarPattern(text)
    except ParseException as exc:
        raise PatternError(f"not a STIX 2.1 pattern: {exc}") from None
    builder = _Builder()
    captured: list[Any] = []

    class _Grab:  # Pattern keeps its tree private; `visit` hands it to us
        def visit(self, tree_: Any) -> None:
            captured.append(tree_)

    tree.visit(_Grab())
    root = builder.observations(captured[0])
    return ParsedPattern(text, root, tuple(builder.leaves))
