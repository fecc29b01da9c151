"""A gateway on NWC (real relay and wallet service) settles an order from the wallet's
payment_received notification alone: the paid-stream listener is started with the app."""

from __future__ import annotations

import asyncio

import pytest

from tests.peers.nwc_peer import NWCPeer
from tests.web.payments import order_body

pytestmark = pytest.mark.nwc


async def test_gateway_listens_to_nwc_notifications(gateway_factory, nwc_peer: NWCPeer) -> None:  # type: ignore[no-untyped-def]
    """A gateway on NWC starts the paid-stream listener: a notification alone settles an order."""
    async with gateway_factory(nwc_url=nwc_peer.uri, lightning_test_mode=False,
                               reconcile_interval_seconds=3600) as http:
        await asyncio.sleep(1.0)  # the listener subscribes
        created = await http.post("/api/orders", json=order_body("dazpay", amount=50))
        assert created.status_code == 201, created.text
        await asyncio.to_thread(nwc_peer.settle, created.json()["invoice"]["payment_hash"])
        for _ in range(200):
            order = (await http.get(f"/api/orders/{created.json()['order']['id']}")).json()
            if order["order"]["status"] == "paid":
                break
            await asyncio.sleep(0.05)
        assert order["order"]["status"] == "paid"
