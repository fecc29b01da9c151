"""The OpenAPI document: helpers for the routes' decorators, and the app's ``openapi()``.

The routes parse their bodies and query strings by hand (to answer the contract's exact
messages), so FastAPI cannot see them; the decorators describe them with these helpers instead:
``openapi_extra=operation(json_body(Model), query(...))`` and ``responses=errors({...})``.
:func:`install_openapi` then adds the request models' JSON Schemas (with their nested
definitions) to ``components/schemas``, and the admin bearer scheme that ``/docs`` "Authorize"
uses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from lngate.web.schemas import (
    CreateInvoiceRequest,
    CreateOrderRequest,
    Error,
    InvoiceEvent,
    LnbitsPayment,
    LoadTestReport,
    MonitorActionRequest,
)

REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    CreateInvoiceRequest, CreateOrderRequest, LnbitsPayment, MonitorActionRequest, LoadTestReport)
"""The models of request bodies."""
EVENT_MODELS: tuple[type[BaseModel], ...] = (InvoiceEvent,)
"""The models of Server-Sent Events' data."""
EXTRA_MODELS = REQUEST_MODELS + EVENT_MODELS
"""Models FastAPI does not see, added to ``components/schemas`` by :func:`install_openapi`."""
SCHEMA_REF = "#/components/schemas/{model}"
ADMIN_SCHEME = "adminBearer"
WEBHOOK_SCHEME = "lnbitsApiKey"
SECURITY_SCHEMES = {
    ADMIN_SCHEME: {"type": "http", "scheme": "bearer",
                   "description": "``Authorization: Bearer <ADMIN_TOKEN>``."},
    WEBHOOK_SCHEME: {"type": "apiKey", "in": "header", "name": "X-Api-Key",
                     "description": "``LNBITS_WEBHOOK_SECRET`` (the original shop's setup); "
                                    "LNbits itself calls the URL with ``nonce`` and ``token``."},
}

BAD_JSON = ("``invalid_json``: not JSON (malformed, NaN/Infinity, a number over 4300 digits "
            "or out of a float's range); ``json_too_deep``: nested over 32 levels (with "
            "``maxDepth``); ``invalid_unicode``: a lone surrogate (``\\ud800``) in a key or "
            "value (with ``field``); ``invalid_body``: not a JSON object")
PAYLOAD_TOO_LARGE = "``payload_too_large``: over 64 KB"
NOT_JSON = "``unsupported_media_type``: ``Content-Type`` is not ``application/json``"
RATE_LIMITED = ("``rate_limited``: too many requests from this client; ``retryAfter`` and the "
                "``Retry-After`` header say when to retry")
NO_PROVIDER = ("``no_provider_available``: no provider could issue a valid invoice; "
               "``providers`` gives each one's error code (never a fake invoice)")
ADMIN_UNAUTHORIZED = "``unauthorized``: ``Authorization: Bearer <ADMIN_TOKEN>`` missing or wrong"
ADMIN_DISABLED = "``admin_disabled``: no ``ADMIN_TOKEN`` is configured (the API is never open)"


def json_body(model: type[BaseModel], description: str | None = None) -> dict[str, Any]:
    """A required JSON request body described by ``model`` (one of :data:`REQUEST_MODELS`),
    with the model's first example for ``/docs`` "Try it out"."""
    if model not in REQUEST_MODELS:
        raise ValueError(f"{model.__name__} is not in REQUEST_MODELS")
    media: dict[str, Any] = {"schema": {"$ref": SCHEMA_REF.format(model=model.__name__)}}
    extra = model.model_config.get("json_schema_extra")
    examples = extra.get("examples") if isinstance(extra, dict) else None
    if isinstance(examples, list) and examples:
        media["example"] = examples[0]
    body: dict[str, Any] = {"required": True, "content": {"application/json": media}}
    if description:
        body["description"] = description
    return {"requestBody": body}


def event_stream(model: type[BaseModel], events: list[str], description: str) -> dict[str, Any]:
    """A ``text/event-stream`` answer whose events are named ``events`` and carry ``model`` as
    JSON ``data`` (each event described by ``itemSchema``, as FastAPI does for its own SSE)."""
    if model not in EVENT_MODELS:
        raise ValueError(f"{model.__name__} is not in EVENT_MODELS")
    event = {
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "event": {"type": "string", "enum": events},
            "data": {"type": "string", "contentMediaType": "application/json",
                     "contentSchema": {"$ref": SCHEMA_REF.format(model=model.__name__)}},
            "id": {"type": "string"},
            "retry": {"type": "integer", "minimum": 0},
        },
    }
    return {"description": description, "content": {"text/event-stream": {"itemSchema": event}}}


def _parameter(where: str, name: str, schema: dict[str, Any], description: str,
               required: bool) -> dict[str, Any]:
    return {"parameters": [{"name": name, "in": where, "required": required,
                            "schema": schema, "description": description}]}


def query(name: str, schema: dict[str, Any], description: str, *,
          required: bool = False) -> dict[str, Any]:
    """A query parameter the route reads itself."""
    return _parameter("query", name, schema, description, required)


def header(name: str, schema: dict[str, Any], description: str, *,
           required: bool = False) -> dict[str, Any]:
    """A request header the route reads itself."""
    return _parameter("header", name, schema, description, required)


def security(*schemes: str) -> dict[str, Any]:
    """The operation accepts any one of ``schemes`` (names in :data:`SECURITY_SCHEMES`)."""
    return {"security": [{scheme: []} for scheme in schemes]}


def operation(*parts: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` made of ``parts`` (their parameters are concatenated)."""
    merged: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if key in ("parameters", "security"):
                merged.setdefault(key, []).extend(value)
            else:
                merged[key] = value
    return merged


def errors(described: Mapping[int, str]) -> dict[int | str, dict[str, Any]]:
    """``responses=``: each status the route answers with an :class:`Error` body, and when."""
    return {status: {"model": Error, "description": text} for status, text in described.items()}


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` add the request models and the security schemes."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            _drop_validation_errors(document)
            components = document.setdefault("components", {})
            _add_models(components.setdefault("schemas", {}), EXTRA_MODELS)
            components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _drop_validation_errors(document: dict[str, Any]) -> None:
    """Remove FastAPI's automatic 422 answers: no route lets FastAPI validate its input (the
    few typed parameters are plain path strings), and the app answers a validation error with a
    400 ``invalid_request`` anyway."""
    for path_item in document.get("paths", {}).values():
        for op in path_item.values():
            answer = op.get("responses", {}).get("422", {})
            schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
            if schema.get("$ref", "").endswith("/HTTPValidationError"):
                del op["responses"]["422"]
    schemas = document.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)


def _add_models(schemas: dict[str, Any], models: tuple[type[BaseModel], ...]) -> None:
    for model in models:
        found = model.model_json_schema(ref_template=SCHEMA_REF)
        for name, definition in {**found.pop("$defs", {}), model.__name__: found}.items():
            if schemas.get(name, definition) != definition:
                raise ValueError(f"two different OpenAPI schemas are named {name}")
            schemas[name] = definition
