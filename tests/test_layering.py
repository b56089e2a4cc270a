"""Dependencies point inward: the pure core imports no web framework, HTTP client or database driver."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "threatmesh"
CORE = ["stix", "share/policy.py", "share/redact.py", "share/signing.py", "extract",
        "match/protocol.py", "match/keys.py", "match/index.py", "match/engine.py"]
FORBIDDEN = {"sqlite3", "psycopg", "starlette", "uvicorn", "httpx", "requests", "socket", "taxii2client", "urllib3"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_imports_nothing_from_the_outer_layers() -> None:
    files = [p for part in CORE for p in ([SRC / part] if part.endswith(".py") else (SRC / part).rglob("*.py"))]
    assert len(files) >= 3
    for path in files:
        bad = _imports(path) & FORBIDDEN
        assert not bad, f"{path.relative_to(SRC)} imports {sorted(bad)}"
        source = path.read_text("utf-8")
        for outer in ("threatmesh.store", "threatmesh.web", "threatmesh.cli", "threatmesh.ingest"):
            assert outer not in source, f"{path.relative_to(SRC)} depends on {outer}"
