"""The revisions of the packaged migration scripts, read without importing Alembic.

A serving process checks the stored revisions against the scripts' heads at start-up and on
readiness probes, but never migrates (``lngate serve`` migrates once, before the workers start).
Alembic's script directory, its configuration and the scripts themselves would cost a worker
about 7 MiB of memory for two sets of names, so this module reads each script's ``revision``
and ``down_revision`` assignments from its source instead. Alembic stays what applies the
migrations (store/database.py imports it only there).
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from pathlib import Path

VERSIONS = Path(__file__).with_name("migrations") / "versions"


@dataclass(frozen=True, slots=True)
class Revisions:
    """Every revision of the scripts, and the heads (those no other revision builds on)."""

    known: frozenset[str]
    heads: frozenset[str]


def _assigned(tree: ast.Module, name: str) -> object:
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id == name):
            return ast.literal_eval(node.value)
    raise ValueError(f"no {name} assignment")


def _parents(value: object) -> set[str]:
    if value is None:
        return set()
    if isinstance(value, str):
        return {value}
    if isinstance(value, (tuple, list)) and all(isinstance(v, str) for v in value):
        return set(value)
    raise ValueError(f"down_revision must be None, a string or a tuple of strings: {value!r}")


@functools.cache
def script_revisions(folder: Path = VERSIONS) -> Revisions:
    """The revisions of the scripts in ``folder`` (read once per process)."""
    known: set[str] = set()
    parents: set[str] = set()
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        try:
            revision = _assigned(tree, "revision")
            parents |= _parents(_assigned(tree, "down_revision"))
        except ValueError as exc:
            raise ValueError(f"{path.name}: {exc}") from None
        if not isinstance(revision, str):
            raise ValueError(f"{path.name}: revision must be a string")
        known.add(revision)
    return Revisions(known=frozenset(known), heads=frozenset(known - parents))
