"""The revisions read from the migration scripts' source are Alembic's own, and a serving
process reads them without importing Alembic."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic.script import ScriptDirectory

from lngate.store.database import alembic_config
from lngate.store.migration_scripts import script_revisions


def test_heads_and_revisions_are_the_ones_alembic_finds() -> None:
    """Every revision Alembic knows, and its heads, with nothing more or less."""
    scripts = ScriptDirectory.from_config(alembic_config())
    revisions = script_revisions()
    assert revisions.known == {script.revision for script in scripts.walk_revisions()}
    assert revisions.heads == set(scripts.get_heads())


def test_a_merge_revision_ends_the_heads_it_merges(tmp_path: Path) -> None:
    """A revision naming two parents (a merge) leaves only itself as head."""
    scripts = {"a.py": "revision = 'a'\ndown_revision = None\n",
               "b.py": "revision = 'b'\ndown_revision = 'a'\n",
               "c.py": "revision = 'c'\ndown_revision = 'a'\n",
               "d.py": 'revision = "d"\ndown_revision = ("b", "c")\n'}
    for name, text in scripts.items():
        (tmp_path / name).write_text(text)
    revisions = script_revisions(tmp_path)
    assert revisions.known == {"a", "b", "c", "d"}
    assert revisions.heads == {"d"}


def test_the_application_and_its_schema_check_leave_alembic_unloaded() -> None:
    """Importing the ASGI application and reading the expected heads imports no Alembic
    module (it would stay in every worker's memory)."""
    code = ("import sys, lngate.web.asgi, lngate.web.app\n"
            "from lngate.store.database import migration_heads\n"
            "assert migration_heads()\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'mako')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=120)
    assert result.stdout.strip() == "[]"
