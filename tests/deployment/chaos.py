"""The chaos scenario: orders paid through a real LNbits while instances die and LNbits restarts.

Used by ``tests/deployment/test_chaos.py`` (a few hundred payments) and ``benchmarks/chaos.py``
(1,000 or more). The set-up is a production one in miniature: K ``lngate serve`` instances
behind nginx (the shipped configuration), one PostgreSQL database, the real LNbits, a real SMTP
server, a Slack-style alert receiver, and LNbits' webhooks crossing a proxy that drops,
repeats and delays them (:mod:`tests.deployment.fault_proxy`).

Customers create orders through nginx (a mix of DazBox, DazNode and DazPay), most of them pay
from LNbits' payer wallet, some never pay. Meanwhile instances are SIGKILLed and restarted, and
LNbits is stopped and started once. At the end the database, the mail server, the alert
receiver, the gateways' logs and what every client saw are compared with what must hold
(:meth:`ChaosReport.checks`):

- every paid order is settled, exactly once (one ``invoice_settled`` per payment across all
  instances, one shipment per DazBox, one period per DazNode subscription), no unpaid order is;
- each paid order's customer gets one email, and the shop one per DazBox (distinct
  ``Message-ID``\\s; a second copy with the same ``Message-ID`` is explained only by an outbox
  row retried after an instance died mid-send: delivery is at least once, and there can be
  no more such copies than kills);
- every 5xx a client saw is explained: a POST in flight on an instance when it was killed (nginx
  does not re-send a POST), or "no provider" while LNbits was down; GETs are retried by nginx;
- the LNbits outage is one incident: per alert rule, one "fired" and one "resolved" in all.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from tests.deployment.cluster import Cluster
from tests.deployment.fault_proxy import Faults, WebhookFaultProxy
from tests.deployment.nginx import Nginx
from tests.peers.alert_sinks import WebhookReceiver
from tests.peers.lnbits_peer import LNbitsPeer, PeerError
from tests.peers.smtp_peer import SMTPPeer

SHOP = "shop@daznode.test"
WEBHOOK_SECRET = "chaos-webhook-secret-0123456789abcdef"
ADMIN_TOKEN = "chaos-admin-token-0123456789"
PRICES = {"DAZBOX_PRICE_SATS": 2100, "DAZNODE_MONTHLY_SATS": 1000}
ADDRESS = {"line1": "12 rue des Lilas", "city": "Lyon", "postal_code": "69001",
           "country": "France"}


@dataclass(frozen=True)
class ChaosPlan:
    """The scenario's size and faults."""

    payments: int = 200
    unpaid: int = 20
    instances: int = 3
    kills: int = 3
    restart_lnbits: bool = True
    lnbits_down_seconds: float = 4.0
    """How long LNbits stays stopped before it is started again (its start-up comes on top)."""
    concurrency: int = 6
    seed: int = 7
    faults: Faults = field(default_factory=Faults)
    settle_timeout: float = 120.0
    health_check_interval: float = 1.0
    alert_unavailable_seconds: float = 2.0
    reconcile_interval: float = 5.0
    outbox_lease_seconds: float = 10.0
    breaker_cooldown_seconds: float = 3.0


@dataclass
class Exchange:
    """One request a client made through nginx, and what it saw."""

    method: str
    route: str
    started: float
    ended: float
    status: int | None
    code: str | None = None
    error: str | None = None


@dataclass
class Customer:
    """One order as its customer knows it."""

    index: int
    product: str
    email: str
    pays: bool
    order_id: str | None = None
    payment_hash: str | None = None
    paid_at: float | None = None


@dataclass
class Check:
    """One thing that must hold, whether it did, and the evidence."""

    name: str
    ok: bool
    detail: str


@dataclass
class ChaosReport:
    """Everything measured; :meth:`checks` says what holds."""

    plan: ChaosPlan
    seconds: float = 0.0
    customers: list[Customer] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)
    settled_seen: dict[str, float] = field(default_factory=dict)
    kills: list[tuple[int, float]] = field(default_factory=list)
    restart_seconds: list[float] = field(default_factory=list)
    lnbits_outage: tuple[float, float] | None = None
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    invoices: dict[str, str] = field(default_factory=dict)
    shipments: Counter[str] = field(default_factory=Counter)
    subscriptions: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    outbox_attempts: dict[tuple[str, str], int] = field(default_factory=dict)
    settled_logs: Counter[str] = field(default_factory=Counter)
    emails: list[tuple[str, str, str]] = field(default_factory=list)
    """(recipient, Message-ID, subject) of every message the SMTP server accepted."""
    alerts: list[tuple[str, str, str]] = field(default_factory=list)
    """(kind, rule, provider) of every alert the Slack receiver got."""
    alert_history: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    webhooks: dict[str, Any] = field(default_factory=dict)
    payment_failures: list[int] = field(default_factory=list)
    """Customers whose payment LNbits failed (in flight while it stopped): they did not pay."""
    lnbits_failed_invoices: list[int] = field(default_factory=list)
    """Customers whose payment LNbits reported done, while it marked the shop's invoice failed."""

    # ------------------------------------------------------------------------- figures

    @property
    def paid(self) -> list[Customer]:
        return [c for c in self.customers if c.paid_at is not None]

    def settle_times(self) -> list[float]:
        """Seconds from each payment to the first sight of its invoice settled."""
        return sorted(self.settled_seen[c.payment_hash] - c.paid_at for c in self.paid
                      if c.payment_hash in self.settled_seen and c.paid_at is not None)

    def email_copies(self) -> Counter[tuple[str, str]]:
        """Copies received per (recipient, Message-ID)."""
        return Counter((to, mid) for to, mid, _ in self.emails)

    def duplicate_emails(self) -> tuple[int, int]:
        """(extra copies in all, those not explained by an outbox retry after a kill)."""
        extra = unexplained = 0
        for (_, mid), copies in self.email_copies().items():
            if copies < 2:
                continue
            extra += copies - 1
            order_id, _, kind = mid.strip("<>").split("@")[0].partition(".")
            if self.outbox_attempts.get((order_id, kind), 1) < 2:
                unexplained += copies - 1
        return extra, unexplained

    def server_errors(self) -> tuple[list[tuple[Exchange, str]], list[Exchange]]:
        """Client-seen 5xx and transport errors: (explained with the reason, unexplained)."""
        kills = [at for _, at in self.kills]
        explained, unexplained = [], []
        outage = self.lnbits_outage
        grace = (self.plan.breaker_cooldown_seconds + 2 * self.plan.health_check_interval + 5)
        for x in self.exchanges:
            if x.status is not None and x.status < 500:
                continue
            if (x.method == "POST" and x.status == 502
                    and any(x.started - 0.05 <= k <= x.ended + 0.05 for k in kills)):
                explained.append((x, "POST in flight on an instance killed meanwhile"))
            elif (x.status == 503 and x.code == "no_provider_available" and outage is not None
                  and outage[0] - 1 <= x.ended and x.started <= outage[1] + grace):
                explained.append((x, "no provider while LNbits was down"))
            else:
                unexplained.append(x)
        return explained, unexplained

    def table(self) -> str:
        """The summary table: payments, settled, emails, duplicates, lost, times, alerts, 5xx."""
        times = self.settle_times()
        paid = self.paid
        settled = sum(1 for c in paid if self.orders.get(c.order_id or "", {}).get("status")
                      == "paid")
        customer_mails = sum(1 for to, _, _ in self.emails if to != SHOP)
        extra, unexplained_dup = self.duplicate_emails()
        explained, unexplained = self.server_errors()
        fired = Counter(rule for kind, rule, _ in self.alerts if kind == "fired")
        resolved = Counter(rule for kind, rule, _ in self.alerts if kind == "resolved")

        def pct(q: float) -> str:
            if not times:
                return "-"
            return f"{times[min(len(times) - 1, int(q * len(times)))]:.2f} s"

        rows = [
            ("payments", f"{len(paid)} paid, {len(self.customers) - len(paid)} left unpaid "
                         f"(of which {len(self.payment_failures)} payments LNbits failed, "
                         f"{len(self.lnbits_failed_invoices)} invoices LNbits marked failed "
                         "after a payment it reported done); "
                         f"{len(self.orders)} orders in the database"),
            ("settled", f"{settled} of {len(paid)}"),
            ("emails", f"{customer_mails} to customers, "
                       f"{sum(1 for to, _, _ in self.emails if to == SHOP)} to the shop"),
            ("duplicates", f"{extra} extra copies ({unexplained_dup} unexplained)"),
            ("lost", str(len(paid) - settled)),
            ("time to settle", f"p50 {pct(0.50)}, p99 {pct(0.99)}, max "
                               f"{(f'{times[-1]:.2f} s' if times else '-')}"),
            ("alerts", ", ".join(f"{rule}: {fired[rule]} fired / {resolved[rule]} resolved"
                                 for rule in sorted(set(fired) | set(resolved))) or "none"),
            ("5xx seen by clients", f"{len(explained) + len(unexplained)} "
                                    f"({len(unexplained)} unexplained; "
                                    + ", ".join(f"{n} {why}" for why, n in
                                                Counter(w for _, w in explained).items())
                                    + ")"),
            ("chaos", f"{len(self.kills)} SIGKILLs at "
                      + ", ".join(_clock(at) for _, at in self.kills) + " (restart to ready: "
                      + ", ".join(f"{s:.1f}" for s in self.restart_seconds) + " s), LNbits "
                      + (f"down at {_clock(self.lnbits_outage[0])} for "
                         f"{self.lnbits_outage[1] - self.lnbits_outage[0]:.1f} s"
                         if self.lnbits_outage else "not restarted")),
            ("webhooks", ", ".join(f"{k} {v}" for k, v in self.webhooks.items())),
            ("duration", f"{self.seconds:.0f} s"),
        ]
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)

    # ------------------------------------------------------------------------- verdict

    def checks(self) -> list[Check]:
        """What must hold after the run, each with its evidence."""
        paid = self.paid
        paid_hashes = {c.payment_hash for c in paid}
        out: list[Check] = []

        lost = [c.order_id for c in paid if self.orders.get(c.order_id or "", {}).get("status")
                != "paid" or self.invoices.get(c.payment_hash or "") != "paid"]
        out.append(Check("every paid order settled", not lost,
                         f"{len(paid) - len(lost)} of {len(paid)} paid orders settled"
                         + (f"; not settled: {lost[:5]}" if lost else "")))

        twice = {h: n for h, n in self.settled_logs.items() if n > 1}
        boxes = [c for c in paid if c.product == "dazbox"]
        bad_ship = [c.order_id for c in boxes if self.shipments.get(c.order_id or "") != 1]
        bad_sub = [c.order_id for c in paid if c.product == "daznode"
                   and not _one_month(self.subscriptions.get(c.email))]
        out.append(Check(
            "each paid order settled exactly once", not twice and not bad_ship and not bad_sub,
            f"invoice_settled logged {sum(self.settled_logs[h] for h in paid_hashes)} times "
            f"for {len(paid_hashes)} payments (more than once: {len(twice)}); shipments not one "
            f"per DazBox: {len(bad_ship)}; DazNode subscriptions not one month: {len(bad_sub)}"))

        settled_unpaid = [o for o in self.orders.values() if o["payment_hash"] not in paid_hashes
                          and (o["status"] == "paid" or self.invoices.get(o["payment_hash"])
                               == "paid")]
        out.append(Check("no unpaid order settled", not settled_unpaid,
                         f"{len(self.orders) - len(paid)} orders not paid by a customer, "
                         f"{len(settled_unpaid)} of them settled"))

        copies = self.email_copies()
        ids_to: dict[str, set[str]] = defaultdict(set)
        for to, mid in copies:
            ids_to[to].add(mid)
        wrong = [c.email for c in paid if len(ids_to.get(c.email, ())) != 1]
        unpaid_mailed = [c.email for c in self.customers if c.paid_at is None
                         and c.email in ids_to]
        shop_ids = len(ids_to.get(SHOP, ()))
        extra, unexplained = self.duplicate_emails()
        out.append(Check(
            "one email per paid order",
            not wrong and not unpaid_mailed and shop_ids == len(boxes) and unexplained == 0
            and extra <= len(self.kills),
            f"customers with not exactly one distinct message: {len(wrong)} {wrong[:3]}; "
            f"unpaid customers mailed: {len(unpaid_mailed)}; shop notifications "
            f"{shop_ids} for {len(boxes)} DazBoxes; extra copies {extra} "
            f"({unexplained} without an outbox retry after a kill)"))

        explained, unexplained_errors = self.server_errors()
        out.append(Check(
            "no unexplained 5xx for clients", not unexplained_errors,
            f"{len(explained)} explained, {len(unexplained_errors)} unexplained: "
            + "; ".join(f"{x.method} {x.route} -> {x.status or x.error} {x.code or ''} at "
                        f"{_clock(x.started)}"
                        for x in unexplained_errors[:5])))

        per_rule: dict[str, Counter[str]] = defaultdict(Counter)
        for kind, rule, provider in self.alerts:
            per_rule[f"{rule}/{provider}"][kind] += 1
        not_lnbits = [key for key in per_rule if not key.endswith("/lnbits")]
        not_once = {key: dict(c) for key, c in per_rule.items()
                    if c["fired"] != 1 or c["resolved"] != 1}
        outage_long = (self.lnbits_outage is not None and self.lnbits_outage[1]
                       - self.lnbits_outage[0] > self.plan.alert_unavailable_seconds
                       + 2 * self.plan.health_check_interval)
        missing = outage_long and "unavailable/lnbits" not in per_rule
        out.append(Check(
            "one alert and one resolution per incident",
            not not_lnbits and not not_once and not missing and bool(per_rule) == outage_long,
            f"received {dict((k, dict(v)) for k, v in per_rule.items())}; alert_history "
            f"{dict(self.alert_history)}"
            + (f"; not exactly once: {not_once}" if not_once else "")
            + ("; no `unavailable` alert for the LNbits outage" if missing else "")))

        out.append(Check(
            "the chaos happened", len(self.kills) >= self.plan.kills
            and (self.lnbits_outage is not None) == self.plan.restart_lnbits,
            f"{len(self.kills)} kills, LNbits outage {self.lnbits_outage is not None}"))
        return out


def _clock(moment: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(moment))


def _one_month(period: tuple[Any, Any] | None) -> bool:
    if period is None:
        return False
    start, end = period
    return 28 <= (end - start).days <= 31


_RULE = re.compile(r"^rule: (\S+)$", re.M)
_PROVIDER = re.compile(r"^provider: (\S+)$", re.M)


def parse_alert(body: dict[str, Any]) -> tuple[str, str, str]:
    """(kind, rule, provider) of a Slack alert body."""
    text = str(body.get("text", ""))
    kind = "resolved" if "[lngate RESOLVED]" in text else "fired"
    rule = _RULE.search(text)
    provider = _PROVIDER.search(text)
    return kind, rule[1] if rule else "?", provider[1] if provider else "?"


def gateway_env(plan: ChaosPlan, *, database_url: str, lnbits: LNbitsPeer, smtp: SMTPPeer,
                public_url: str, slack_url: str) -> dict[str, str]:
    """The settings every instance runs with (timers lowered so a run takes minutes)."""
    return {
        "DATABASE_URL": database_url,
        "LIGHTNING_TEST_MODE": "false",
        "LNBITS_ENDPOINT": lnbits.url,
        "LNBITS_INVOICE_KEY": lnbits.merchant_inkey,
        "LNBITS_NODE_PUBKEY": lnbits.payee_pubkey,
        "LNBITS_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "PUBLIC_URL": public_url,
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "TRUSTED_PROXIES": "127.0.0.1",
        "RATE_LIMIT": "100000/minute",
        "RATE_LIMIT_CHECK": "100000/minute",
        "RATE_LIMIT_WEBHOOK": "100000/minute",
        "SMTP_HOST": smtp.host,
        "SMTP_PORT": str(smtp.port),
        "SMTP_TLS": "none",
        "EMAIL_FROM": f"DazNode <{SHOP}>",
        "SHOP_EMAIL": SHOP,
        "ALERT_SLACK_WEBHOOK_URL": slack_url,
        "HEALTH_CHECK_INTERVAL": str(plan.health_check_interval),
        # Two cores run LNbits, three gateways, PostgreSQL and the clients: LNbits may take
        # seconds to answer. Time-outs sized for that keep a slow answer from passing for an
        # outage (a 503, an alert) that no deployment fault caused.
        "HEALTH_CHECK_TIMEOUT": "3",
        "PROVIDER_TIMEOUT_SECONDS": "8",
        "ATTEMPT_TIMEOUT_FLOOR": "2",
        "ATTEMPT_TIMEOUT_DEFAULT": "6",
        "ATTEMPT_TIMEOUT_CEILING": "8",
        "CREATE_DEADLINE_SECONDS": "10",
        "ALERT_UNAVAILABLE_SECONDS": str(plan.alert_unavailable_seconds),
        "BREAKER_COOLDOWN_SECONDS": str(plan.breaker_cooldown_seconds),
        "RECONCILE_INTERVAL_SECONDS": str(plan.reconcile_interval),
        "OUTBOX_POLL_INTERVAL_SECONDS": "0.5",
        "OUTBOX_LEASE_SECONDS": str(plan.outbox_lease_seconds),
        "OUTBOX_BACKOFF_SECONDS": "1",
        **{name: str(value) for name, value in PRICES.items()},
    }


def order_body(customer: Customer, rng: random.Random) -> dict[str, Any]:
    """The create-order body a shop front end would send for ``customer``."""
    person: dict[str, Any] = {"email": customer.email, "name": f"Client {customer.index}"}
    body: dict[str, Any] = {"product": customer.product, "customer": person}
    if customer.product == "dazbox":
        person["address"] = dict(ADDRESS)
    elif customer.product == "daznode":
        body["plan"] = "monthly"
    else:
        body["amount"] = rng.randint(100, 3000)
    return body


class Scenario:
    """One chaos run over running components (see :func:`run_chaos`)."""

    def __init__(self, plan: ChaosPlan, *, cluster: Cluster, nginx: Nginx, lnbits: LNbitsPeer,
                 proxy: WebhookFaultProxy, database_url: str,
                 progress: Callable[[str], None]) -> None:
        self.plan, self.cluster, self.nginx, self.lnbits = plan, cluster, nginx, lnbits
        self.proxy, self.database_url, self.progress = proxy, database_url, progress
        self.report = ChaosReport(plan)
        self.rng = random.Random(plan.seed)
        self.lnbits_up = asyncio.Event()
        self.lnbits_up.set()
        self.created = 0
        self.paid_count = 0
        self.done = False
        self.http: httpx.AsyncClient | None = None

    # ------------------------------------------------------------------ clients

    async def request(self, method: str, route: str, path: str,
                      **kwargs: Any) -> httpx.Response | None:
        """One request through nginx, recorded; ``None`` on a transport error."""
        assert self.http is not None
        started = time.time()
        try:
            answer = await self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            self.report.exchanges.append(Exchange(method, route, started, time.time(), None,
                                                  error=type(exc).__name__))
            return None
        code = None
        if answer.status_code >= 400:
            with contextlib.suppress(ValueError, AttributeError):
                code = answer.json().get("code")
        self.report.exchanges.append(Exchange(method, route, started, time.time(),
                                              answer.status_code, code))
        return answer

    async def create_order(self, customer: Customer) -> dict[str, Any]:
        """POST /api/orders as the front end does: retried on a 5xx or a lost connection."""
        body = order_body(customer, self.rng)
        for attempt in range(60):
            answer = await self.request("POST", "orders", "/api/orders", json=body)
            if answer is not None and answer.status_code == 201:
                return answer.json()  # type: ignore[no-any-return]
            if answer is not None and answer.status_code < 500:
                raise AssertionError(f"order refused: {answer.status_code} {answer.text}")
            await asyncio.sleep(min(0.5 * (attempt + 1), 2.0))
        raise AssertionError(f"order {customer.index} could not be created in 60 attempts")

    async def pay(self, customer: Customer, bolt11: str) -> None:
        """Pay from LNbits' payer wallet. After a failure (LNbits stopping), ask LNbits whether
        the payment went through before trying again; a payment LNbits marked failed cannot be
        retried, and that customer leaves without paying."""
        assert customer.payment_hash is not None
        for _ in range(5):
            await self.lnbits_up.wait()
            try:
                await self.lnbits.apay(bolt11)
                customer.paid_at = time.time()
                return
            except (PeerError, OSError) as exc:
                problem = " ".join(str(exc).split())[:120]
            await asyncio.sleep(0.5)
            await self.lnbits_up.wait()
            if await asyncio.to_thread(self._paid_at_lnbits, customer.payment_hash):
                customer.paid_at = time.time()
                return
            self.progress(f"payment of order {customer.index} failed ({problem})")
            if "retrying is not possible" in problem:
                break
        customer.pays = False
        self.report.payment_failures.append(customer.index)

    async def audit_unsettled(self) -> None:
        """A payment LNbits reported done to the payer while it was stopping can leave the shop's
        invoice marked failed in LNbits itself (seen once: the payer's outgoing payment
        "success", the incoming invoice "failed"). The gateway rightly never settles it; such a
        customer did not pay the shop, and is counted apart as LNbits' own inconsistency."""
        for customer in self.report.paid:
            assert customer.payment_hash is not None
            if customer.payment_hash in self.report.settled_seen:
                continue
            status = await asyncio.to_thread(self._invoice_status_at_lnbits,
                                              customer.payment_hash)
            if status == "failed":
                self.progress(f"order {customer.index}: LNbits marked the shop's invoice failed "
                              "although the payer's payment succeeded; not a payment")
                customer.paid_at = None
                customer.pays = False
                self.report.lnbits_failed_invoices.append(customer.index)

    def _invoice_status_at_lnbits(self, payment_hash: str) -> str | None:
        """LNbits' own status of the shop's invoice (``"failed"``, ``"pending"``, ...)."""
        try:
            status, body = self.lnbits.request("GET", f"/api/v1/payments/{payment_hash}",
                                               key=self.lnbits.merchant_inkey, timeout=10)
        except OSError:
            return None
        if status != 200 or not isinstance(body, dict):
            return None
        details = body.get("details")
        found = details.get("status") if isinstance(details, dict) else None
        return found if isinstance(found, str) else body.get("status")

    def _paid_at_lnbits(self, payment_hash: str) -> bool:
        for _ in range(20):
            try:
                status, body = self.lnbits.request("GET", f"/api/v1/payments/{payment_hash}",
                                                   key=self.lnbits.merchant_inkey, timeout=10)
            except OSError:
                time.sleep(0.5)
                continue
            return status == 200 and isinstance(body, dict) and bool(body.get("paid"))
        return False

    async def customer(self, customer: Customer) -> None:
        created = await self.create_order(customer)
        customer.order_id = created["order"]["id"]
        customer.payment_hash = created["invoice"]["payment_hash"]
        self.created += 1
        if not customer.pays:
            return
        await self.pay(customer, created["invoice"]["payment_request"])
        if customer.paid_at is None:
            return
        self.paid_count += 1
        if self.rng.random() < 0.5:  # a checkout page polling once
            await self.request("GET", "check-invoice", "/api/check-invoice",
                               params={"id": customer.payment_hash})

    async def customers(self, queue: list[Customer]) -> None:
        while queue:
            await self.customer(queue.pop(0))

    # ------------------------------------------------------------------ chaos

    async def wait_created(self, share: float) -> None:
        total = len(self.report.customers)
        while self.created < share * total and not self.done:
            await asyncio.sleep(0.1)

    async def chaos(self) -> None:
        plan = self.plan
        kill_points = [0.10 + 0.6 * k / max(1, plan.kills) for k in range(plan.kills)]
        for number, share in enumerate(kill_points):
            await self.wait_created(share)
            index = number % len(self.cluster.instances)
            self.cluster.kill(index)
            self.report.kills.append((index, self.cluster.instances[index].killed_at[-1]))
            self.progress(f"SIGKILL instance {index} ({self.created} orders created)")
            await asyncio.sleep(1.0)
            seconds = await asyncio.to_thread(self.cluster.restart, index)
            self.report.restart_seconds.append(seconds)
            self.progress(f"instance {index} restarted, ready after {seconds:.1f} s")
        if plan.restart_lnbits:
            await self.wait_created(0.80)
            self.progress(f"stopping LNbits ({self.created} orders created)")
            self.lnbits_up.clear()
            down = time.time()
            await asyncio.to_thread(self.lnbits.stop)
            await asyncio.sleep(plan.lnbits_down_seconds)
            await asyncio.to_thread(self.lnbits.start)
            self.report.lnbits_outage = (down, time.time())
            self.lnbits_up.set()
            self.progress(f"LNbits back after {time.time() - down:.1f} s")

    async def watch_settlements(self) -> None:
        """Note when each invoice is first seen paid in the database (every 0.25 s)."""
        conn = await asyncpg.connect(self.database_url)
        try:
            while True:
                rows = await conn.fetch("SELECT payment_hash FROM invoices WHERE state = 'paid'")
                now = time.time()
                for row in rows:
                    self.report.settled_seen.setdefault(row["payment_hash"], now)
                await asyncio.sleep(0.25)
        finally:
            await conn.close()

    async def report_progress(self) -> None:
        total = len(self.report.customers)
        while True:
            await asyncio.sleep(10)
            self.progress(f"{self.created}/{total} orders created, {self.paid_count} paid, "
                          f"{len(self.report.settled_seen)} settled")

    # ------------------------------------------------------------------ the run

    async def run(self, smtp: SMTPPeer, alerts: WebhookReceiver) -> ChaosReport:
        plan, report = self.plan, self.report
        products = ["dazbox"] * 3 + ["daznode"] * 3 + ["dazpay"] * 4
        paying = [True] * plan.payments + [False] * plan.unpaid
        self.rng.shuffle(paying)
        report.customers = [Customer(i, self.rng.choice(products), f"client{i}@example.com",
                                     pays) for i, pays in enumerate(paying)]
        started = time.time()
        watcher = asyncio.create_task(self.watch_settlements())
        ticker = asyncio.create_task(self.report_progress())
        try:
            async with httpx.AsyncClient(base_url=self.nginx.url, verify=self.nginx.client_ssl(),
                                         timeout=30) as http:
                self.http = http
                queue = list(report.customers)
                chaos = asyncio.create_task(self.chaos())
                await asyncio.gather(*(self.customers(queue) for _ in range(plan.concurrency)))
                self.done = True
                await chaos
                self.progress(f"all {len(report.customers)} orders made; waiting for "
                              "settlement, emails and alerts")
                await self.settle(smtp, alerts)
        finally:
            watcher.cancel()
            ticker.cancel()
            await asyncio.gather(watcher, ticker, return_exceptions=True)
        report.seconds = time.time() - started
        return report

    async def settle(self, smtp: SMTPPeer, alerts: WebhookReceiver) -> None:
        """Wait for the settlements, the emails and the alerts' resolutions, then a quiet time
        in which a late duplicate would show."""
        plan, report = self.plan, self.report
        deadline = time.time() + plan.settle_timeout
        paid = {c.payment_hash for c in report.paid}
        next_audit = time.time() + 30
        while not paid <= set(report.settled_seen) and time.time() < deadline:
            await asyncio.sleep(0.5)
            if time.time() >= next_audit:  # after the first look-ups had time to run
                await self.audit_unsettled()
                paid = {c.payment_hash for c in report.paid}
                next_audit = time.time() + 10
        expected = len(report.paid) + sum(1 for c in report.paid if c.product == "dazbox")
        while len(smtp.received) < expected and time.time() < deadline:
            await asyncio.sleep(0.5)

        def open_incidents() -> int:
            kinds = Counter(parse_alert(body)[0] for body in alerts.bodies("slack"))
            return kinds["fired"] - kinds["resolved"]

        while open_incidents() > 0 and time.time() < deadline:
            await asyncio.sleep(0.5)
        await self.proxy.drain(plan.faults.max_delay + 5)
        await asyncio.sleep(plan.outbox_lease_seconds + 3)


async def collect(report: ChaosReport, *, database_url: str, cluster: Cluster, smtp: SMTPPeer,
                  alerts: WebhookReceiver, proxy: WebhookFaultProxy) -> None:
    """Read the end state: database, logs, mail server, alert receiver, proxy counters."""
    conn = await asyncpg.connect(database_url)
    try:
        for row in await conn.fetch("SELECT id, status, payment_hash, product FROM orders"):
            report.orders[row["id"]] = dict(row)
        for row in await conn.fetch("SELECT payment_hash, state FROM invoices"):
            report.invoices[row["payment_hash"]] = row["state"]
        for row in await conn.fetch("SELECT order_id, count(*) AS n FROM shipments "
                                    "GROUP BY order_id"):
            report.shipments[row["order_id"]] = row["n"]
        for row in await conn.fetch("SELECT email, period_start, period_end FROM subscriptions"):
            report.subscriptions[row["email"]] = (row["period_start"], row["period_end"])
        for row in await conn.fetch("SELECT order_id, kind, attempts FROM outbox"):
            report.outbox_attempts[(row["order_id"], row["kind"])] = row["attempts"]
        for row in await conn.fetch("SELECT rule, provider, kind, count(*) AS n "
                                    "FROM alert_history GROUP BY rule, provider, kind"):
            report.alert_history[(row["rule"], row["provider"], row["kind"])] = row["n"]
    finally:
        await conn.close()
    for _, event in cluster.log_events():
        if event.get("event") == "invoice_settled" and event.get("payment_hash"):
            report.settled_logs[event["payment_hash"]] += 1
    report.emails = [(to, str(m.message["Message-ID"]), m.subject)
                     for m in smtp.received for to in m.rcpt_tos]
    report.alerts = [parse_alert(body) for body in alerts.bodies("slack")]
    stats = proxy.stats
    report.webhooks = {"received": stats.received, "dropped": stats.dropped,
                       "sent x5": stats.duplicated, "delayed": stats.delayed,
                       "copies forwarded": stats.copies_sent,
                       "answers": dict(stats.answers)}


def fund_payer(lnbits: LNbitsPeer, sats: int) -> None:
    """Credit LNbits' payer wallet (FakeWallet money, as the super user)."""
    status, body = lnbits.request("PUT", "/users/api/v1/balance", token=lnbits.super_user_token,
                                  json_body={"id": lnbits.payer_wallet_id, "amount": sats})
    if status not in (200, 201):
        raise PeerError(f"could not credit the payer: HTTP {status}: {body}")


async def run_chaos(plan: ChaosPlan, *, folder: Path, lnbits: LNbitsPeer, smtp: SMTPPeer,
                    database_url: str,
                    progress: Callable[[str], None] = print) -> ChaosReport:
    """Set up nginx, the fault proxy, the alert receiver and the cluster; run; collect."""
    fund_payer(lnbits, (plan.payments + plan.unpaid) * 3_000 + 100_000)
    async with WebhookReceiver() as alerts:
        nginx = Nginx(folder / "nginx", [])
        nginx.write_config()  # the certificate, before the proxy needs it
        async with WebhookFaultProxy(nginx.url, faults=plan.faults, seed=plan.seed,
                                     ssl_context=nginx.client_ssl()) as proxy:
            env = gateway_env(plan, database_url=database_url, lnbits=lnbits, smtp=smtp,
                              public_url=proxy.url, slack_url=alerts.url("slack"))
            cluster = Cluster(folder / "gateways", plan.instances, env)
            nginx.instances = cluster.ports
            progress(f"starting {plan.instances} gateways behind nginx on {nginx.url}")
            with cluster, nginx:
                scenario = Scenario(plan, cluster=cluster, nginx=nginx, lnbits=lnbits,
                                    proxy=proxy, database_url=database_url, progress=progress)
                report = await scenario.run(smtp, alerts)
            await collect(report, database_url=database_url, cluster=cluster, smtp=smtp,
                          alerts=alerts, proxy=proxy)
    return report


def summary(report: ChaosReport) -> str:
    """The table and the checks, as printed by the benchmark and on a test failure."""
    lines = [report.table(), ""]
    for check in report.checks():
        lines.append(f"{'PASS' if check.ok else 'FAIL'}  {check.name}: {check.detail}")
    return "\n".join(lines)
