"""A MISP object read through its template: which comparisons its attributes stand for.

Each attribute of an object is read as the MISP type its template gives its
relation (`domain-ip`'s `ip` is `ip-dst`, `ip-port`'s `dst-port` is `port`), so
an attribute typed loosely, or not at all, by its producer is still read right;
the attribute's own type is used where the template does not know the relation
or gives it no observable meaning. The types map to STIX comparisons through
`misp_types.COMPARISONS`. The object as a whole then decides what its parts mean:

- an object with addresses and ports (and no URL) describes a connection:
  addresses become `network-traffic:src_ref/dst_ref.value` and ports
  `src_port/dst_port`, the side taken from the relation (`src-port`, `ip-src`);
- an object with a URL and ports: the port is part of the URL and adds nothing;
- an object with a domain and addresses (and no port): the addresses are what
  the domain resolves to (`domain-name:resolves_to_refs[*].value`);
- an object with e-mail message properties (subject, attachments): its
  addresses are the message's sender (`email-src`: `from_ref`) and recipients
  (`email-dst`: `to_refs`, or `cc_refs`/`bcc_refs` by relation);
- several values of one relation on a single-valued STIX property are
  alternatives (`file:hashes.'SHA-256'` cannot be two hashes at once), joined
  by OR; on a list property (`resolves_to_refs[*]`) they all hold, joined by AND.

The template also checks the object (required and requiredOneOf relations,
relations it does not define, single-valued relations repeated): problems are
reported with the object and never drop it.

Where a template's type says less than its relation does, `RELATION_PATHS`
and `PART_OF` (data, below) give the STIX path; everything else comes from
the templates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from threatmesh.ingest.misp_templates import ObjectTemplate
from threatmesh.ingest.misp_types import COMPARISONS, Comparison, comparisons

# (template name, relation) -> (SCO type, path), for relations whose template type is
# generic (`text`) or names something other than the object's file: an Android app's
# `certificate` is typed `sha1` but is its signing certificate's hash; a PE's
# `original-filename` is typed `filename` but is a name in its version resource,
# not the file's name (None: no STIX property holds it).
RELATION_PATHS: dict[tuple[str, str], tuple[str, str] | None] = {
    ("android-app", "certificate"): ("x509-certificate", "hashes.'SHA-1'"),
    ("android-app", "certificate-sha256"): ("x509-certificate", "hashes.'SHA-256'"),
    ("x509", "serial-number"): ("x509-certificate", "serial_number"),
    ("file", "fullpath"): ("file", "x_misp_fullpath"),
    ("pe", "original-filename"): None,
    ("pe", "internal-filename"): None,
}

# Objects that describe a part of a file: their `file:` comparisons are properties of that part.
PART_OF: dict[str, str] = {
    "pe-section": "extensions.'windows-pebinary-ext'.sections[*].",
}

_ADDRESS_TYPES = frozenset({"ipv4-addr", "ipv6-addr"})


@dataclass(frozen=True, slots=True)
class Term:
    """Comparisons joined by OR (one, or the alternative values of one relation)."""

    alternatives: tuple[Comparison, ...]


@dataclass
class ObjectReading:
    template: ObjectTemplate | None
    terms: list[Term] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # the object against its template
    bad_values: list[tuple[int, str]] = field(default_factory=list)  # (attribute index, reason)
    types: dict[int, str] = field(default_factory=dict)  # the MISP type each attribute was read as
    observable: set[int] = field(default_factory=set)  # attributes that gave a comparison

    @property
    def comparisons(self) -> list[Comparison]:
        return [c for term in self.terms for c in term.alternatives]


def attribute_type(template: ObjectTemplate | None, relation: str, own_type: str) -> str:
    """The MISP type an object attribute is read as: its template's, unless that one says nothing observable."""
    spec = template.attributes.get(relation) if template else None
    if spec is None:
        return own_type
    if spec.misp_type in COMPARISONS or own_type not in COMPARISONS:
        return spec.misp_type
    return own_type


def read_object(name: str, attributes: Sequence[Mapping[str, Any]], template: ObjectTemplate | None) -> ObjectReading:
    """The comparisons a MISP object stands for, read with its template (None: by attribute types alone)."""
    reading = ObjectReading(template)
    kind = template.name if template else name
    relations = [str(a.get("object_relation") or "") for a in attributes]
    if template is not None:
        reading.problems.extend(template.problems(relations))
    by_relation: dict[str, list[tuple[str, list[Comparison]]]] = {}
    for index, (attribute, relation) in enumerate(zip(attributes, relations)):
        misp_type = attribute_type(template, relation, str(attribute.get("type") or ""))
        reading.types[index] = misp_type
        value = attribute.get("value")
        try:
            found = _comparisons(kind, relation, misp_type, value)
        except ValueError as exc:
            reading.bad_values.append((index, f"{misp_type} value {str(value)[:80]!r}: {exc}"))
            continue
        if found:
            reading.observable.add(index)
            by_relation.setdefault(relation, []).append((misp_type, found))
    _in_context(by_relation)
    prefix = PART_OF.get(kind)
    for values in by_relation.values():
        found_lists = [[_part(c, prefix) for c in found] for _, found in values]
        reading.terms.extend(_terms(found_lists))
    reading.terms = list(dict.fromkeys(reading.terms))  # two relations may say the same thing
    return reading


def _comparisons(kind: str, relation: str, misp_type: str, value: Any) -> list[Comparison]:
    if (kind, relation) not in RELATION_PATHS:
        return comparisons(misp_type, value)
    path = RELATION_PATHS[(kind, relation)]
    if path is None:
        return []
    if not isinstance(value, str) or not value.strip():
        raise ValueError("empty value")
    return [Comparison(path[0], path[1], value.strip())]


def _part(c: Comparison, prefix: str | None) -> Comparison:
    if prefix is None or c.sco_type != "file":
        return c
    return Comparison("file", prefix + c.path, c.value)


def _side(relation: str, misp_type: str) -> str:
    if misp_type.startswith("ip-src") or relation.lower().startswith(("src", "ip-src", "source")):
        return "src"
    return "dst"


def _message_ref(relation: str, misp_type: str) -> str:
    if misp_type == "email-src":
        return "from_ref.value"
    name = relation.lower()
    return "bcc_refs[*].value" if name.startswith("bcc") else "cc_refs[*].value" if name.startswith("cc") \
        else "to_refs[*].value"


def _in_context(by_relation: dict[str, list[tuple[str, list[Comparison]]]]) -> None:
    """Rewrite addresses and ports by what the object as a whole describes (see the module docstring)."""
    flat = [c for values in by_relation.values() for _, found in values for c in found]
    has_url = any(c.sco_type == "url" for c in flat)
    has_address = any(c.sco_type in _ADDRESS_TYPES and c.path == "value" for c in flat)
    has_domain = any(c.sco_type == "domain-name" and c.path == "value" for c in flat)
    port_paths = ("dst_port",)
    has_port = any(c.sco_type == "network-traffic" and c.path in port_paths for c in flat)
    has_message = any(c.sco_type == "email-message" for c in flat)
    for relation, values in by_relation.items():
        for n, (misp_type, found) in enumerate(values):
            out: list[Comparison] = []
            for c in found:
                is_port = c.sco_type == "network-traffic" and c.path in port_paths
                is_address = c.sco_type in _ADDRESS_TYPES and c.path == "value"
                if is_port and has_url and not has_address:
                    continue  # the URL holds its port
                side = _side(relation, misp_type)
                if has_port and not has_url and is_address:
                    out.append(Comparison("network-traffic", f"{side}_ref.value", c.value))
                elif has_port and not has_url and is_port and has_address:
                    out.append(Comparison("network-traffic", f"{side}_port", c.value))
                elif is_address and has_domain and not has_port:
                    out.append(Comparison("domain-name", "resolves_to_refs[*].value", c.value))
                elif has_message and c.sco_type == "email-addr" and misp_type in ("email-src", "email-dst"):
                    out.append(Comparison("email-message", _message_ref(relation, misp_type), c.value))
                else:
                    out.append(c)
            values[n] = (misp_type, out)


def _terms(found_lists: list[list[Comparison]]) -> list[Term]:
    """Terms of one relation: its values are alternatives on a single-valued property, all hold on a list."""
    singles = [found[0] for found in found_lists if len(found) == 1]
    if len(found_lists) < 2 or len(singles) != len(found_lists):
        return [Term((c,)) for found in found_lists for c in found]
    out: list[Term] = []
    groups: dict[tuple[str, str], list[Comparison]] = {}
    for c in singles:
        groups.setdefault((c.sco_type, c.path), []).append(c)
    for (_, path), group in groups.items():
        if "[*]" in path:
            out.extend(Term((c,)) for c in group)
        else:
            out.append(Term(tuple(dict.fromkeys(group))))
    return out
