"""The one exception tree of threatmesh.

    ThreatmeshError
    ├── ConfigError            settings or node home are missing or wrong
    │   └── NodeExists         `init` would overwrite an existing node
    ├── InputError             input that cannot be read at all (carries source, line, column, offset)
    │   └── InvalidObject      one STIX object that is rejected (carries object id and index)
    ├── StoreError             the store cannot do what was asked
    │   ├── NotFound           an id, collection or account that does not exist
    │   └── Conflict           a write that contradicts what is stored
    └── AuthError              missing or wrong credentials, or missing rights

Errors carry structured fields; HTTP status codes are chosen in the web layer
alone, and the CLI turns any of them into one line on stderr.
"""

from __future__ import annotations


class ThreatmeshError(Exception):
    """Base of every error threatmesh raises on purpose."""


class ConfigError(ThreatmeshError):
    """The node home or a setting is missing or invalid."""


class NodeExists(ConfigError):
    """A node already lives in the home that `init` was pointed at."""


class InputError(ThreatmeshError):
    """Input that cannot be read: bad encoding, broken JSON, not STIX."""

    def __init__(
        self,
        reason: str,
        *,
        source: str | None = None,
        line: int | None = None,
        column: int | None = None,
        offset: int | None = None,
    ) -> None:
        self.reason = reason
        self.source = source
        self.line = line
        self.column = column
        self.offset = offset
        super().__init__(self.describe())

    def location(self) -> str:
        parts = [self.source or "<input>"]
        if self.line is not None:
            parts.append(f"line {self.line}")
            if self.column is not None:
                parts.append(f"column {self.column}")
        elif self.offset is not None:
            parts.append(f"byte {self.offset}")
        return ", ".join(parts)

    def describe(self) -> str:
        return f"{self.location()}: {self.reason}"


class InvalidObject(InputError):
    """One STIX object that is rejected; the rest of its batch goes on."""

    def __init__(
        self,
        reason: str,
        *,
        object_id: str | None = None,
        index: int | None = None,
        source: str | None = None,
        line: int | None = None,
    ) -> None:
        self.object_id = object_id
        self.index = index
        super().__init__(reason, source=source, line=line)

    def location(self) -> str:
        parts = [self.source or "<input>"]
        if self.index is not None:
            parts.append(f"objects[{self.index}]")
        if self.line is not None:
            parts.append(f"line {self.line}")
        if self.object_id:
            parts.append(self.object_id)
        return ", ".join(parts)


class StoreError(ThreatmeshError):
    """The store cannot do what was asked."""


class NotFound(StoreError):
    """An object, collection or account that does not exist."""


class Conflict(StoreError):
    """A write that contradicts what is already stored."""


class AuthError(ThreatmeshError):
    """Missing or wrong credentials, or an account without the right."""


class BadParameter(InputError):
    """A request parameter (a TAXII query parameter, say) that is malformed.

    `param` names the parameter exactly as the client sent it (`match[version]`,
    `added_after`, `next`), so the answer can tell the client which one to fix.
    """

    def __init__(self, param: str, reason: str) -> None:
        self.param = param
        super().__init__(reason, source=f"parameter {param}")
