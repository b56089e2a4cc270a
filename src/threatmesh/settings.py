"""Settings: one object built at start-up and passed down; no module-level state.

Sources, later ones winning: defaults, the node's `config.json`, the environment
(injected as a mapping so tests pass their own), then explicit CLI options.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping

from threatmesh.errors import ConfigError

CONFIG_FILE = "config.json"
DB_FILE = "threatmesh.db"


@dataclass(frozen=True, slots=True)
class Settings:
    home: Path
    host: str = "127.0.0.1"
    port: int = 8470
    # TAXII: the most a client may send in one request (advertised as max_content_length).
    max_content_length: int = 64 * 1024 * 1024
    # Largest page a TAXII client gets, whatever `limit` it asks for.
    page_size_max: int = 10_000
    page_size_default: int = 1_000
    # The TLP assumed for objects that carry none, when deciding what may leave.
    default_tlp: str = "amber"
    # Plain HTTP is allowed on loopback only unless the operator opts in.
    allow_insecure_http: bool = False
    node_name: str = "threatmesh node"
    # Redaction before anything leaves (share/redact.py): on unless the operator turns it off.
    redact: bool = True
    # Host names in these domains, and addresses in these CIDR ranges, are the node's own
    # network: redacted from the free text of what leaves. Lists in config.json.
    internal_domains: tuple[str, ...] = ()
    internal_networks: tuple[str, ...] = ()
    # Share sightings with where_sighted_refs replaced by a sector-and-country identity.
    anonymise_sightings: bool = False
    node_sector: str = ""  # STIX industry-sector-ov, e.g. 'healthcare'
    node_country: str = ""  # ISO 3166-1 alpha-2, e.g. 'US'

    @property
    def db_path(self) -> Path:
        return self.home / DB_FILE

    @property
    def config_path(self) -> Path:
        return self.home / CONFIG_FILE


def resolve_home(option: str | Path | None, environ: Mapping[str, str]) -> Path:
    """--home wins, then THREATMESH_HOME, then ./.threatmesh."""
    if option:
        return Path(option).expanduser().resolve()
    if environ.get("THREATMESH_HOME"):
        return Path(environ["THREATMESH_HOME"]).expanduser().resolve()
    return (Path.cwd() / ".threatmesh").resolve()


_ENV_KEYS = {
    "THREATMESH_HOST": ("host", str),
    "THREATMESH_PORT": ("port", int),
    "THREATMESH_DEFAULT_TLP": ("default_tlp", str),
}


def load_settings(home: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings of the node in `home` (defaults when it has no config file yet)."""
    environ = os.environ if environ is None else environ
    settings = Settings(home=home)
    known = {f.name for f in fields(Settings)} - {"home"}
    if settings.config_path.exists():
        try:
            stored: dict[str, Any] = json.loads(settings.config_path.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{settings.config_path}: cannot read config: {exc}") from exc
        unknown = set(stored) - known
        if unknown:
            raise ConfigError(f"{settings.config_path}: unknown settings {sorted(unknown)}")
        settings = replace(settings, **stored)
    for key, (name, kind) in _ENV_KEYS.items():
        if key in environ:
            try:
                settings = replace(settings, **{name: kind(environ[key])})
            except ValueError as exc:
                raise ConfigError(f"{key}: {exc}") from exc
    return settings


def save_settings(settings: Settings) -> None:
    """Write the settings that differ from the defaults into the node's config file."""
    defaults = Settings(home=settings.home)
    data = {
        f.name: getattr(settings, f.name)
        for f in fields(Settings)
        if f.name != "home" and getattr(settings, f.name) != getattr(defaults, f.name)
    }
    settings.config_path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", "utf-8")
