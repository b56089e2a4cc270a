"""MISP object templates kept in a node: `threatmesh kb load misp-objects DIR`.

A node reads MISP objects with the templates PyMISP ships, plus every
templates folder loaded into it (a newer MISP object repository, an
organisation's own templates). Loaded templates are kept in the store's
metadata, so the node keeps them when the folder moves or goes; a template
loaded later replaces one of the same uuid or name. Objects ingested before a
load keep the reading they had; ingesting them again reads them anew.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import orjson

from threatmesh.errors import InputError
from threatmesh.ingest.misp_templates import (ObjectTemplate, TemplateRegistry, default_registry, parse_template,
                                              read_template_dir)
from threatmesh.store.protocol import Store

META_TEMPLATES = "kb.misp_objects"


@dataclass
class TemplatesLoad:
    path: str
    loaded: int = 0
    replaced: int = 0  # loaded templates whose uuid or name the node already had (from PyMISP or an earlier load)
    stored: int = 0  # templates the node now keeps beyond PyMISP's
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"pack": "misp-objects", "path": self.path, "loaded": self.loaded, "replaced": self.replaced,
                "stored": self.stored, "errors": self.errors}


def stored_templates(store: Store) -> list[ObjectTemplate]:
    """The templates loaded into this node (not PyMISP's)."""
    raw = store.get_meta(META_TEMPLATES)
    if not raw:
        return []
    return [parse_template(item, f"store meta {META_TEMPLATES}") for item in orjson.loads(raw)]


def registry_for_store(store: Store) -> TemplateRegistry:
    """PyMISP's templates, with the ones loaded into the node over them."""
    loaded = stored_templates(store)
    base = default_registry()
    return base.merged(loaded, "node") if loaded else base


def load_misp_objects(store: Store, path: Path) -> TemplatesLoad:
    """Every `*/definition.json` under `path` into the node; unreadable templates are listed, the rest load."""
    result = TemplatesLoad(str(path))
    if not path.exists():
        raise InputError("no such file or directory", source=str(path))
    templates: list[ObjectTemplate] = []
    for item in read_template_dir(path):
        if isinstance(item, InputError):
            result.errors.append(item.describe())
        else:
            templates.append(item)
    known = registry_for_store(store)
    result.loaded = len(templates)
    result.replaced = sum(1 for t in templates if t.uuid in known.by_uuid or t.name in known.by_name)
    kept = {t.uuid: t for t in stored_templates(store)}
    for template in templates:
        for key in [k for k, t in kept.items() if t.name == template.name]:
            del kept[key]
        kept[template.uuid] = template
    store.set_meta(META_TEMPLATES, orjson.dumps([t.as_dict() for t in kept.values()]).decode())
    result.stored = len(kept)
    return result
