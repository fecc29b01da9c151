"""Every setting is documented in docs/configuration.md and shown in .env.example."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import AliasChoices

from lngate.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def variable_names() -> list[str]:
    names = []
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names.append(str(alias.choices[0]) if isinstance(alias, AliasChoices)
                     else str(alias or name.upper()))
    return names


@pytest.mark.parametrize("document", ["docs/configuration.md", ".env.example"])
def test_every_setting_is_documented(document: str) -> None:
    """Each variable Settings reads appears in the configuration guide and the example file."""
    text = (ROOT / document).read_text()
    missing = [name for name in variable_names() if name not in text]
    assert not missing, f"undocumented in {document}: {missing}"
