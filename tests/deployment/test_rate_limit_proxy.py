"""Rate limits behind nginx: they apply to the address nginx saw (X-Forwarded-For appended by
nginx, TRUSTED_PROXIES=127.0.0.1), a client cannot choose its own key by writing
X-Forwarded-For, and the limit holds across all the instances, not per instance."""

from __future__ import annotations

import random

import pytest

from tests.deployment.conftest import RATE_LIMIT, Deployment
from tests.deployment.nginx import Nginx

pytestmark = [pytest.mark.nginx, pytest.mark.postgres]
BODY = {"amount": 21, "description": "rate"}


def fresh_address() -> str:
    """A loopback address no other test (or earlier session within the minute) used."""
    return f"127.{random.randint(1, 250)}.{random.randint(1, 250)}.{random.randint(2, 250)}"


async def test_the_limit_applies_to_the_address_nginx_saw(
        demo_deployment: Deployment, single_instance_nginx: Nginx) -> None:
    """Each client address gets its own RATE_LIMIT creates a minute through nginx: one client
    past its limit gets 429 while another address is still served."""
    first, second = fresh_address(), fresh_address()
    async with demo_deployment.client(first, nginx=single_instance_nginx) as http:
        statuses = [(await http.post("/api/create-invoice", json=BODY)).status_code
                    for _ in range(RATE_LIMIT + 1)]
    assert statuses == [200] * RATE_LIMIT + [429]
    async with demo_deployment.client(second, nginx=single_instance_nginx) as http:
        assert (await http.post("/api/create-invoice", json=BODY)).status_code == 200


async def test_a_forged_x_forwarded_for_does_not_escape_the_limit(
        demo_deployment: Deployment, single_instance_nginx: Nginx) -> None:
    """A client that sends its own X-Forwarded-For (a new address each time, several header
    lines, even a trusted proxy's address) is still counted under its real address."""
    source = fresh_address()
    forged = [
        [("X-Forwarded-For", f"198.51.100.{n}")] for n in range(3)
    ] + [
        [("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-For", "127.0.0.1")],
        [("X-Forwarded-For", "127.0.0.1, 203.0.113.10")],
        [("X-Forwarded-For", "203.0.113.11, 127.0.0.1"), ("X-Forwarded-For", "10.0.0.1")],
    ]
    async with demo_deployment.client(source, nginx=single_instance_nginx) as http:
        statuses = [(await http.post("/api/create-invoice", json=BODY, headers=headers))
                    .status_code for headers in forged]
    assert statuses == [200] * RATE_LIMIT + [429] * (len(forged) - RATE_LIMIT)


async def test_the_limit_is_shared_by_every_instance(demo_deployment: Deployment) -> None:
    """Behind nginx's round robin over three instances (no Redis), a client still gets
    RATE_LIMIT creates a minute in all, not RATE_LIMIT per instance."""
    before = len(demo_deployment.nginx.access_entries("/api/create-invoice"))
    async with demo_deployment.client(fresh_address()) as http:
        statuses = [(await http.post("/api/create-invoice", json=BODY)).status_code
                    for _ in range(3 * RATE_LIMIT)]
    assert statuses.count(200) == RATE_LIMIT, statuses
    logged = await demo_deployment.nginx.logged("/api/create-invoice", before + len(statuses))
    tried = logged[-len(statuses):]
    assert len({entry["up"] for entry in tried}) == 3  # every instance answered some
