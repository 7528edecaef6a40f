"""The SQLAlchemy session is private to storage/: services, credentials and web call named query
methods of the aggregates, and never build SQL themselves."""

from __future__ import annotations

import ast
from pathlib import Path

from sqlalchemy.orm import Session

from gitward.storage.store import Store

SRC = Path(__file__).resolve().parents[2] / "src" / "gitward"
#: Nothing outside storage/ is excused (the guessing-protection counters, once the exception,
#: are storage/throttle.py now).
OUTSIDE_UNIT_OF_WORK: set[Path] = set()
SQL_BUILDERS = {"select", "update", "delete", "insert", "text", "func", "bindparam"}


def test_a_store_has_no_public_session() -> None:
    store = Store(Session())
    assert not hasattr(store, "session")
    for aggregate in (store.accounts, store.credentials, store.repos, store.oauth, store.audit):
        assert not hasattr(aggregate, "session")


def _modules(*packages: str) -> list[Path]:
    return [path for package in packages for path in sorted((SRC / package).rglob("*.py"))]


def test_services_credentials_and_web_build_no_sql() -> None:
    offenders: list[str] = []
    for path in _modules("services", "credentials", "web"):
        if path in OUTSIDE_UNIT_OF_WORK:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
                built = {alias.name for alias in node.names} & SQL_BUILDERS
                if built:
                    offenders.append(f"{path.relative_to(SRC)} imports {sorted(built)}")
            if isinstance(node, ast.Attribute) and node.attr in ("session", "_session", "_unit"):
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno} uses .{node.attr}")
            if (
                isinstance(node, ast.Attribute)
                and node.attr in ("open", "opened")
                and ast.unparse(node.value).endswith("store")
            ):
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno} opens the session")
    assert offenders == []
