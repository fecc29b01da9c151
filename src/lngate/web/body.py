"""Reading a JSON request body safely: content type, size cap, strict parsing."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import ClientDisconnect, Request

from lngate.web.errors import ApiError

MAX_BODY_BYTES = 64 * 1024


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
        return json.loads(b"".join(chunks), parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise ApiError(400, "JSON invalide", "invalid_json") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")
