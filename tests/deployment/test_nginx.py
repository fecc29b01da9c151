"""The shipped nginx configuration (deploy/nginx/lngate.conf), run by nginx in front of real
gateways: it loads, streams Server-Sent Events, enforces the 64 KB body limit with the gateway's
JSON, re-sends to another instance only what cannot have been processed, and keeps the webhook
token and the metrics to itself."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from tests.deployment.conftest import Deployment
from tests.deployment.nginx import TEMPLATE, Nginx, Rendering, free_port, render

pytestmark = [pytest.mark.nginx, pytest.mark.postgres]


def test_the_shipped_configuration_loads_and_only_marked_lines_are_rendered(
        nginx_available: str, tmp_path: Path) -> None:
    """`nginx -t` accepts the rendered template, and rendering changes only the lines marked
    `# rendered:` (what is tested is what is shipped)."""
    nginx = Nginx(tmp_path, [free_port(), free_port(), free_port()])
    assert "test is successful" in nginx.test_config()
    shipped = TEMPLATE.read_text().splitlines()
    rendered = (tmp_path / "lngate.conf").read_text().splitlines()
    kept = [line for line in shipped if "# rendered:" not in line]
    assert [line for line in rendered if line in kept] == kept
    assert len(rendered) == len(shipped)  # three instance lines for three instances
    text = "\n".join(rendered)
    assert "proxy_next_upstream error timeout;" in text and "non_idempotent" not in \
        text.split("proxy_next_upstream ")[1].split(";")[0]


def test_rendering_refuses_a_template_without_its_marks() -> None:
    """A template that lost a `# rendered:` mark is refused, not half rendered."""
    template = TEMPLATE.read_text().replace("# rendered: key", "")
    with pytest.raises(Exception, match="key"):
        render(template, Rendering([1], 2, 3, Path("c"), Path("k"), Path("l")))


async def test_server_sent_events_stream_through_nginx(demo_deployment: Deployment) -> None:
    """An invoice's event stream through nginx delivers the pending status at once and the
    settled status as soon as another instance settles the invoice, then ends."""
    instance = demo_deployment.cluster.instances[1]
    async with httpx.AsyncClient(base_url=instance.url, timeout=10) as direct, \
            demo_deployment.client("127.0.0.21") as http:
        created = await direct.post("/api/create-invoice",
                                    json={"amount": 21, "description": "sse"})
        assert created.status_code == 200, created.text
        payment_hash = created.json()["invoice"]["payment_hash"]
        async with http.stream("GET", f"/api/invoices/{payment_hash}/events") as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            chunks = stream.aiter_text()
            first = await asyncio.wait_for(anext(chunks), 3)
            assert '"status":"pending"' in first
            assert (await direct.post(f"/api/demo/pay/{payment_hash}")).status_code == 200
            check = await direct.get("/api/check-invoice", params={"id": payment_hash})
            assert check.json() == {"status": "settled"}
            rest = ""
            async with asyncio.timeout(5):
                async for chunk in chunks:
                    rest += chunk
        assert '"status":"settled"' in rest


async def test_a_body_over_64_kb_gets_the_gateway_json_413_from_nginx(
        demo_deployment: Deployment) -> None:
    """A 64 KB + 1 byte body is refused by nginx with the gateway's own 413 JSON, without
    reaching an instance; exactly 64 KB passes to the gateway (which judges the content)."""
    head, tail = b'{"amount": 21, "description": "x", "metadata": {"pad": "', b'"}}'
    exact = head + b"a" * (64 * 1024 - len(head) - len(tail)) + tail
    before = len(demo_deployment.nginx.access_entries("/api/create-invoice"))
    async with demo_deployment.client("127.0.0.22") as http:
        headers = {"Content-Type": "application/json"}
        over = await http.post("/api/create-invoice", content=exact + b" ", headers=headers)
        assert over.status_code == 413
        assert over.json() == {"error": "Requête trop volumineuse (64 Ko au plus)",
                               "code": "payload_too_large"}
        at_limit = await http.post("/api/create-invoice", content=exact, headers=headers)
        assert at_limit.status_code == 400
        assert at_limit.json()["code"] == "metadata_too_large"
    lines = await demo_deployment.nginx.logged("/api/create-invoice", before + 2)
    assert [(m["status"], m["up"] == "-") for m in lines[-2:]] == [("413", True), ("400", False)]


async def test_webhook_token_and_metrics_stay_private(demo_deployment: Deployment) -> None:
    """The access log leaves out query strings (the webhook token), `/metrics` is not served
    through nginx (Prometheus scrapes each instance), and plain HTTP redirects to HTTPS."""
    async with demo_deployment.client("127.0.0.23") as http:
        await http.post("/api/webhook/lnbits-payment?nonce=n0nce&token=s3cret-t0ken",
                        content=b'"{}"', headers={"Content-Type": "application/json"})
        assert (await http.get("/metrics")).status_code == 404
    instance = demo_deployment.cluster.instances[0]
    assert httpx.get(instance.url + "/metrics").status_code == 200
    plain = httpx.get(f"http://127.0.0.1:{demo_deployment.nginx.http_port}/api/catalog")
    assert plain.status_code == 301
    assert plain.headers["location"].startswith("https://")
    log = demo_deployment.nginx.access_log.read_text()
    assert "/api/webhook/lnbits-payment" in log and "s3cret-t0ken" not in log


class BlackHole:
    """An upstream that reads a request, then drops the connection without an answer: an
    instance killed while processing it."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.transport.abort()
            return
        self.requests.append(head)
        writer.transport.abort()  # a reset, as from a process that died

    @asynccontextmanager
    async def running(self) -> AsyncIterator[BlackHole]:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            self._server.close()


async def _until_it_hits(http: httpx.AsyncClient, send: object, hole: BlackHole,
                         ) -> tuple[httpx.Response, int]:
    """Send requests (round robin) until one reached the black hole; that one's answer, and
    how many were sent."""
    for sent in range(1, 5):
        before = len(hole.requests)
        answer = await send()  # type: ignore[operator]
        if len(hole.requests) > before:
            return answer, sent
    raise AssertionError("no request reached the black hole")


async def test_a_post_in_flight_is_not_sent_again_but_a_get_is(
        demo_deployment: Deployment, tmp_path: Path) -> None:
    """A POST whose instance dies while processing it is answered 502 (nginx's JSON) and sent
    to no other instance: it may have been processed. A GET in the same case is re-sent to
    another instance, and the client never sees the failure."""
    real = demo_deployment.cluster.instances[0].port
    async with BlackHole().running() as hole:
        with Nginx(tmp_path / "post", [hole.port, real]) as nginx:
            async with httpx.AsyncClient(base_url=nginx.url, verify=nginx.client_ssl(),
                                         timeout=10) as http:
                posted, sent = await _until_it_hits(http, lambda: http.post(
                    "/api/catalog", json={}), hole)
                assert posted.status_code == 502
                assert posted.json()["code"] == "bad_gateway"
            assert hole.requests[-1].startswith(b"POST ")
            assert (await nginx.logged("/api/catalog", sent))[-1]["up"] == \
                f"127.0.0.1:{hole.port}"
        with Nginx(tmp_path / "get", [hole.port, real]) as nginx:
            async with httpx.AsyncClient(base_url=nginx.url, verify=nginx.client_ssl(),
                                         timeout=10) as http:
                got, sent = await _until_it_hits(http, lambda: http.get("/api/catalog"), hole)
                assert got.status_code == 200
            assert hole.requests[-1].startswith(b"GET ")
            assert (await nginx.logged("/api/catalog", sent))[-1]["up"] == \
                f"127.0.0.1:{hole.port}, 127.0.0.1:{real}"


async def test_a_post_to_a_stopped_instance_goes_to_another(
        demo_deployment: Deployment, tmp_path: Path) -> None:
    """A POST to an instance that is down (connection refused: nothing was sent) is passed to
    the next instance: a killed instance costs clients only its in-flight requests."""
    real = demo_deployment.cluster.instances[0].port
    dead = free_port()
    with Nginx(tmp_path, [dead, real]) as nginx:
        async with httpx.AsyncClient(base_url=nginx.url, verify=nginx.client_ssl(),
                                     timeout=10) as http:
            answers = [await http.post("/api/catalog", json={}) for _ in range(3)]
        assert {a.status_code for a in answers} == {405}  # the gateway's answer, every time
        ups = [m["up"] for m in await nginx.logged("/api/catalog", len(answers))]
        assert f"127.0.0.1:{dead}, 127.0.0.1:{real}" in ups
