"""The hot-path dispatcher answers its routes from their endpoints and passes the rest on."""

from __future__ import annotations

import httpx
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from lngate.web.app import HOT_PATHS, create_app
from lngate.web.errors import ApiError
from lngate.web.hot_paths import HotPaths, hot_routes
from lngate.web.responses import JsonResponse
from tests.web.conftest import make_settings


async def _create(request: Request) -> JsonResponse:
    body = await request.json()
    if body.get("fail"):
        raise ApiError(400, "Montant invalide", "invalid_amount")
    return JsonResponse({"seen": body, "route": request.scope["route"].path})


async def _downstream(scope: Scope, receive: Receive, send: Send) -> None:
    await JsonResponse({"downstream": scope["method"]}, status_code=405)(scope, receive, send)


def _client() -> httpx.AsyncClient:
    routes = hot_routes([APIRoute("/api/create-invoice", _create, methods=["POST"])],
                        ("/api/create-invoice",))
    app = HotPaths(_downstream, routes=routes)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_its_route_is_answered_by_the_endpoint_with_the_route_in_scope() -> None:
    """A POST to the hot path reaches the endpoint, which sees the route (for the metrics)."""
    async with _client() as client:
        answer = await client.post("/api/create-invoice", json={"amount": 21})
    assert answer.status_code == 200
    assert answer.json() == {"seen": {"amount": 21}, "route": "/api/create-invoice"}


async def test_an_api_error_is_answered_as_the_app_answers_it() -> None:
    """An ApiError from the endpoint becomes its JSON answer, status and code."""
    async with _client() as client:
        answer = await client.post("/api/create-invoice", json={"fail": True})
    assert answer.status_code == 400
    assert answer.json() == {"error": "Montant invalide", "code": "invalid_amount"}


async def test_other_methods_and_paths_go_to_the_app() -> None:
    """Another method on the hot path, or another path, is passed to the wrapped app."""
    async with _client() as client:
        other_method = await client.get("/api/create-invoice")
        other_path = await client.post("/api/orders", json={})
    assert other_method.json() == {"downstream": "GET"}
    assert other_path.json() == {"downstream": "POST"}


def test_the_app_dispatches_create_check_and_webhook_past_fastapi(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The app's dispatcher holds the create, check and payment webhook routes themselves
    (FastAPI lists an included router as one opaque entry among the app's routes, which must
    not hide them)."""
    app = create_app(make_settings(tmp_path))
    dispatcher = next(m for m in app.user_middleware if m.cls is HotPaths)
    served = {(method, route.path) for route in dispatcher.kwargs["routes"]
              for method in route.methods}
    assert served >= {("POST", "/api/create-invoice"), ("GET", "/api/check-invoice"),
                      ("POST", "/api/webhook/lnbits-payment")}
    assert {path for _method, path in served} == set(HOT_PATHS)


async def _events(payment_hash: str, request: Request) -> JsonResponse:
    return JsonResponse({"hash": payment_hash, "route": request.scope["route"].path})


async def test_a_path_with_a_parameter_is_answered_with_it() -> None:
    """A templated hot path passes its segment to the endpoint by name; a path that Starlette's
    template would not match (an empty, a longer or a slash-ended segment) goes to the app."""
    routes = hot_routes([APIRoute("/api/invoices/{payment_hash}/events", _events,
                                  methods=["GET"])], ("/api/invoices/{payment_hash}/events",))
    app = HotPaths(_downstream, routes=routes)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://t") as client:
        answer = await client.get("/api/invoices/abc/events")
        others = [await client.get(path) for path in (
            "/api/invoices//events", "/api/invoices/a/b/events", "/api/invoices/abc/events/",
            "/api/invoices/abc")]
        posted = await client.post("/api/invoices/abc/events")
    assert answer.json() == {"hash": "abc", "route": "/api/invoices/{payment_hash}/events"}
    assert [o.json() for o in others] == [{"downstream": "GET"}] * 4
    assert posted.json() == {"downstream": "POST"}
