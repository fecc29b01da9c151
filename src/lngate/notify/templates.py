"""Customer and shop emails from Jinja2 templates (French), HTML and plain text.

Each kind has ``<kind>.subject.txt``, ``<kind>.txt`` and ``<kind>.html`` in ``templates/``.
HTML templates are autoescaped, so every customer-supplied value (name, address, email) is
escaped; undefined variables are errors, not blanks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jinja2 import Environment

TEMPLATES = Path(__file__).with_name("templates")


@dataclass(frozen=True, slots=True)
class Rendered:
    """A rendered email body."""

    subject: str
    text: str
    html: str


class UnknownTemplate(LookupError):
    """There is no template for this kind of email."""


def one_line(text: str) -> str:
    """Collapse line breaks, tabs and runs of spaces (a header must be one line)."""
    return re.sub(r"[\r\n\t\v\f ]+", " ", text).strip()


def _sats(value: int) -> str:
    from jinja2 import Undefined  # loaded already: a template is calling

    if isinstance(value, Undefined):
        str(value)  # raises UndefinedError naming the variable
    return f"{value:,}".replace(",", "\u202f")  # French thousands separator (narrow no-break space)


def _date(value: str | None) -> str:
    from jinja2 import Undefined  # loaded already: a template is calling

    if isinstance(value, Undefined):
        str(value)
    if not value:
        return ""
    return value.replace("T", " ").replace("Z", " UTC")[:23] if "T" in value else value


class EmailTemplates:
    """Renders ``(kind, payload)`` to subject, text and HTML."""

    def __init__(self, folder: Path = TEMPLATES) -> None:
        """Builds nothing yet: Jinja2 is imported with the first email rendered, so a process
        that sends none (most requests create or check an invoice) does not carry it."""
        self._folder = folder
        self._environments: tuple[Environment, Environment] | None = None

    def _html_and_text(self) -> tuple[Environment, Environment]:
        if self._environments is None:
            from jinja2 import Environment, FileSystemLoader, StrictUndefined

            def environment(autoescape: bool) -> Environment:
                env = Environment(loader=FileSystemLoader(self._folder), autoescape=autoescape,
                                  undefined=StrictUndefined, trim_blocks=True,
                                  lstrip_blocks=True, keep_trailing_newline=True)
                env.filters["sats"] = _sats
                env.filters["date"] = _date
                return env

            self._environments = (environment(autoescape=True), environment(autoescape=False))
        return self._environments

    def compile_all(self) -> int:
        """Import Jinja2 and compile every template now; returns how many. For a gateway that
        sends email, at start: the first payment's receipt then does not wait for them."""
        html_env, text_env = self._html_and_text()
        names = sorted(path.name for path in self._folder.iterdir() if path.is_file())
        for name in names:
            (html_env if name.endswith(".html") else text_env).get_template(name)
        return len(names)

    def render(self, kind: str, payload: dict[str, Any]) -> Rendered:
        """Render one email; raises :class:`UnknownTemplate` for a kind without templates."""
        from jinja2 import TemplateNotFound

        html_env, text_env = self._html_and_text()
        try:
            subject = text_env.get_template(f"{kind}.subject.txt").render(**payload)
            text = text_env.get_template(f"{kind}.txt").render(**payload)
            html = html_env.get_template(f"{kind}.html").render(**payload)
        except TemplateNotFound as exc:
            raise UnknownTemplate(kind) from exc
        return Rendered(one_line(subject), text, html)
