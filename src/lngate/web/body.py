"""Reading a JSON request body safely: content type, size cap, strict parsing.

Strict means: no ``NaN``/``Infinity``, nor a number too large for a float (``1e400``), at most
:data:`MAX_DEPTH` levels of nesting, and no lone surrogate (``"\\ud800"``): JSON's escapes can
name one, but it is not a character; it cannot be encoded, stored in PostgreSQL or put in an
email. A body holding one, in any key or value, is refused here with a 400 naming the place.
Every JSON route reads its body here, so these rules hold for all of them at once.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from starlette.requests import ClientDisconnect, Request

from lngate.web.errors import ApiError

MAX_BODY_BYTES = 64 * 1024
MAX_PLACE = 200
"""Characters of a body's place (``customer.name``) quoted back in an error."""
MAX_DEPTH = 32
"""Nesting levels of objects and arrays a body may have: no route needs more, and a body nested
almost as deep as the parser allows breaks the first code that walks it again (a 500)."""


async def read_json(request: Request, *, limit: int = MAX_BODY_BYTES) -> Any:
    """The parsed JSON body, or an :class:`ApiError` (415, 413 or 400) saying what is wrong."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise ApiError(415, "Content-Type doit être application/json", "unsupported_media_type")
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise ApiError(413, "Requête trop volumineuse (64 Ko au plus)", "payload_too_large")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, "Requête trop volumineuse (64 Ko au plus)",
                               "payload_too_large")
            chunks.append(chunk)
    except ClientDisconnect:  # nobody is left to read the answer; not a server error
        raise ApiError(400, "Requête interrompue", "client_disconnected") from None
    try:
        body = json.loads(b"".join(chunks), parse_constant=_refuse_constant,
                          parse_float=_finite_float)
    except RecursionError:  # deeper than the parser goes, which depends on the stack in use
        raise _too_deep() from None
    except ValueError:
        raise ApiError(400, "JSON invalide", "invalid_json") from None
    if nesting_exceeds(body, MAX_DEPTH):
        raise _too_deep()
    place = text_matching_at(body, LONE_SURROGATE)
    if place is not None:
        place = place[:MAX_PLACE]
        raise ApiError(400, f"Texte invalide dans {place} : caractère Unicode isolé "
                       "(\\uD800 à \\uDFFF) non autorisé", "invalid_unicode", field=place)
    return body


def _too_deep() -> ApiError:
    return ApiError(400, f"JSON trop imbriqué ({MAX_DEPTH} niveaux au plus)", "json_too_deep",
                    maxDepth=MAX_DEPTH)


LONE_SURROGATE = re.compile("[\ud800-\udfff]")
"""A surrogate code point; ``json`` pairs escaped ones into one character, so one left is alone."""


def nesting_exceeds(value: Any, limit: int) -> bool:
    """Whether objects and arrays in ``value`` nest more than ``limit`` levels (iteratively)."""
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth >= limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return False


def text_matching_at(value: Any, pattern: re.Pattern[str]) -> str | None:
    """Where a string of ``value`` (a key or a value) matches ``pattern``, or ``None``.

    The place reads like ``customer.name``, ``metadata.tags[2]`` or ``metadata (une clé)``;
    ``le corps`` is the body itself. Iterative, since a body may be nested as deep as the parser
    allowed; a dict's keys are checked before its values, so a place never quotes a matching key.
    """
    pending: list[tuple[Any, str]] = [(value, "")]
    while pending:
        item, path = pending.pop()
        if isinstance(item, str):
            if pattern.search(item):
                return path or "le corps"
        elif isinstance(item, dict):
            if any(pattern.search(key) for key in item):
                return f"{path or 'le corps'} (une clé)"
            pending.extend((v, f"{path}.{k}" if path else k) for k, v in item.items())
        elif isinstance(item, list):
            pending.extend((v, f"{path}[{i}]") for i, v in enumerate(item))
    return None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    # ``1e400`` parses to infinity, which no JSON encoder writes back (PostgreSQL refuses the
    # "Infinity" it becomes): refused like the NaN/Infinity constants.
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is out of range")
    return value
