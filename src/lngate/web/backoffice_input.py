"""Reading the back office's query parameters and bodies: each one checked, a clear 400 for
anything else (an unknown or repeated parameter, a bad date, limit, cursor or enum value)."""

from __future__ import annotations

import base64
import binascii
import enum
import json
import re
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from starlette.requests import Request

from lngate.services.backoffice import DEFAULT_PAGE, MAX_PAGE
from lngate.web.errors import ApiError

E = TypeVar("E", bound=enum.Enum)
MAX_TEXT = 200
MAX_TRACKING = 100
MAX_CARRIER = 64
MIN_YEAR, MAX_YEAR = 2009, 2100
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?", re.IGNORECASE)
_TRACKING = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._/-]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ORDER_ID = re.compile(r"[A-Za-z0-9_-]{16,32}")
_CURSOR_TEXT = re.compile(r"[A-Za-z0-9_-]{1,64}")


def bad(message: str, code: str, **extra: Any) -> ApiError:
    """A 400 with this message and code."""
    return ApiError(400, message, code, **extra)


def query_params(request: Request, allowed: Collection[str]) -> dict[str, str]:
    """The query parameters, each at most once and all of them in ``allowed``; empty values
    count as absent."""
    params: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name not in allowed:
            raise bad(f"unknown parameter {name[:40]!r}", "unknown_parameter",
                      allowedParameters=sorted(allowed))
        if name in params:
            raise bad(f"parameter {name!r} is given more than once", "repeated_parameter")
        params[name] = value
    return {name: value for name, value in params.items() if value.strip() != ""}


def parse_time(name: str, value: str | None, *, end_of_day: bool = False) -> datetime | None:
    """An ISO-8601 date or date-time (UTC when it has no offset), years 2009 to 2100.

    A date alone is its midnight, or with ``end_of_day`` the next midnight (so ``to=2026-01-31``
    includes that day).
    """
    if value is None:
        return None
    text = value.strip()
    problem = bad(f"{name!r} must be an ISO-8601 date or date-time like 2026-01-31 or "
                  f"2026-01-31T12:00:00Z, got {text[:40]!r}", "invalid_date", parameter=name)
    if len(text) > 40 or not (_DATE_ONLY.fullmatch(text) or _DATE_TIME.fullmatch(text)):
        raise problem
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise problem from None
    if not MIN_YEAR <= moment.year <= MAX_YEAR:
        raise bad(f"{name!r} must be between {MIN_YEAR} and {MAX_YEAR}", "invalid_date",
                  parameter=name)
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if end_of_day and _DATE_ONLY.fullmatch(text):
        moment += timedelta(days=1)
    return moment


def parse_limit(value: str | None) -> int:
    """``limit``: a whole number from 1 to ``MAX_PAGE`` (default ``DEFAULT_PAGE``)."""
    if value is None:
        return DEFAULT_PAGE
    if not value.isdigit() or not 1 <= int(value) <= MAX_PAGE:
        raise bad(f"limit must be a whole number from 1 to {MAX_PAGE}", "invalid_limit")
    return int(value)


def parse_choice(name: str, value: str | None, choices: type[E]) -> E | None:
    """One of an enum's values, or ``None`` when absent."""
    if value is None:
        return None
    for choice in choices:
        if choice.value == value:
            return choice
    raise bad(f"{name!r} must be one of {', '.join(str(c.value) for c in choices)}",
              f"invalid_{name}", allowedValues=[c.value for c in choices])


def parse_bool(name: str, value: str | None) -> bool | None:
    """``true``/``1`` or ``false``/``0``, or ``None`` when absent."""
    if value is None:
        return None
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise bad(f"{name!r} must be true or false", f"invalid_{name}")


def parse_text(name: str, value: str | None, *, limit: int = MAX_TEXT) -> str | None:
    """Free text without control characters, at most ``limit`` characters, trimmed."""
    if value is None:
        return None
    text = value.strip()
    if len(text) > limit or _CONTROL.search(text) or not _encodable(text):
        raise bad(f"{name!r} must be text of at most {limit} characters without control "
                  "characters", f"invalid_{name}")
    return text or None


def _encodable(text: str) -> bool:
    """Whether ``text`` is valid Unicode (JSON may carry lone surrogates; databases refuse
    them)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def encode_cursor(key: tuple[Any, ...] | int) -> str:
    """An opaque cursor for a page's key."""
    parts: tuple[Any, ...] = (key,) if isinstance(key, int) else key
    values = [v.isoformat() if isinstance(v, datetime) else v for v in parts]
    return base64.urlsafe_b64encode(json.dumps(values).encode()).rstrip(b"=").decode()


def decode_cursor(value: str | None, shape: tuple[type, ...]) -> tuple[Any, ...] | None:
    """The key in a cursor made by :func:`encode_cursor`, whose values have the types in
    ``shape`` (``datetime`` from aware ISO text, ``int`` within 64 bits, ``str`` an id);
    400 for anything else."""
    if value is None:
        return None
    invalid = bad("cursor is not one this API gave (pass nextCursor back as it is)",
                  "invalid_cursor")
    if len(value) > 200:
        raise invalid
    try:
        values = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise invalid from None
    if not isinstance(values, list) or len(values) != len(shape):
        raise invalid
    key: list[Any] = []
    for item, kind in zip(values, shape, strict=True):
        if kind is datetime:
            if not isinstance(item, str):
                raise invalid
            try:
                moment = datetime.fromisoformat(item)
            except ValueError:
                raise invalid from None
            if moment.tzinfo is None:
                raise invalid
            key.append(moment)
        elif kind is int:
            if not isinstance(item, int) or isinstance(item, bool) or not 0 <= item < 2**63:
                raise invalid
            key.append(item)
        elif kind is str:
            if not isinstance(item, str) or not _CURSOR_TEXT.fullmatch(item):
                raise invalid
            key.append(item)
        else:
            raise TypeError(f"no cursor values of type {kind.__name__}")
    return tuple(key)


def order_id_or_404(order_id: str) -> str:
    """The path's order id, or a 404 when it cannot be one."""
    if not _ORDER_ID.fullmatch(order_id):
        raise ApiError(404, "Order not found", "order_not_found")
    return order_id


def body_fields(body: Any, allowed: Collection[str]) -> dict[str, Any]:
    """A JSON object (or form) with no field outside ``allowed``."""
    if not isinstance(body, dict):
        raise bad("the body must be a JSON object", "invalid_body")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise bad(f"unknown field {unknown[0][:40]!r}", "unknown_field",
                  allowedFields=sorted(allowed))
    return body


def tracking_number(value: Any) -> str:
    """A tracking number: letters and digits, then also spaces, ``. _ / -``, 100 at most."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise bad("tracking is required", "missing_tracking")
    if not isinstance(value, str):
        raise bad("tracking must be text", "invalid_tracking")
    text = value.strip()
    if len(text) > MAX_TRACKING or not _TRACKING.fullmatch(text):
        raise bad(f"tracking must be letters and digits (also spaces and . _ / -), at most "
                  f"{MAX_TRACKING} characters", "invalid_tracking")
    return text


def carrier_name(value: Any) -> str | None:
    """An optional carrier name: text of at most 64 characters without control characters."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad("carrier must be text", "invalid_carrier")
    return parse_text("carrier", value, limit=MAX_CARRIER)
