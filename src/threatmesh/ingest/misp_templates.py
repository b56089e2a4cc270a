"""MISP object templates: what each object relation is, and what an object must hold.

A template (`objects/<name>/definition.json` of the MISP object repository)
names an object kind (`file`, `domain-ip`, `ip-port`...), with a uuid and a
version, and lists its relations: each relation's MISP attribute type
(`misp-attribute`), its `ui-priority`, whether it may occur more than once
(`multiple`), and which relations the object needs (`required`: all of them;
`requiredOneOf`: at least one).

The registry resolves an object to its template by `template_uuid` (and by
name when the uuid is missing or unknown) and checks an object against it.
The default registry is the set of templates PyMISP ships in its package
(`pymisp/data/misp-objects/objects`); a node may load another templates folder
(`threatmesh kb load misp-objects DIR`), whose templates then take precedence.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

from threatmesh.errors import InputError


@dataclass(frozen=True, slots=True)
class TemplateAttribute:
    relation: str
    misp_type: str  # the template's `misp-attribute`
    ui_priority: int = 0
    multiple: bool = False
    categories: tuple[str, ...] = ()
    to_ids: bool | None = None  # the template's default, when it gives one


@dataclass(frozen=True, slots=True)
class ObjectTemplate:
    name: str
    uuid: str
    version: int
    meta_category: str
    description: str
    attributes: Mapping[str, TemplateAttribute]
    required: tuple[str, ...] = ()
    required_one_of: tuple[str, ...] = ()

    def problems(self, relations: Iterable[str]) -> list[str]:
        """What an object with these relations (one per attribute) lacks or holds too much of."""
        counts: dict[str, int] = {}
        for relation in relations:
            counts[relation] = counts.get(relation, 0) + 1
        out: list[str] = []
        missing = [r for r in self.required if r not in counts]
        if missing:
            out.append(f"lacks required {', '.join(missing)}")
        if self.required_one_of and not any(r in counts for r in self.required_one_of):
            out.append(f"holds none of {', '.join(self.required_one_of)} (one is required)")
        unknown = sorted(r for r in counts if r not in self.attributes)
        if unknown:
            out.append(f"relations not in the template: {', '.join(unknown)}")
        repeated = sorted(r for r, n in counts.items() if n > 1 and r in self.attributes
                          and not self.attributes[r].multiple)
        if repeated:
            out.append(f"repeats single-valued {', '.join(repeated)}")
        return out

    def as_dict(self) -> dict[str, Any]:
        """The definition.json shape (the fields threatmesh reads), to keep templates in a node."""
        return {
            "name": self.name, "uuid": self.uuid, "version": self.version, "meta-category": self.meta_category,
            "description": self.description,
            "attributes": {a.relation: {"misp-attribute": a.misp_type, "ui-priority": a.ui_priority,
                                        "multiple": a.multiple, "categories": list(a.categories),
                                        **({"to_ids": a.to_ids} if a.to_ids is not None else {})}
                           for a in self.attributes.values()},
            **({"required": list(self.required)} if self.required else {}),
            **({"requiredOneOf": list(self.required_one_of)} if self.required_one_of else {}),
        }


def parse_template(data: Any, source: str) -> ObjectTemplate:
    """One definition.json document as a template; InputError with the reason when it is not one."""
    if not isinstance(data, Mapping):
        raise InputError("a MISP object template is a JSON object", source=source)
    name, template_uuid, attributes = data.get("name"), data.get("uuid"), data.get("attributes")
    if not isinstance(name, str) or not name:
        raise InputError("template without a name", source=source)
    if not isinstance(template_uuid, str) or not template_uuid:
        raise InputError(f"template {name!r} without a uuid", source=source)
    if not isinstance(attributes, Mapping) or not attributes:
        raise InputError(f"template {name!r} without attributes", source=source)
    try:
        version = int(data.get("version", 0))
    except (TypeError, ValueError):
        raise InputError(f"template {name!r}: version {data.get('version')!r} is not a number", source=source) from None
    parsed: dict[str, TemplateAttribute] = {}
    for relation, spec in attributes.items():
        if not isinstance(spec, Mapping) or not isinstance(spec.get("misp-attribute"), str):
            raise InputError(f"template {name!r}: relation {relation!r} has no misp-attribute type", source=source)
        categories = spec.get("categories")
        to_ids = spec.get("to_ids")
        try:
            priority = int(spec.get("ui-priority", 0))
        except (TypeError, ValueError):
            priority = 0
        parsed[str(relation)] = TemplateAttribute(
            str(relation), spec["misp-attribute"], priority, spec.get("multiple") is True,
            tuple(str(c) for c in categories) if isinstance(categories, list) else (),
            to_ids if isinstance(to_ids, bool) else None)
    return ObjectTemplate(
        name=name, uuid=template_uuid.lower(), version=version, meta_category=str(data.get("meta-category", "")),
        description=str(data.get("description", "")), attributes=parsed,
        required=_names(data.get("required")), required_one_of=_names(data.get("requiredOneOf")))


def _names(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def read_template_dir(path: Path) -> Iterator[ObjectTemplate | InputError]:
    """Every `*/definition.json` under a templates folder (the repository root, its `objects/`, or one template)."""
    if not path.is_dir():
        raise InputError("not a folder of MISP object templates", source=str(path))
    files = sorted(path.rglob("definition.json"))
    if not files:
        raise InputError("no */definition.json under this folder", source=str(path))
    for file in files:
        try:
            yield parse_template(orjson.loads(file.read_bytes()), str(file))
        except orjson.JSONDecodeError as exc:
            yield InputError(f"not valid JSON ({exc.msg})", source=str(file), line=exc.lineno, column=exc.colno)
        except InputError as exc:
            yield exc


@dataclass
class TemplateRegistry:
    """Templates by uuid and by name; the highest version wins where two sources give the same one."""

    by_uuid: dict[str, ObjectTemplate] = field(default_factory=dict)
    by_name: dict[str, ObjectTemplate] = field(default_factory=dict)
    source: str = ""

    def add(self, template: ObjectTemplate, *, override: bool = False) -> None:
        for index, key in ((self.by_uuid, template.uuid), (self.by_name, template.name)):
            current = index.get(key)
            if current is None or override or template.version >= current.version:
                index[key] = template

    def merged(self, templates: Iterable[ObjectTemplate], source: str) -> TemplateRegistry:
        """A copy with `templates` added over these ones (they replace any of the same uuid or name)."""
        out = TemplateRegistry(dict(self.by_uuid), dict(self.by_name), f"{self.source} + {source}".strip(" +"))
        for template in templates:
            out.add(template, override=True)
        return out

    def resolve(self, template_uuid: Any, name: Any) -> ObjectTemplate | None:
        """The template of an object: by its template_uuid, else by its name."""
        if isinstance(template_uuid, str) and template_uuid.lower() in self.by_uuid:
            return self.by_uuid[template_uuid.lower()]
        if isinstance(name, str):
            return self.by_name.get(name)
        return None

    def __len__(self) -> int:
        return len(self.by_uuid)


def pymisp_templates_dir() -> Path | None:
    """Where PyMISP keeps the MISP object templates it ships (found without importing PyMISP)."""
    spec = importlib.util.find_spec("pymisp")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        folder = Path(location) / "data" / "misp-objects" / "objects"
        if folder.is_dir():
            return folder
    return None


@lru_cache(maxsize=1)
def default_registry() -> TemplateRegistry:
    """The templates PyMISP ships; empty (objects are then read by attribute type alone) without PyMISP."""
    registry = TemplateRegistry(source="pymisp")
    folder = pymisp_templates_dir()
    if folder is None:
        return registry
    for item in read_template_dir(folder):
        if isinstance(item, ObjectTemplate):
            registry.add(item)
    return registry
