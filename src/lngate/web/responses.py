"""The JSON response class of every route (orjson; FastAPI's ORJSONResponse is deprecated).

A :class:`~starlette.responses.JSONResponse` subclass, so FastAPI documents each route's
``response_model`` under ``application/json`` in the OpenAPI document.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse


class JsonResponse(JSONResponse):
    """A JSON response rendered with orjson."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
