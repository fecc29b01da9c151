"""The pages' words: one catalogue, the same keys in every language, and language negotiation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lngate.web.i18n import CATALOGUE, DEFAULT_LANGUAGE, Translator, negotiate_language
from lngate.web import pages
from lngate.web.pages import TEMPLATES


def test_every_language_has_the_same_keys() -> None:
    """No page can show a key in one language and miss it in another."""
    keys = {language: set(words) for language, words in CATALOGUE.items()}
    assert keys["en"] == keys["fr"]


def test_every_key_named_exists_and_every_key_is_named() -> None:
    """Templates and routes only name keys of the catalogue, and it holds no dead words."""
    sources = [*Path(TEMPLATES).rglob("*.html"), *Path(pages.__file__).parent.glob("*.py")]
    named = {match for source in sources
             for match in re.findall(r"""["']((?:checkout|error|page|lang|admin)\.[a-z_]+)["']""",
                                     source.read_text())}
    named -= {name for name in named if name.endswith((".html", ".js", ".css"))}  # file names
    named.add("sats")  # through Translator.sats
    assert named == set(CATALOGUE["fr"])


@pytest.mark.parametrize(("query", "header", "expected"), [
    (None, None, "fr"),
    ("en", None, "en"),
    ("EN", "fr-FR", "en"),
    ("de", "en-US,en;q=0.9", "en"),
    (None, "en-US,en;q=0.9,fr;q=0.8", "en"),
    (None, "de-DE,fr;q=0.5,en;q=0.7", "en"),
    (None, "en;q=0.3, fr", "fr"),
    (None, "de, es", "fr"),
    (None, "en;q=0", "fr"),
    (None, "en;q=abc, fr;q=0.1", "fr"),
    (None, "*", "fr"),
])
def test_language_negotiation(query: str | None, header: str | None, expected: str) -> None:
    """?lang= wins when known; then the best known language of Accept-Language; else French."""
    assert negotiate_language(query, header) == expected


def test_default_is_french() -> None:
    """The shop's customers are French first."""
    assert DEFAULT_LANGUAGE == "fr"


def test_amounts_are_grouped_the_way_each_language_writes_them() -> None:
    """400000 sats reads 400 000 sats (narrow no-break space) in French, 400,000 in English."""
    assert Translator("fr").sats(400_000) == "400\u202f000 sats"
    assert Translator("en").sats(400_000) == "400,000 sats"
