"""How the back-office pages write times, amounts, durations, percentages and states.

Every state a page shows (an order's status, a provider's health, a breaker's state...) is
written through :class:`AdminFormat`, which names each catalogue key in full, so the catalogue
check of the tests sees every key in use. An unknown value is shown as it is, never an error.
Times are UTC, written ``2026-05-12 14:03`` (seconds where they matter) in both languages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

from lngate.web.i18n import Translator

NOTHING = "—"
_DECIMAL = {"fr": ",", "en": "."}
_THOUSANDS = {"fr": "\u202f", "en": ","}

HEALTH = {"up": "admin.health_up", "degraded": "admin.health_degraded",
          "down": "admin.health_down", "unknown": "admin.health_unknown"}
BREAKER = {"closed": "admin.breaker_closed", "open": "admin.breaker_open",
           "half_open": "admin.breaker_half_open"}
ORDER_STATUS = {"pending": "admin.status_pending", "paid": "admin.status_paid",
                "expired": "admin.status_expired", "cancelled": "admin.status_cancelled"}
INVOICE_STATE = {"pending": "admin.invoice_pending", "paid": "admin.invoice_paid",
                 "expired": "admin.invoice_expired"}
PRODUCT = {"dazbox": "admin.product_dazbox", "daznode": "admin.product_daznode",
           "dazpay": "admin.product_dazpay"}
PLAN = {"monthly": "admin.plan_monthly", "yearly": "admin.plan_yearly"}
SHIPMENT = {"to_ship": "admin.shipment_to_ship", "shipped": "admin.shipment_shipped"}
EMAIL_STATUS = {"pending": "admin.email_pending", "sent": "admin.email_sent",
                "failed": "admin.email_failed", "skipped": "admin.email_skipped"}
EMAIL_KIND = {"dazbox_confirmation": "admin.mail_dazbox_confirmation",
              "dazbox_shop_notification": "admin.mail_dazbox_shop_notification",
              "dazbox_shipped": "admin.mail_dazbox_shipped",
              "daznode_confirmation": "admin.mail_daznode_confirmation",
              "dazpay_receipt": "admin.mail_dazpay_receipt",
              "order_paid_after_cancel": "admin.mail_order_paid_after_cancel"}
ALERT_RULE = {"failures": "admin.rule_failures", "slow_response": "admin.rule_slow_response",
              "unavailable": "admin.rule_unavailable"}
ALERT_KIND = {"fired": "admin.alert_fired", "resolved": "admin.alert_resolved"}
SUBSCRIPTION = {"active": "admin.subscription_active", "expired": "admin.subscription_expired"}


@dataclass(frozen=True, slots=True)
class AdminFormat:
    """The writing of one language (``fmt`` in the templates)."""

    t: Translator

    @property
    def language(self) -> str:
        """The language written."""
        return self.t.language

    def _decimal(self, value: float, digits: int) -> str:
        text = f"{value:,.{digits}f}"
        return (text.replace(",", "\0").replace(".", _DECIMAL[self.language])
                .replace("\0", _THOUSANDS[self.language]))

    def when(self, moment: datetime | None, *, seconds: bool = False) -> str:
        """``2026-05-12 14:03`` (UTC), or a dash."""
        if moment is None:
            return NOTHING
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S" if seconds
                                               else "%Y-%m-%d %H:%M")

    def recent(self, moment: datetime | None, today: date) -> str:
        """``14:03:07`` for a moment of ``today`` (UTC), else ``2026-05-12 14:03``."""
        if moment is None:
            return NOTHING
        utc = moment.astimezone(UTC)
        return utc.strftime("%H:%M:%S") if utc.date() == today else self.when(utc)

    def day(self, moment: datetime | None) -> str:
        """``2026-05-12`` (UTC), or a dash."""
        return NOTHING if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d")

    def number(self, value: int) -> str:
        """``1234567`` -> ``1 234 567`` (French) or ``1,234,567`` (English)."""
        return f"{value:,}".replace(",", _THOUSANDS[self.language])

    def compact(self, value: float) -> str:
        """A chart's scale value: ``950``, ``400k``, ``1,2M`` (French decimal comma)."""
        for size, suffix in ((1_000_000, "M"), (1_000, "k")):
            if value >= size:
                scaled = value / size
                digits = 0 if scaled == int(scaled) else 1
                return f"{self._decimal(scaled, digits)}{suffix}"
        return self.decimal(value)

    def decimal(self, value: float) -> str:
        """``20``, ``2,5`` (French) or ``2.5`` (English): one decimal only when there is one."""
        return self._decimal(value, 0 if value == int(value) else 1)

    def sats(self, amount: int | None) -> str:
        """An amount in sats, grouped the language's way."""
        return NOTHING if amount is None else self.t.sats(amount)

    def percent(self, value: float | None) -> str:
        """``99.5`` -> ``99,50 %`` (French) or ``99.50%`` (English); a dash for ``None``."""
        if value is None:
            return NOTHING
        number = self._decimal(value, 2)
        return f"{number}\u202f%" if self.language == "fr" else f"{number}%"

    def ms(self, value: float | None) -> str:
        """A duration: ``12.3 ms``, ``1.25 s`` (decimal comma in French); a dash for ``None``."""
        if value is None:
            return NOTHING
        if value >= 1000:
            return f"{self._decimal(value / 1000, 2)} s"
        return f"{self._decimal(value, 1 if value < 100 else 0)} ms"

    def short(self, text: str | None, length: int = 12) -> str:
        """The start of a long identifier (a payment hash), ``…`` marking the cut."""
        if not text:
            return NOTHING
        return text if len(text) <= length else text[:length] + "…"

    def _word(self, keys: Mapping[str, str], value: object) -> str:
        text = str(getattr(value, "value", value))
        key = keys.get(text)
        return self.t(key) if key else text

    def health(self, value: object) -> str:
        """A provider's health."""
        return self._word(HEALTH, value)

    def breaker(self, value: object) -> str:
        """A circuit breaker's state."""
        return self._word(BREAKER, value)

    def order_status(self, value: object) -> str:
        """An order's status."""
        return self._word(ORDER_STATUS, value)

    def invoice_state(self, value: object) -> str:
        """An invoice's state."""
        return self._word(INVOICE_STATE, value)

    def product(self, value: object) -> str:
        """A product's name."""
        return self._word(PRODUCT, value)

    def plan(self, value: object) -> str:
        """A DazNode plan."""
        return NOTHING if value is None else self._word(PLAN, value)

    def shipment(self, value: object) -> str:
        """A shipment's status."""
        return self._word(SHIPMENT, value)

    def email_status(self, value: object) -> str:
        """An outbox email's status."""
        return self._word(EMAIL_STATUS, value)

    def email_kind(self, value: object) -> str:
        """Which email it is."""
        return self._word(EMAIL_KIND, value)

    def alert_rule(self, value: object) -> str:
        """An alert rule."""
        return self._word(ALERT_RULE, value)

    def alert_kind(self, value: object) -> str:
        """Fired or resolved."""
        return self._word(ALERT_KIND, value)

    def loadtest_verdict(self, passed: bool) -> str:
        """Whether a load test run met its objectives."""
        return self.t("admin.loadtest_passed" if passed else "admin.loadtest_failed")

    def subscription(self, value: object) -> str:
        """A subscription's status."""
        return self._word(SUBSCRIPTION, value)
