"""Provider types by name, and the parser of the ``PROVIDERS`` setting.

:data:`REGISTRY` maps a type name to its row: the spec model its connection strings are parsed
into (:mod:`lngate.provider_specs`) and the factory that builds the provider from a spec, with
its own HTTP session (from the provider module's ``make_session``, which applies the node's
TLS setting) and, for a provider with a paid stream, its cursor store. Adding a provider type
is its module, one row here, and (when its keys are new) its spec model.

``PROVIDERS`` holds entries in priority order, separated by ``|`` or new lines. An entry is a
bare ``lnbits`` or ``nwc`` (that provider as the ``LNBITS_*`` or ``NWC_URL`` variables
configure it), or a connection string of ``key=value`` pairs separated by ``;``::

    name=main;type=lnbits;server=https://lnbits.example.com;invoice_key=...
    name=node;type=clnrest;server=https://node.example.com:3010;rune=...;ca_cert=/etc/cln/ca.pem

Keys are case-insensitive, values are taken as written (spaces around them dropped; a value
cannot contain ``;``, ``|`` or a new line), a value's first ``=`` ends its key (a rune may end
in ``=``). :func:`parse_providers` reports every problem, one line each, naming the entry and
the key, never a value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from lngate.provider_specs import (
    ClnRestSpec,
    LNbitsSpec,
    LndRestSpec,
    NWCSpec,
    ProviderShorthand,
    ProviderSpec,
)
from lngate.providers.base import Provider
from lngate.providers.cursors import CursorStore, MemoryCursorStore

S = TypeVar("S", bound=ProviderSpec)
ProviderEntry = ProviderSpec | ProviderShorthand
"""An entry of ``PROVIDERS`` as parsed: a spec, or a shorthand resolved from other variables."""
ENTRY_SEPARATORS = re.compile(r"[|\r\n]")
_NAME = re.compile(r"[a-z0-9_-]{1,32}")
_SHOWABLE = re.compile(r"[a-z][a-z_-]{0,23}")
"""A word a message may repeat: letters, ``_`` and ``-`` only, short. A key or type written
wrong is shown so; text with digits or longer (a secret pasted without its key) is not."""


def _memory_cursor_store(_name: str) -> CursorStore:
    return MemoryCursorStore()


@dataclass(frozen=True, slots=True)
class BuildContext:
    """What every factory is given besides the spec."""

    timeout: float
    """Seconds allowed for one provider call (``PROVIDER_TIMEOUT_SECONDS``)."""
    cursor_store: Callable[[str], CursorStore] = field(default=_memory_cursor_store)
    """The paid stream's cursor store of the provider with this name."""


@dataclass(frozen=True, slots=True)
class ProviderType(Generic[S]):
    """A registry row: the spec model of the type and the factory building its provider."""

    spec: type[S]
    build: Callable[[S, BuildContext], Provider]

    @property
    def keys(self) -> tuple[str, ...]:
        """The keys a connection string of this type may give (``name`` and ``type`` too)."""
        return tuple(self.spec.model_fields)

    @property
    def required_keys(self) -> tuple[str, ...]:
        """The keys it must give."""
        return tuple(k for k, f in self.spec.model_fields.items() if f.is_required())


def _build_lnbits(spec: LNbitsSpec, context: BuildContext) -> Provider:
    from lngate.providers.lnbits import LNbitsProvider, make_session

    config = spec.config(timeout=context.timeout)
    return LNbitsProvider(config, make_session(context.timeout), name=spec.name)


def _build_nwc(spec: NWCSpec, context: BuildContext) -> Provider:
    from lngate.providers.nwc import NWCProvider

    return NWCProvider(spec.config(timeout=context.timeout), name=spec.name)


def _build_clnrest(spec: ClnRestSpec, context: BuildContext) -> Provider:
    from lngate.providers.clnrest import ClnRestProvider, make_session

    config = spec.config(timeout=context.timeout)
    return ClnRestProvider(config, make_session(config), name=spec.name,
                           cursor_store=context.cursor_store(spec.name))


def _build_lndrest(spec: LndRestSpec, context: BuildContext) -> Provider:
    from lngate.providers.lndrest import LndRestProvider, make_session

    config = spec.config(timeout=context.timeout)
    return LndRestProvider(config, make_session(config), name=spec.name,
                           cursor_store=context.cursor_store(spec.name))


REGISTRY: Mapping[str, ProviderType[Any]] = MappingProxyType({
    "lnbits": ProviderType(LNbitsSpec, _build_lnbits),
    "nwc": ProviderType(NWCSpec, _build_nwc),
    "clnrest": ProviderType(ClnRestSpec, _build_clnrest),
    "lndrest": ProviderType(LndRestSpec, _build_lndrest),
})
"""Provider type name -> its row. The order is the documentation's."""


def build_provider(spec: ProviderSpec, context: BuildContext) -> Provider:
    """The provider ``spec`` describes, with its own session; call it inside the running loop.

    Opens no connection (sessions connect on first use). Raises ``ValueError`` when the
    configuration cannot be built (a certificate file gone since settings were loaded).
    """
    row = REGISTRY[spec.type]
    if not isinstance(spec, row.spec):  # a spec built by hand with another type's name
        raise ValueError(f"type {spec.type} is built from a {row.spec.__name__}, not a "
                         f"{type(spec).__name__}")
    return row.build(spec, context)


class ProviderListError(ValueError):
    """``PROVIDERS`` cannot be parsed: one line per problem, none repeating a value."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def parse_providers(text: str) -> list[ProviderEntry]:
    """Parse ``PROVIDERS`` (see the module docstring) into entries in priority order.

    Raises :class:`ProviderListError` listing every problem found. Names are checked for
    uniqueness later, once shorthands are resolved.
    """
    entries: list[ProviderEntry] = []
    problems: list[str] = []
    raw_entries = [e.strip() for e in ENTRY_SEPARATORS.split(text) if e.strip()]
    for number, raw in enumerate(raw_entries, 1):
        try:
            entries.append(parse_entry(raw, number=number))
        except ProviderListError as exc:
            problems += exc.problems
    if problems:
        raise ProviderListError(problems)
    return entries


def parse_entry(raw: str, *, number: int = 1) -> ProviderEntry:
    """One entry: a shorthand name or a connection string (``ProviderListError`` if wrong)."""
    if "=" not in raw and ";" not in raw:
        if raw in ("lnbits", "nwc"):
            return ProviderShorthand.model_validate({"name": raw})
        shown = f" {raw!r}" if _SHOWABLE.fullmatch(raw) else ""
        raise ProviderListError([
            f"entry {number}: a bare name must be lnbits or nwc, not{shown or ' this'} "
            "(a connection string is name=...;type=...;key=value...)"])
    values, positions, complaints = _key_values(raw)
    type_name = values.pop("type", None)
    row = REGISTRY.get(type_name) if type_name is not None else None
    where = _label(values, number, type_name if row is not None else None)
    problems = [f"{where}: {complaint}" for complaint in complaints]
    if type_name is None:
        problems.append(f"{where}: key type is missing (one of {', '.join(REGISTRY)})")
    elif row is None:
        shown = repr(type_name) if _SHOWABLE.fullmatch(type_name) else "given"
        problems.append(f"{where}: type {shown} is unknown (one of {', '.join(REGISTRY)})")
    if row is not None:
        allowed = [k for k in row.keys if k != "type"]
        for key in [k for k in values if k not in allowed]:
            problems.append(f"{where}: {_key_text(key, positions[key])} is not a key of type "
                            f"{type_name} "
                            f"(keys: {', '.join(allowed)})")
            del values[key]
        for key in row.required_keys:
            if key not in values and key != "type":
                problems.append(f"{where}: key {key} is missing")
    if row is None or type_name is None:
        raise ProviderListError(problems)
    try:  # checked even after a problem above, so that one run reports every problem
        spec = row.spec.model_validate({**values, "type": type_name})
    except ValidationError as exc:
        problems += [f"{where}: {_problem(error)}" for error in
                     exc.errors(include_input=False, include_url=False)
                     if error["type"] != "missing"]  # a missing key is reported above
    if problems:
        raise ProviderListError(problems)
    return spec


def _key_values(raw: str) -> tuple[dict[str, str], dict[str, int], list[str]]:
    """The entry's ``key=value`` pairs (keys lower-cased), the part each key was in, and the
    problems found splitting it."""
    values: dict[str, str] = {}
    positions: dict[str, int] = {}
    problems: list[str] = []
    for position, segment in enumerate(raw.split(";"), 1):
        if not segment.strip():
            continue  # a trailing or doubled ';'
        key, equals, value = segment.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not equals or not key:
            problems.append(f"part {position} is not key=value")
        elif key in values:
            problems.append(f"{_key_text(key, position)} is given twice")
        elif not value:
            problems.append(f"{_key_text(key, position)} has an empty value")
        else:
            values[key] = value
            positions[key] = position
    return values, positions, problems


def _label(values: dict[str, str], number: int, type_name: str | None = None) -> str:
    """How a message names the entry: ``provider "main" (lnbits)``, else ``entry 2``."""
    name = values.get("name")
    if name is None or not _NAME.fullmatch(name):
        return f"entry {number}" + (f" ({type_name})" if type_name else "")
    return f"provider {name!r}" + (f" ({type_name})" if type_name else "")


def _key_text(key: str, position: int) -> str:
    """``key 'rune'``, or, for a key that may be a pasted secret, ``the key of part 4``."""
    return f"key {key!r}" if _SHOWABLE.fullmatch(key) else f"the key of part {position}"


def _problem(error: Any) -> str:
    """A pydantic error as ``key: message`` (the message of a check on the whole entry alone)."""
    message = str(error["msg"]).removeprefix("Value error, ")
    key = ".".join(str(part) for part in error["loc"])
    return f"{key}: {message}" if key else message
